"""`piop agent status CONFIG`: the agent's state read while it runs (or after it stopped).

Reads the state database read-only: the live status the agent refreshes every period
(per volume: restore-point age against the RPO, the job and the limit in force, observed
and predicted load, failures, a predicted RPO miss), restore points and job outcomes
counted from the tables, and whether an agent holds the state's lock now.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import sys
import time

from host.agent.adapters import kind_name
from host.agent.config import Loaded
from host.agent.state import AgentState


def agent_running(folder) -> bool:
    """Whether an agent holds the state's lock (checked without taking or removing it)."""
    path = folder / "agent.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return False


def live(agent, ctx, now: float) -> dict:
    """What the agent shows of itself each period (the state's `status.live`)."""
    fc = agent.forecast
    i0 = None if fc is None else min(max(int((ctx.t - fc.origin_t) // fc.step_s), 0), fc.horizon - 1)
    miss = {m.volume: m for m in (agent.verdict.misses if agent.verdict else [])}
    vols = []
    for v, name in enumerate(agent.names):
        job = agent.jobs.jobs[v]
        f = agent.backoff.f[v]
        vols.append(
            {
                "volume": name,
                "device": agent.host.devices[v],
                "rpo_s": ctx.volumes.rpo_s[v],
                "rp_age_s": ctx.rp_age_s[v],
                "last_snapshot": ctx.last_snapshot_t[v] + agent.start_epoch,
                "restore_points": int(agent.book.count[v]),
                "rto_estimate_s": ctx.rto_estimate_s[v],
                "job": None
                if job is None
                else {
                    "id": job.id,
                    "kind": kind_name(job.kind),
                    "tier": job.spec.tier,
                    "state": ["none", "queued", "running", "paused"][int(ctx.job_state[v])],
                    "rate_mbps": ctx.job_rate_mbps[v],
                    "throttle_mbps": job.throttle,
                    "limit": job.limit,
                    "forced": job.forced,
                },
                "observed": {"iops": ctx.prod_iops[v], "mbps": ctx.prod_mbps[v]},
                "predicted": None
                if i0 is None
                else {
                    "iops": fc.mean[v, i0, 0],
                    "mbps": fc.mean[v, i0, 1],
                    "upper_iops": fc.upper[v, i0, 0],
                    "upper_mbps": fc.upper[v, i0, 1],
                },
                "failures": f.total,
                "next_retry": f.next_retry_t or None,
                "last_error": f.last_error,
                "will_miss_at": miss[name].at_epoch if name in miss else None,
            }
        )
    return {
        "updated": now,
        "pid": os.getpid(),
        "period_s": agent.cfg.period,
        "policy": agent.cfg.policy,
        "throttle": None if agent.probe is None else {"mechanism": agent.probe.name, "notes": agent.probe.notes},
        "forecaster": None
        if agent.service is None
        else {"name": agent.service.name, "mode": agent.service.mode, "model": getattr(fc, "model", None)},
        "policy_summary": agent.scheduler.summary(),
        "feasibility": None if agent.verdict is None else agent.verdict.as_dict(),
        "skipped": agent.host.skipped,
        "volumes": vols,
    }


def collect(loaded: Loaded) -> dict:
    """Everything `status` shows, as plain data."""
    st = AgentState.open_read(loaded.state_dir)
    if st is None:
        return {"state": str(loaded.state_dir), "running": False, "volumes": [], "note": "no agent has run with this state yet"}
    with contextlib.closing(st):
        live = st.status().get("live", {})
        counts = st.job_counts()
        points = st.points()
        forced = st.con.execute("SELECT volume, COUNT(*) FROM decisions WHERE forced = 1 AND accepted = 1 GROUP BY volume").fetchall()
        start_epoch = st.meta("start_epoch")
    forced_by = dict(forced)
    vols = live.get("volumes", [])
    for v in vols:
        name = v["volume"]
        v["done"] = counts.get((name, "done"), 0)
        v["failed"] = counts.get((name, "failed"), 0)
        v["forced_starts"] = forced_by.get(name, 0)
        v["restore_points"] = sum(1 for p in points if p["volume"] == name)
    return {
        "state": str(loaded.state_dir),
        "running": agent_running(loaded.state_dir),
        "start_epoch": float(start_epoch) if start_epoch else None,
        **{k: v for k, v in live.items() if k != "volumes"},
        "volumes": vols,
    }


def _age(s) -> str:
    if s is None or (isinstance(s, float) and not math.isfinite(s)):
        return "never"
    s = float(s)
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def render(data: dict) -> None:
    """The status as a table on stdout, and a few lines about the agent."""
    from rich.console import Console
    from rich.table import Table

    out = Console() if sys.stdout.isatty() else Console(width=220)
    upd = data.get("updated")
    state = "running" if data["running"] else "not running"
    when = f", last period {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(upd))}" if upd else ""
    out.print(f"agent {state} (state {data['state']}{when})")
    if data.get("note"):
        out.print(data["note"])
        return
    thr = data.get("throttle") or {}
    fc = data.get("forecaster") or {}
    out.print(
        f"policy {data.get('policy')}; forecaster {fc.get('name', '-')} ({fc.get('mode', '-')}); throttle {thr.get('mechanism', '-')}"
    )
    table = Table()
    for h in (
        "volume",
        "RPO",
        "age",
        "points",
        "done",
        "failed",
        "forced",
        "job",
        "read MB/s",
        "limit",
        "obs MB/s",
        "pred MB/s",
        "will miss",
    ):
        table.add_column(h, justify="left" if h in ("volume", "job", "limit") else "right")
    for v in data["volumes"]:
        job = v.get("job")
        pred = v.get("predicted")
        miss = v.get("will_miss_at")
        table.add_row(
            v["volume"],
            _age(v["rpo_s"]),
            _age(v.get("rp_age_s")),
            str(v["restore_points"]),
            str(v["done"]),
            str(v["failed"]),
            str(v["forced_starts"]),
            f"{job['state']} {job['kind']} to {job['tier']}" if job else "-",
            f"{job['rate_mbps']:.1f}" if job else "-",
            job["limit"] if job else "-",
            f"{v['observed']['mbps']:.1f}",
            f"{pred['mbps']:.1f}" if pred else "-",
            time.strftime("%H:%M:%S", time.localtime(miss)) if miss else "-",
        )
    out.print(table)
    feas = data.get("feasibility") or {}
    if feas and not feas.get("feasible", True):
        out.print(
            f"the tiers cannot meet every RPO: {', '.join(m['volume'] for m in feas['misses'])} will miss; {feas.get('capacity', '')}"
        )
    for k, why in (data.get("skipped") or {}).items():
        out.print(f"not served: {k}: {why}")
