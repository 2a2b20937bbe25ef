"""`piop compare --cluster`: a real Dask scheduler and two workers, one killed mid-sweep.

The sweep must end with exit 0, the killed worker's run retried on the other one, and the
same per-run fleet metrics as the same compare run locally. An address nobody answers,
or a scheduler with no workers, is one error line; a worker that does not see the
results folder is named by the check each worker runs before any run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cli_helpers import ROOT, assert_one_line_error

from common.errors import UserError
from common.jsonable import dumps
from experiments.compare import compare
from experiments.config import load_config

distributed = pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install -e '.[cluster]')")

from experiments.cluster import check_address, worker_check  # noqa: E402 - after the skip

WALL = ("wall_s", "sim_wall_s", "decide_wall_s", "forecast_wall_s")


def tiny_config(tmp_path: Path) -> Path:
    cfg = {
        "name": "tiny",
        "seeds": [1, 2, 3],
        "duration_h": 6,
        "fleet": [{"workload": "database", "count": 3, "used_gb": 100, "name": "db-"}],
        "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def env_without_cluster(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PIOP_CLUSTER"}
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", **extra})
    return env


def compare_cmd(cfg: Path, out: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "experiments", "compare", str(cfg), "--out", str(out), "--json", "-q", *more]


def stop(proc: subprocess.Popen) -> None:
    """SIGKILL a process we started (and its group: `start_new_session`), then reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


@pytest.fixture
def dask_cluster(tmp_path):
    """(address, {worker name: process}, client): a scheduler and two one-thread workers."""
    d = tmp_path / "dask"
    d.mkdir()
    procs: dict[str, subprocess.Popen] = {}
    client = None

    def start(name: str, *args: str) -> None:
        log = open(d / f"{name}.log", "w")  # noqa: SIM115 - closed with the process below
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=d, stdout=log, stderr=subprocess.STDOUT, env=env_without_cluster(), start_new_session=True
        )
        log.close()

    try:
        sched = d / "scheduler.json"
        start(
            "scheduler",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(sched),
        )
        deadline = time.monotonic() + 30
        while not sched.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched.read_text())["address"]
        for name in ("w0", "w1"):
            start(name, "distributed.cli.dask_worker", address, "--name", name, "--nworkers", "1", "--nthreads", "1", "--memory-limit", "0",
                  "--no-nanny", "--no-dashboard", "--local-directory", str(d))  # fmt: skip
        client = distributed.Client(address, timeout=30, set_as_default=False)
        client.wait_for_workers(2, timeout=30)
        yield address, procs, client
    finally:
        if client is not None:
            client.close(timeout=5)
        for proc in procs.values():
            stop(proc)


def worker_running(client, run_id: str) -> str | None:
    """The name of the worker the scheduler has `run_id`'s task on, if any."""
    names = {addr: w["name"] for addr, w in client.scheduler_info()["workers"].items()}
    for addr, keys in client.processing().items():
        if any(str(k).startswith(f"piop-{run_id}-") for k in keys):
            return names.get(addr)
    return None


