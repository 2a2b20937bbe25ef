"""The pydantic base every config section uses: unknown keys are errors, not ignored."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
