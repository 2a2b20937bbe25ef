"""What a study leaves in `results/<experiment>/tune/<study>/`: the trials, the front, its
plot, the chosen trial as a ready-to-run config, and a summary the report reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from common.atomic import atomic_path, atomic_write_text
from experiments.report.pareto import pareto_png
from experiments.results import provenance_or_none, write_json
from experiments.tune.front import TuneOutcome
from experiments.tune.patch import best_config
from experiments.tune.storage import safe_url


def export(o: TuneOutcome, out_dir: Path) -> None:
    """Write the trials, the front, the chosen config (`best.yaml`, `best.json`), the plot and `summary.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    t = o.tuning
    for name, df in (("trials.parquet", o.trials), ("pareto.parquet", o.front)):
        if not df.empty:
            with atomic_path(out_dir / name) as tmp:
                df.to_parquet(tmp, index=False)
    if o.chosen is not None:
        cfg = best_config(t, o.chosen["settings"])
        head = (
            f"# chosen trial {o.chosen['number']} of study {t.study!r} ({safe_url(o.url)})\n"
            f"# objectives: {', '.join(f'{k} = {v:.6g}' for k, v in o.chosen['objectives'].items())}\n"
            f"# run it: piop run {out_dir / 'best.yaml'}\n"
        )
        dump = cfg.model_dump(mode="json") | {"policies": [p.model_dump(mode="json", exclude_defaults=True) for p in cfg.policies]}
        atomic_write_text(out_dir / "best.yaml", head + yaml.safe_dump(dump, sort_keys=False))
        prov = provenance_or_none()
        write_json(
            out_dir / "best.json",
            o.chosen
            | {"policy": f"{t.policy.label}-tuned", "config": str(out_dir / "best.yaml")}
            | ({"provenance": prov} if prov is not None else {}),
        )
    if not o.trials.empty and (o.trials["state"] == "COMPLETE").any():
        pareto_png(
            o.trials,
            [(ob.metric, ob.direction) for ob in t.spec.objectives],
            out_dir / "pareto.png",
            chosen=None if o.chosen is None else o.chosen["number"],
            untuned=o.untuned,
            title=f"study {t.study}: {t.policy.label} on {t.base.name}",
        )
    o.out_dir = out_dir
    write_json(out_dir / "summary.json", o.to_json())
