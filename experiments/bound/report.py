"""Print the bound of configs beside the policies' impact: `python -m experiments.bound CONFIG... [options]`.

For each config: the bound (per volume, and with `--fulls`/`--coupled` variants), its
solve time and tangent gap; with `--runs DIR` (a compare folder of `<policy>-s<seed>/
summary.json`), each policy's IO-weighted mean impact, its ratio to the bound, and the
forecast gap (predictive with a forecaster vs the same policy fed the true future).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common.errors import UserError
from common.jsonable import dumps
from experiments.bound.api import instance_bound
from experiments.bound.instance import from_config
from experiments.bound.result import BoundResult


def policy_impacts(runs: Path, seed: int) -> dict[str, float]:
    """`impact_io_mean` of every finished run of `seed` under a compare folder, by policy label."""
    if not runs.is_dir():
        raise UserError(f"--runs: {runs}: no such folder")
    out = {}
    for f in sorted(runs.glob("*/summary.json")):
        try:
            s = json.loads(f.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"{f}: unreadable summary ({err})") from None
        meta, fleet = s.get("meta", {}), s.get("fleet", {})
        if meta.get("seed") == seed and "impact_io_mean" in fleet:
            out[str(meta.get("policy"))] = float(fleet["impact_io_mean"])
    return out


def gaps(bound: float, impacts: dict[str, float], bound_fulls: float | None = None) -> list[dict]:
    """Rows: policy, impact, x bound (policy gap; also x the bound with fulls), and for predictive policies x oracle."""
    oracle = impacts.get("oracle")
    rows = []
    for name, value in impacts.items():
        rows.append(
            {
                "policy": name,
                "impact_io_mean": value,
                "x_bound": value / bound if bound > 0 else float("inf"),
                "x_bound_fulls": (value / bound_fulls if bound_fulls > 0 else float("inf")) if bound_fulls is not None else None,
                "x_oracle": value / oracle if oracle and name.startswith("predictive") else None,
            }
        )
    return rows


def _print(cfg_path: str, results: list[BoundResult], rows: list[dict]) -> None:
    r0 = results[0]
    print(f"{cfg_path}  (experiment {r0.experiment}, seed {r0.seed}; fleet built in {r0.build_s:.1f} s; changed bytes: {r0.changed_bytes})")
    for r in results:
        row = r.summary_row()
        extra = (
            ""
            if r.ingest_binds is None
            else (f"  ingest binds (per volume: {r.per_volume_impact_io_mean:.6g})" if r.ingest_binds else "  ingest never binds")
        )
        print(
            f"  {row['bound']:<26} {r.impact_io_mean:.6g}  (tangent gap {r.tangent_gap:.1e}; {row['must_move_tb']:.2f} TB to move; "
            f"solved in {r.solve_s:.1f} s, LP {r.lp_s:.1f} s){extra}" + ("" if r.feasible else f"  INFEASIBLE: {r.message}")
        )
    for row in rows:
        fb = f", x{row['x_bound_fulls']:.2f} the bound +fulls" if row["x_bound_fulls"] is not None else ""
        fg = f"  forecast gap x{row['x_oracle']:.3f}" if row["x_oracle"] is not None else ""
        print(f"  {row['policy']:<26} {row['impact_io_mean']:.6g}  x{row['x_bound']:.2f} the bound{fb}{fg}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.bound", description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--seed", type=int, default=None, help="default: each config's seed")
    ap.add_argument("--step-s", type=float, default=300.0)
    ap.add_argument("--fulls", type=int, default=0, help="also report the bound with this many completed fulls per volume")
    ap.add_argument("--coupled", action="store_true", help="couple the volumes by the tiers' total ingest (the per-volume figure is kept)")
    ap.add_argument("--runs", type=Path, default=None, help="a compare folder whose runs to set beside the bound (first config)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from experiments.config import load_config

    out = []
    try:
        if args.runs is not None and not args.runs.is_dir():  # before minutes of solving
            raise UserError(f"--runs: {args.runs}: no such folder")
        for i, path in enumerate(args.configs):
            t0 = time.perf_counter()
            cfg = load_config(path)
            seed = cfg.seed if args.seed is None else args.seed
            inst = from_config(cfg, seed)
            build_s = time.perf_counter() - t0
            variants = [{"coupled": args.coupled}] + ([{"fulls": args.fulls, "coupled": args.coupled}] if args.fulls else [])
            results = [instance_bound(inst, step_s=args.step_s, **v) for v in variants]
            for r in results:
                r.build_s = build_s
            fulls = results[1].impact_io_mean if len(results) > 1 else None
            rows = gaps(results[0].impact_io_mean, policy_impacts(args.runs, seed), fulls) if args.runs is not None and i == 0 else []
            if args.json:
                out.append({"config": path, "bounds": [r.to_dict() for r in results], "policies": rows})
            else:
                _print(path, results, rows)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(dumps(out))
    return 0
