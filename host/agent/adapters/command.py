"""A generic backup command: any program, given a template, succeeding with exit code 0.

The template is split like a shell would (`shlex`) and never run through a shell, so a
path with spaces stays one argument. Placeholders: `{path}` (as a whole argument: every
path of the volume, one argument each; inside an argument: the paths joined by
spaces), `{paths}` (same), `{kind}` (full / incremental / differential), `{tier}`,
`{volume}` and `{job}`. What a kind means is the command's business: it is passed on.
The tool keeps no list of restore points the agent could read, so the agent's state
does: a point per successful run, at the job's start.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from host.agent.adapters.base import Adapter, JobSpec, Outcome, kind_name, last_line

PLACEHOLDERS = ("path", "paths", "kind", "tier", "volume", "job")


class CommandAdapter(Adapter):
    tool = "command"
    self_contained = False

    def __init__(self, template: str):
        self.template = template
        try:
            self.tokens = shlex.split(template)
        except ValueError as err:
            raise ValueError(f"command {template!r}: {err}") from None
        if not self.tokens:
            raise ValueError("command: empty")

    def check(self) -> str | None:
        prog = self.tokens[0]
        if "{" in prog:
            return None
        if shutil.which(prog) is None:
            return f"command {prog!r}: not found (not on PATH, or not executable)"
        return None

    def command(self, job: JobSpec) -> tuple[list[str], dict[str, str]]:
        values = {"kind": kind_name(job.kind), "tier": job.tier, "volume": job.volume, "job": str(job.job_id)}
        joined = " ".join(job.paths)
        argv: list[str] = []
        for tok in self.tokens:
            if tok in ("{path}", "{paths}"):
                argv.extend(job.paths)
                continue
            try:
                argv.append(tok.format(path=joined, paths=joined, **values))
            except (KeyError, IndexError, ValueError) as err:
                raise ValueError(f"command {self.template!r}: bad placeholder {err} (known: {', '.join(PLACEHOLDERS)})") from None
        return argv, dict(os.environ)

    def outcome(self, job: JobSpec, folder: Path, rc: int | None) -> Outcome:
        if rc == 0:
            return Outcome(True)
        why = last_line(folder / "err") or last_line(folder / "out")
        code = "killed" if rc is None else (f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}")
        return Outcome(False, f"{self.tokens[0]} failed ({code})" + (f": {why}" if why else ""))
