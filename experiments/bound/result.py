"""What a bound reports: the fleet figure, per-volume figures and how it was solved."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from common.units import GB, MB


@dataclass
class VolumeBound:
    volume_id: str
    rpo_h: float
    prod_io: float  # production I/O over the run: the volume's weight
    bound_io: float  # its part of the numerator (sum of io x impact)
    impact_io_mean: float  # bound_io / prod_io: a bound on the volume's own IO-weighted mean impact
    must_move_gb: float  # released bytes whose deadline falls inside the run
    full_extra_gb: float  # bytes the asked-for fulls add
    moved_gb: float  # what the bound's solution moves
    changed_rel_sd: float = 0.0  # relative spread of the simulator's random changed-chunk count, for a job of the longest window


@dataclass
class BoundResult:
    """A lower bound on the fleet's IO-weighted mean impact of every schedule meeting every RPO."""

    experiment: str
    seed: int
    impact_io_mean: float  # the bound
    upper: float  # the relaxed problem's cost at the bound's solution: bound <= relaxed optimum <= upper
    total_io: float
    coupled: bool
    ingest_binds: bool | None  # coupled only: whether the tiers' total ingest changed the answer
    per_volume_impact_io_mean: float  # the sum of per-volume optima (equal to the bound unless coupled and binding)
    fulls: int  # completed fulls each volume is required to take in the run
    step_s: float
    rounds: int
    feasible: bool
    message: str
    changed_bytes: str  # "expected" (working-set model), "exact" (extents) or "mixed"
    build_s: float = 0.0
    solve_s: float = 0.0
    lp_s: float = 0.0
    volumes: list[VolumeBound] = field(default_factory=list)

    @property
    def tangent_gap(self) -> float:
        """How much finer tangents could still raise the bound, relative to the upper end."""
        return (self.upper - self.impact_io_mean) / self.upper if self.upper > 0 else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["tangent_gap"] = self.tangent_gap
        return out

    def summary_row(self) -> dict:
        """One table row: the figures beside the policies' `impact_io_mean`."""
        return {
            "bound": "bound" + (" +fulls" if self.fulls else "") + (" coupled" if self.coupled else ""),
            "impact_io_mean": self.impact_io_mean,
            "tangent_gap": self.tangent_gap,
            "must_move_tb": sum(v.must_move_gb + v.full_extra_gb for v in self.volumes) / 1e3,
            "solve_s": self.solve_s,
            "build_s": self.build_s,
        }


def mb_to_gb(x: float) -> float:
    return x * MB / GB