def kill_one_mid_run(client, procs: dict[str, subprocess.Popen], exp_dir: Path, sweep: subprocess.Popen) -> tuple[str, str]:
    """SIGKILL the worker running the first run seen in flight (its lock is held); (run id, worker)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sweep.poll() is None:
        for lock in sorted(exp_dir.glob(".*.lock")):
            run_id = lock.name[1 : -len(".lock")]
            name = worker_running(client, run_id)
            if name in procs:
                os.kill(procs[name].pid, signal.SIGKILL)
                procs[name].wait(timeout=10)
                return run_id, name
        time.sleep(0.02)
    raise AssertionError(f"no run seen in flight on a worker (sweep exit {sweep.poll()})")


def fleet_rows(data: dict) -> dict[tuple[str, int], dict]:
    return {(r["policy"], r["seed"]): {k: v for k, v in r.items() if k not in WALL} for r in data["runs"]}


def test_killed_worker_is_retried_elsewhere_and_the_table_matches_a_local_compare(dask_cluster, tmp_path):
    address, procs, client = dask_cluster
    cfg = tiny_config(tmp_path)
    t0 = time.monotonic()
    sweep = subprocess.Popen(
        compare_cmd(cfg, tmp_path / "cluster", "--cluster", address),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_without_cluster(),
    )
    try:
        killed_run, killed_worker = kill_one_mid_run(client, procs, tmp_path / "cluster" / "tiny", sweep)
        stdout, stderr = sweep.communicate(timeout=180)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    cluster_s = time.monotonic() - t0
    assert sweep.returncode == 0, stderr
    on_cluster = json.loads(stdout)
    s = on_cluster["sweep"]
    everything = {f"{p}-s{seed}" for p in ("fixed", "reactive") for seed in (1, 2, 3)}
    assert s["failed"] == {} and s["elsewhere"] == []
    assert set(s["ran"]) | set(s["skipped"]) == everything
    assert killed_run in s["retried"], f"{killed_run} was running on {killed_worker} when it was killed; retried: {s['retried']}"
    assert not list((tmp_path / "cluster" / "tiny").glob(".*")), "no lock, probe or temporary folder left behind"

    t1 = time.monotonic()
    local = compare(load_config(cfg), tmp_path / "local", on_warning=lambda w: None)  # the local default: no server
    here = json.loads(dumps(local.to_json()))
    local_s = time.monotonic() - t1
    assert fleet_rows(on_cluster) == fleet_rows(here)
    strip = [{k: v for k, v in r.items() if "wall_s" not in k} for r in on_cluster["summary"]]
    assert strip == [{k: v for k, v in r.items() if "wall_s" not in k} for r in here["summary"]]
    print(f"cluster sweep {cluster_s:.1f} s, local {local_s:.1f} s; killed {killed_worker} running {killed_run}; retried {s['retried']}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_address_nobody_answers_is_one_line(tmp_path):
    cfg = tiny_config(tmp_path)
    address = f"tcp://127.0.0.1:{free_port()}"
    env = env_without_cluster(PIOP_CLUSTER=address, PIOP_CLUSTER_TIMEOUT="1")  # the environment variable names it
    proc = subprocess.run(compare_cmd(cfg, tmp_path / "r"), cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert_one_line_error(proc, address, "no Dask scheduler answered within 1 s")
    assert not (tmp_path / "r" / "tiny" / "fixed-s1").exists()
    for bad in ("tcp://host:notaport", "http://host:8786", "tcp://:8786"):
        with pytest.raises(UserError, match="not a Dask scheduler address"):
            check_address(bad)
    check_address("tcp://127.0.0.1:8786")


def test_a_scheduler_without_workers_is_one_line(tmp_path):
    cfg = tiny_config(tmp_path)
    with distributed.LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None) as empty:
        env = env_without_cluster(PIOP_CLUSTER_TIMEOUT="1")
        proc = subprocess.run(
            compare_cmd(cfg, tmp_path / "r", "--cluster", empty.scheduler_address),
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert_one_line_error(proc, empty.scheduler_address, "no workers after 1 s")


def test_a_worker_that_does_not_see_the_results_folder_is_named(tmp_path):
    token_file = tmp_path / ".piop-cluster-check-x"
    assert "cannot see the results folder" in worker_check(str(token_file), "abc", [])["problem"]
    token_file.write_text("another folder's token")
    assert "sees another folder" in worker_check(str(token_file), "abc", [])["problem"]
    token_file.write_text("abc")
    found = worker_check(str(token_file), "abc", [str(tmp_path / "no-such-trace")])
    assert found["problem"] == f"cannot see the trace {tmp_path / 'no-such-trace'}"
    assert worker_check(str(token_file), "abc", [])["problem"] is None
