"""Writing and reading run folders, atomically.

A run is written into a hidden sibling folder and renamed into place at the end, so a
killed run leaves no half-written results; a folder with `summary.json` is finished.

    results/<experiment>/<run>/
        config.yaml        the resolved experiment config
        summary.json       fleet metrics + run metadata (small, for scripts)
        fleet.parquet      the same fleet metrics as one row
        volumes.parquet    per-volume metrics
        series.parquet     per-volume time series (record_s resolution)
        jobs.parquet       every completed backup job
        decisions.parquet  every scheduler action, with its reason
        forecast.parquet   (forecasting policies) the 1-hour-ahead forecast vs what happened
        backup.parquet     bytes moved per tier and backup kind
        timeline.png       load, backup activity and RPO age for a few volumes
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from common.atomic import atomic_write_text
from common.jsonable import dumps
from common.oserrors import naming
from experiments.config import ExperimentConfig


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (NumPy values unwrapped, NaN as null): readers never see half a file."""
    atomic_write_text(path, dumps(data))


def provenance_or_none() -> dict | None:
    """Where a result came from (command line, version, commit, time), from
    `experiments.provenance` when this installation has it."""
    if importlib.util.find_spec("experiments.provenance") is None:
        return None
    return importlib.import_module("experiments.provenance").provenance()


def write_run(run_dir: Path, result, cfg: ExperimentConfig, meta: dict) -> Path:
    """Write the run folder (see the module docstring); an OS error names `run_dir`."""
    with naming(run_dir):
        return _write_run(Path(run_dir), result, cfg, meta)


def temp_folders(run_dir: Path) -> list[Path]:
    """The temporary folders a run's writing leaves beside `run_dir` when its process is killed."""
    return sorted(Path(run_dir).parent.glob(f".{Path(run_dir).name}.tmp-*"))


def _write_run(run_dir: Path, result, cfg: ExperimentConfig, meta: dict) -> Path:
    from experiments.plots import timeline_png

    run_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in temp_folders(run_dir):  # left by a killed run of this same run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=run_dir.parent, prefix=f".{run_dir.name}.tmp-"))
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide finished runs from other users
    try:
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        pd.DataFrame([result.fleet]).to_parquet(tmp / "fleet.parquet", index=False)
        result.volumes.to_parquet(tmp / "volumes.parquet", index=False)
        result.jobs.to_parquet(tmp / "jobs.parquet", index=False)
        result.decisions.to_parquet(tmp / "decisions.parquet", index=False)
        result.backup.to_parquet(tmp / "backup.parquet", index=False)
        if result.series is not None:
            result.series.to_parquet(tmp / "series.parquet", index=False)
            timeline_png(
                result.series, result.jobs, result.volumes, tmp / "timeline.png", title=f"{cfg.name} / {meta.get('run', '')}", meta=meta
            )
        if getattr(result, "forecasts", None) is not None:
            result.forecasts.to_parquet(tmp / "forecast.parquet", index=False)
        write_json(tmp / "summary.json", {"fleet": result.fleet, "meta": meta})
        if run_dir.exists():
            old = run_dir.with_name(f".{run_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(run_dir, old)
            os.replace(tmp, run_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_dir


def is_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / "summary.json").is_file()


def read_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())
