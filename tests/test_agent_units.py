"""The agent's parts on their own: config, state, history steps, restore points, back-off,
the EDF check, processes and adapters. No root needed; real files, real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import ROOT, assert_one_line_error

from host.agent import proc
from host.agent.adapters import CommandAdapter, JobSpec, ResticAdapter
from host.agent.adapters.restic import parse_time
from host.agent.config import load, parse_duration
from host.agent.observe import StepHistory
from host.agent.points import PointBook
from host.agent.retry import Backoff
from host.agent.state import AgentState, StateError
from sim.types import BackupKind


def agent_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "host", "agent", *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=120)


def write_config(tmp_path: Path, **over) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    cfg = {
        "tiers": [{"name": "t", "ingest_mbps": 100, "restore_mbps": 100, "command": "true {path}"}],
        "volumes": [{"name": "v", "paths": [str(data)], "rpo": "1h", "rto": "4h"}],
        **over,
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# ----------------------------------------------------------------------------- config


def test_durations_carry_their_unit():
    assert parse_duration("10s") == 10 and parse_duration("0.5s") == 0.5 and parse_duration("5m") == 300
    assert parse_duration("4h") == 14400 and parse_duration("1d") == 86400 and parse_duration(7) == 7.0
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("ten minutes")


def test_a_valid_config_loads_with_its_defaults(tmp_path):
    cfg = load(write_config(tmp_path))
    assert cfg.cfg.period == 10 and cfg.cfg.policy == "predictive" and cfg.forecaster == "seasonal_naive"
    assert cfg.state_dir == tmp_path / "agent.state"
    assert cfg.models[0].name == "ssd"
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump({"name": "calib", "max_iops": 900.0, "max_mbps": 120.0, "base_latency_ms": 0.7}))
    assert load(write_config(tmp_path, device_model="dev.yaml")).models[0].max_mbps == 120.0


@pytest.mark.parametrize(
    ("over", "needles"),
    [
        ({"bogus": 1}, ["bogus", "unknown key"]),
        ({"period": "fast"}, ["period", "not a duration"]),
        ({"volumes": [{"name": "v", "paths": ["/x"], "rpo": "-1h", "rto": "1h"}]}, ["volumes.0.rpo", "greater than 0"]),
        ({"policy": "nope"}, ["policy", "unknown policy 'nope'"]),
        ({"params": {"bogus_param": 1}}, ["params", "bogus_param"]),
        ({"forecaster": "oracle"}, ["forecaster", "true future"]),
        ({"retrain": {"every_day": 1}}, ["retrain"]),
        ({"device_model": "floppy"}, ["device_model", "unknown device class 'floppy'"]),
        ({"device_model": "missing.yaml"}, ["missing.yaml", "no such file"]),
        ({"history_step": "1s"}, ["history_step", "at least the period"]),
        ({"tiers": [{"name": "t", "ingest_mbps": 1, "restore_mbps": 1}]}, ["tiers.0", "exactly one of 'restic'"]),
    ],
)
def test_a_config_mistake_is_one_line_naming_the_field_and_exit_2(tmp_path, over, needles):
    path = write_config(tmp_path, **over)
    assert_one_line_error(agent_cli("status", path), str(path), *needles)
    assert_one_line_error(agent_cli(path, "--dry-run"), str(path), *needles)
    assert not (tmp_path / "agent.state").exists()  # nothing left behind


def test_malformed_yaml_and_a_missing_file_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("period: 10s\nperiod: 20s\n")
    assert_one_line_error(agent_cli("status", bad), "line 2", "duplicate key 'period'")
    assert_one_line_error(agent_cli(tmp_path / "none.yaml"), "none.yaml", "no such file")


def test_a_dry_run_advises_without_writing_anything(tmp_path):
    from host.blockdev import device_of_path

    if not Path("/proc/diskstats").exists() or device_of_path(tmp_path)[0] is None:
        pytest.skip("needs Linux and a folder on a block device")
    out = agent_cli(write_config(tmp_path, policy="fixed", params={"incremental_every_h": 1.0}), "--dry-run", "--json")
    assert out.returncode == 0, out.stderr
    advice = json.loads(out.stdout)
    (row,) = advice["volumes"]
    assert row["volume"] == "v" and row["tier"] == "t" and row["kind"] in ("full", "incremental") and row["reason"]
    assert row["start"] is not None and row["in_s"] <= 3600.0
    assert not (tmp_path / "agent.state").exists()


def test_status_before_any_run_says_so(tmp_path):
    out = agent_cli("status", write_config(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    assert '"running": false' in out.stdout and "no agent has run" in out.stdout


# ----------------------------------------------------------------------------- state


def test_state_keeps_its_clock_and_admits_one_writer(tmp_path):
    st = AgentState.open(tmp_path / "s", "a")
    epoch = st.start_epoch()
    with st.tx():
        jid = st.add_job(volume="v", tier="t", kind="full", state="running", forced=0, queued_t=1.0, pid=123)
        st.add_points([{"volume": "v", "tier": "t", "snapshot_id": "x", "kind": "full", "snapshot_t": 5.0, "source": "restic"}])
    with pytest.raises(StateError, match="another piop agent is running"):
        AgentState.open(tmp_path / "s", "a")
    ro = AgentState.open_read(tmp_path / "s")
    assert ro.open_jobs()[0]["id"] == jid and ro.points()[0]["snapshot_id"] == "x"
    ro.close()
    st.close()
    st2 = AgentState.open(tmp_path / "s", "a")
    assert (
        st2.start_epoch() == epoch
        and st2.add_points([{"volume": "v", "tier": "t", "snapshot_id": "x", "kind": "full", "snapshot_t": 5.0}]) == 0
    )
    st2.close()
    other = tmp_path / "other"
    other.mkdir()
    (other / "agent.db").write_text("not sqlite at all, just text " * 20)
    with pytest.raises(StateError, match="not"):
        AgentState.open(other, "a")


def test_back_off_doubles_caps_and_survives_a_restart(tmp_path):
    st = AgentState.open(tmp_path / "s", "a")
    b = Backoff(["v", "w"], 10.0, 25.0, st)
    assert [b.failed(0, 100.0, "x") for _ in range(3)] == [10.0, 20.0, 25.0]
    assert not b.ready(0, 110.0) and b.ready(0, 125.0) and b.ready(1, 0.0)
    assert b.first_refusal(0) and not b.first_refusal(0)
    st.close()
    st = AgentState.open(tmp_path / "s", "a")
    b2 = Backoff(["v", "w"], 10.0, 25.0, st)
    assert b2.f[0].total == 3 and b2.f[0].last_error == "x"
    b2.succeeded(0)
    assert b2.ready(0, 0.0) and b2.f[0].total == 3 and b2.f[0].consecutive == 0
    st.close()


# ----------------------------------------------------------------------------- history


def test_step_history_folds_periods_into_time_weighted_steps_and_holds_over_gaps():
    h = StepHistory(2, 10.0, ["vm", "vm"], 0.0)
    vals = lambda x: np.full((5, 2), float(x))  # noqa: E731
    assert h.add(0.0, 4.0, vals(1)) == []
    closed = h.add(4.0, 12.0, vals(4))  # step 0: 4 s at 1, 6 s at 4
    assert [k for k, _ in closed] == [0] and closed[0][1][0, 0] == pytest.approx((4 * 1 + 6 * 4) / 10)
    closed = h.add(12.0, 45.0, vals(2))  # steps 1..3 closed (a long period)
    assert [k for k, _ in closed] == [1, 2, 3]
    hist = h.history()
    assert hist.n_steps == 4 and list(hist.times) == [0, 10, 20, 30] and hist.end_t == 40
    # a restarted agent: persisted steps 0..1, then nothing until step 4 -> steps 2, 3 hold step 1
    h2 = StepHistory(1, 10.0, ["vm"], 0.0)
    h2.load([(0, "v", 1, 2, 3, 4, 5), (1, "v", 6, 7, 8, 9, 10), (4, "v", 0, 0, 0, 0, 0)], ["v"])
    x = h2.history()
    assert list(x.iops[:, 0]) == [1, 6, 6, 6, 0]
    assert h2.add(30.0, 52.0, np.ones((5, 1))) == []  # steps already kept are not counted twice
    closed = h2.add(52.0, 60.0, np.full((5, 1), 3.0))
    assert [k for k, _ in closed] == [5] and closed[0][1][0, 0] == pytest.approx((2 * 1 + 8 * 3) / 10)


def test_restore_points_give_the_policy_its_rpo_and_rto_figures():
    book = PointBook(["a", "b"], ["fast", "slow"], [100.0, 10.0], 60.0, start_epoch=1000.0)
    rows = [
        {
            "volume": "a",
            "tier": "fast",
            "snapshot_id": "s1",
            "kind": "incremental",
            "snapshot_t": 1100.0,
            "bytes": None,
            "source": "restic",
        },
        {"volume": "b", "tier": "slow", "snapshot_id": "j1", "kind": "full", "snapshot_t": 1010.0, "bytes": 5e9, "source": "command"},
        {
            "volume": "b",
            "tier": "slow",
            "snapshot_id": "j2",
            "kind": "incremental",
            "snapshot_t": 1050.0,
            "bytes": 1e8,
            "source": "command",
        },
        {
            "volume": "b",
            "tier": "slow",
            "snapshot_id": "j3",
            "kind": "incremental",
            "snapshot_t": 1090.0,
            "bytes": 2e8,
            "source": "command",
        },
    ]
    book.load(rows, np.array([2e9, 4e9]))
    assert book.last_snap.tolist() == [100.0, 90.0] and book.last_full[0] == -np.inf and book.last_full[1] == 10.0
    assert book.chain_len.tolist() == [1, 3]  # a restic snapshot restores alone; a command's chain is full + incrementals
    assert book.rto_est[0] == pytest.approx(2e9 / 100e6 + 60.0)
    assert book.rto_est[1] == pytest.approx((4e9 + 1e8 + 2e8) / 10e6 + 3 * 60.0)
    assert book.newest_full_id("b", "slow") == "j1" and book.newest_full_id("a", "fast") is None


# ----------------------------------------------------------------------------- feasibility


def test_the_edf_check_names_who_misses_on_an_undersized_tier(decision_context):
    import dataclasses

    from host.agent.feasible import check
    from sim.types import TierView

    ctx = decision_context
    n = ctx.volumes.n
    tiny = [TierView(0, "tiny", "hdd", 5.0, 5.0, 1, 0, 0, 0, 0.0, 0.0, 1e12)]
    idle = dataclasses.replace(ctx, tiers=tiny, job_state=np.zeros(n, np.int8), last_snapshot_t=np.full(n, ctx.t - 60.0))
    v = check(idle, np.full(n, 5e9), 1e9)
    assert not v.feasible and len(v.misses) >= n // 2 and "needs" in v.warning()
    assert all(m.at_epoch >= 1e9 + ctx.volumes.rpo_s.min() - 61 for m in v.misses)
    big = [TierView(0, "big", "ssd", 1e6, 1e6, 10 * n, 0, 0, 0, 0.0, 0.0, 1e15)]
    assert check(dataclasses.replace(idle, tiers=big), np.full(n, 1e6), 1e9).feasible


# ----------------------------------------------------------------------------- processes & adapters


def test_a_job_runs_in_its_own_group_reports_its_exit_code_and_dies_whole(tmp_path):
    h = proc.spawn(7, ["sh", "-c", "echo out; echo err >&2; exit 4"], dict(os.environ), tmp_path / "j7", None)
    end = time.time() + 10
    while h.alive() and time.time() < end:
        time.sleep(0.02)
    assert h.exit_code() == 4 and (tmp_path / "j7" / "out").read_text() == "out\n"
    h = proc.spawn(8, ["sh", "-c", "sleep 60 & sleep 60 & wait"], dict(os.environ), tmp_path / "j8", None)
    try:
        time.sleep(0.3)
        assert len(proc.group_members(h.pid)) == 4 and os.getpgid(h.pid) == h.pid != os.getpgid(0)  # wrapper, sh, 2 sleeps
        assert proc.find_job_group(8, tmp_path / "j8") == h.pid and proc.find_job_group(8, tmp_path / "other") is None
        adopted = proc.adopt(8, None, None, None, tmp_path / "j8")  # found by its argv alone
        assert adopted is not None and adopted.popen is None and adopted.pid == h.pid
        assert proc.adopt(8, h.pid, h.proc_start + 1, h.boot, tmp_path / "j8") is None  # a recycled pid is not the job
    finally:
        h.kill(grace_s=5.0)
    assert proc.group_members(h.pid) == [] and h.exit_code() == -signal.SIGTERM


def test_command_template_expands_paths_and_reads_the_outcome(tmp_path):
    a = CommandAdapter("tar -cf /backup/{volume}-{kind}-{tier}.tar {path} --label='job {job}'")
    spec = JobSpec(3, "db", ("/a b", "/c"), BackupKind.DIFFERENTIAL, "slow")
    argv, _ = a.command(spec)
    assert argv == ["tar", "-cf", "/backup/db-differential-slow.tar", "/a b", "/c", "--label=job 3"]
    (tmp_path / "err").write_text("warning: x\ntar: /c: Cannot open: No such file or directory\n")
    out = a.outcome(spec, tmp_path, 2)
    assert not out.ok and "exit code 2" in out.error and "Cannot open" in out.error
    assert a.outcome(spec, tmp_path, 0).ok
    assert CommandAdapter("no-such-program-xyz {path}").check() is not None
    with pytest.raises(ValueError, match="bad placeholder"):
        CommandAdapter("cp {path} {where}").command(spec)


def test_restic_kinds_map_to_what_restic_reads(tmp_path):
    r = ResticAdapter("/repo", tmp_path / "pw")
    argv = lambda kind, parent=None: r.command(JobSpec(1, "db", ("/d",), kind, "fast", parent))[0]  # noqa: E731
    assert "--force" in argv(BackupKind.FULL) and argv(BackupKind.FULL)[-1] == "/d"
    assert "--force" not in argv(BackupKind.INCREMENTAL) and "--parent" not in argv(BackupKind.INCREMENTAL)
    assert argv(BackupKind.DIFFERENTIAL, "abc123")[-3:-1] == ["--parent", "abc123"]
    assert "--force" in argv(BackupKind.DIFFERENTIAL)  # no full yet: a differential reads everything
    assert {"piop-volume=db", "piop-kind=incremental", "piop-job=1"} <= set(argv(BackupKind.INCREMENTAL))
    assert parse_time("2026-11-26T02:01:27.610453958Z") == pytest.approx(1795658487.610454)
    assert parse_time("2026-11-26T03:01:27+01:00") == pytest.approx(1795658487.0)


def test_the_dry_run_rollout_finds_the_fixed_policy_s_next_backup(decision_context):
    import dataclasses

    from host.agent.advise import rollout
    from schedulers.base import SCHEDULERS

    ctx = dataclasses.replace(decision_context, job_state=np.zeros(decision_context.volumes.n, np.int8))
    sched = SCHEDULERS.create("fixed", incremental_every_h=1.0, incremental_at_h=0.5)
    sched.reset()
    found = rollout(sched, ctx, 3 * 3600.0, 300.0)
    t_cal = ctx.start_epoch + ctx.t
    due = (np.floor((t_cal - 1800.0) / 3600.0) + 1) * 3600.0 + 1800.0 - ctx.start_epoch  # next hh:30
    assert set(found) == set(range(ctx.volumes.n))
    assert all(due <= t < due + 300.0 for t, _ in found.values())
    assert sched.started == 0  # the policy object itself was not touched


@pytest.mark.parametrize("policy", ["predictive", "fixed", "reactive"])
def test_each_registered_policy_drives_the_real_loop(tmp_path, policy):
    """The loop asks the registered policy (the simulator's own class) on a context built from
    this host, and its starts become real processes and restore points (a command tier)."""
    from host.agent.loop import Agent
    from host.blockdev import device_of_path
    from schedulers.base import SCHEDULERS

    if device_of_path(tmp_path)[0] is None:
        pytest.skip(f"{tmp_path} is not on a block device: {device_of_path(tmp_path)[1]}")
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.bin").write_bytes(os.urandom(100_000))
    ran = tmp_path / "ran.txt"
    tier = {"name": "t", "ingest_mbps": 100, "restore_mbps": 100, "command": f"sh -c 'echo {{kind}} >> {ran}' {{path}}"}
    vol = {"name": "v", "paths": [str(data)], "rpo": "2s", "rto": "1h"}
    params = {"fallback_horizon_h": 0.01} if policy == "predictive" else {}  # its flat fallback forecast: 36 steps of 1 s
    cfg = write_config(tmp_path, period="0.2s", history_step="1s", horizon="10s", policy=policy, params=params, tiers=[tier], volumes=[vol])
    loaded = load(cfg)
    lines: list[str] = []
    agent = Agent(loaded, log=lines.append)
    try:
        agent.open()
        assert type(agent.scheduler) is SCHEDULERS.get(policy)
        end = time.monotonic() + 20.0
        while agent.book.count[0] < 1 and time.monotonic() < end:
            agent.step()
            time.sleep(0.2)
    finally:
        agent.close()
    st = AgentState.open_read(loaded.state_dir)
    try:
        points, decisions = st.points(), st.decisions()
    finally:
        st.close()
    assert ran.exists() and ran.read_text().split(), lines  # the command ran, with its kind
    assert [d for d in decisions if d["action"] == "start" and d["accepted"]], lines
    assert len(points) >= 1 and all(p["volume"] == "v" and p["source"] == "command" for p in points), points
