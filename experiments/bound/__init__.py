"""A lower bound on the production impact of any backup schedule that meets every RPO.

`impact_bound(cfg, seed)` builds the fleet and load of a run (the runner's `build_fleet`,
`split_history`, `sim_spec`) and returns a `BoundResult` whose `impact_io_mean` is at most
the IO-weighted mean impact (`sim.metrics`: sum over volumes and ticks of production I/O
x impact, over the total production I/O) of every schedule that keeps every volume's
newest restore point within its RPO at every tick end. The "oracle" policy is a greedy
policy fed the true future; this is the floor under it and every other policy.

What is bounded, and why each step keeps it a bound (each only enlarges the set of
schedules or lowers their cost):

1. Weights. The mean's denominator is the production I/O, which no schedule changes, so
   minimising the numerator suffices. Without `coupled`, the tiers' shared ingest and job
   slots are dropped (a volume may move up to its device headroom, capped at the largest
   tier's ingest): the fleet's minimum is then at least the sum of per-volume minima.
   `coupled` keeps one link: all volumes together move at most the tiers' total ingest.
2. Timing (`demand`). A job snapshotting at tick `s` holds the writes before `s` and moves
   bytes from tick `s + 1`; the RPO (rho ticks) makes the next job complete by tick
   `s_prev + rho`. So the bytes written in tick `t` are moved in ticks `[t + 2, t + rho]`
   and a job covers at most `rho - 1` ticks of writes. Decision periods, queueing for a
   slot and the tier chosen only restrict real schedules further.
3. Bytes (`demand`). Any job (incremental, differential, full) moves at least the
   incremental's bytes of the writes since the previous snapshot, `f(W)` for `W` writes.
   For working-set volumes `f` is the expected changed-chunk count of `sim.cbt` (capped at
   the volume's used bytes), concave with `f(0) = 0`; per-tick releases `b_t = w_t f(M_t) /
   M_t` (`M_t`: most writes of any job-length interval holding `t`) sum to at most `f(W)`
   over every interval a job can cover (chord argument). For volumes with exact write
   extents, `b_t` counts the chunks first written within the preceding window: at most the
   union a job moves. With `fulls = k`, each volume must also complete `k` fulls somewhere
   in the run; a full moves its used bytes, at least `used - (largest window release)`
   more than the releases it stands in for.
4. Release-deadline relaxation. Whatever a schedule moves in each tick can serve every
   release inside its window (the job covering it runs inside it), so the least cost of
   serving the releases with per-tick amounts `y_t` bounds every schedule. With windows of
   equal length, serving in order of release is optimal and feasibility is a tube on the
   cumulative amount: `due(k) <= Z(k) <= released(k)`. Checking the tube only at the end
   of each step (`step_s`, default 300 s) drops constraints: still a bound.
5. Cost (`costs`, `tangents`). Per tick, the impact of moving `y` MB is convex in `y`
   below the headroom cap (`backup_max_util` < the utilisation clip). Within a step, the
   least cost of moving `Y` MB however spread over its ticks, `G(Y)`, is bounded below by
   Lagrangian supporting lines `L(lam) + lam Y` (exact minimisers in closed form), and the
   LP prices each step by the maximum of such lines: a piecewise-linear minorant.
6. LP (`lp`). HiGHS solves it; the reported value is the dual bound computed from its
   multipliers with every variable boxed, which is a lower bound whatever the solver's
   tolerances. Lines are added where the LP lands until the LP is within `rel_tol` of the
   real cost of its per-step amounts (`upper`; the tangent gap).

Caveats, stated plainly:
- Working-set volumes: the simulator draws each job's changed-chunk count at random
  (binomial per zone), and which draws a schedule gets depends on its own actions. The
  bound uses the expected count, so it bounds every schedule in the model with expected
  counts; a given run's counts differ by their sampling noise, whose relative size for a
  job of the longest window is reported per volume (`changed_rel_sd`, typically well
  under 1%). Volumes with exact extents are deterministic and certified outright.
- It is not the optimum: the release relaxation lets bytes move continuously instead of
  in batches, so the bound is exact only when that costs nothing (e.g. one write burst);
  `brute_force` gives the exact optimum of tiny instances on a grid of rates.
- RTO targets, retention and storage cost play no part; fulls only with `fulls`.

Modules: `instance` (data from a config or arrays), `costs`, `demand`, `tangents`, `lp`,
`relaxation` (refinement), `api` (`impact_bound`), `brute` (exact tiny optimum),
`result`, `gaps` (the bound beside a comparison), `report` (`python -m experiments.bound`).
"""

from experiments.bound.api import impact_bound, instance_bound
from experiments.bound.brute import brute_force
from experiments.bound.instance import Instance, VolumeInput, from_config, volume_input
from experiments.bound.result import BoundResult, VolumeBound

__all__ = [
    "BoundResult",
    "Instance",
    "VolumeBound",
    "VolumeInput",
    "brute_force",
    "from_config",
    "impact_bound",
    "instance_bound",
    "volume_input",
]
