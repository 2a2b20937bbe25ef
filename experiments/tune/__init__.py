"""`piop tune`: an Optuna multi-objective study over a policy's and forecaster's settings.

The search space lives in its own YAML (see `experiments/configs/tune.yaml`), validated by
`TuneSpec` (`spec`); the experiment config it points to (`base`) stays a plain experiment.

Each trial builds the base config with the tuned policy's settings overridden (`patch`),
simulates it for the study's seeds (no run folders: fast), and returns one value per
objective (`objective`; default: minimise IO-weighted mean production impact and minimise
the % of volume-time outside the RPO). Constraints (e.g. RTO compliance >= 99 %, storage
cost <= X) are set with `trial.set_constraint` (Optuna 5's replacement of the deprecated
`constraints_func`): the sampler prefers feasible trials and the Pareto front holds only
feasible ones.

Storage (`storage`): by default SQLite at `results/<experiment>/tune/<study>.db`
(resumable: the study is loaded if it exists and `n_trials` is the study's *total* of
completed trials, so a rerun does what is missing). `journal:PATH` (Optuna's
JournalStorage on a file) suits several processes of one host; a PostgreSQL / MySQL URL
lets many machines work on one study: run the same `piop tune SPEC --storage URL` on each
(each process draws its own settings: the sampler is seeded by trial number, `sampling`).
`--jobs N` runs N worker processes on this machine, all on the same storage (`run`).
A trial whose process died (heartbeat silent, or its pid gone on this host) is failed and
queued again, so a finished study holds no RUNNING trial.

After optimising, `results/<experiment>/tune/<study>/` receives `trials.parquet`,
`pareto.parquet`, `pareto.png`, `summary.json`, and the chosen trial as `best.yaml`
(a ready-to-run experiment config: the base policies plus `<policy>-tuned`, at the
study's seeds and duration, so `piop run best.yaml` reproduces the trial) and
`best.json` (`export`). The chosen trial is the Pareto-front trial with the smallest
weighted sum of objectives, each scaled to [0, 1] over the front, a balanced compromise
(`front`).
"""

from experiments.tune.export import export
from experiments.tune.front import TuneOutcome, choose, pareto_mask, summarise_study, trials_frame
from experiments.tune.objective import DERIVED, make_objective, run_metrics, suggest
from experiments.tune.patch import best_config, config_with, policy_with
from experiments.tune.run import tune
from experiments.tune.spec import ConstraintSpec, ObjectiveSpec, ParamSpec, TuneSpec
from experiments.tune.storage import Liveness, RetryStale, open_storage, safe_url
from experiments.tune.study import fail_stale_trials, make_sampler, open_study
from experiments.tune.tuning import Tuning, load_tuning

__all__ = [
    "DERIVED",
    "ConstraintSpec",
    "Liveness",
    "ObjectiveSpec",
    "ParamSpec",
    "RetryStale",
    "TuneOutcome",
    "TuneSpec",
    "Tuning",
    "best_config",
    "choose",
    "config_with",
    "export",
    "fail_stale_trials",
    "load_tuning",
    "make_objective",
    "make_sampler",
    "open_storage",
    "open_study",
    "pareto_mask",
    "policy_with",
    "run_metrics",
    "safe_url",
    "suggest",
    "summarise_study",
    "trials_frame",
    "tune",
]
