"""`piop tune` on a real PostgreSQL server and on a JournalStorage file: two processes share one
study and both record trials; a process killed mid-trial leaves a trial that is failed (by its
pid on this host, or by Optuna's heartbeat for another machine's) and run again.

The server is a throwaway one: `initdb` in a temporary folder, `pg_ctl` on a free local port
(as the `postgres` user when run as root: initdb refuses root), stopped and removed after."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml

from common.errors import UserError
from experiments.tune import tune

ROOT = Path(__file__).resolve().parents[1]
STUDY = "shared"


def pg_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0)
    return Path(dirs[-1]) if dirs and (Path(dirs[-1]) / "initdb").is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_server_user(args: list[str]) -> list[str]:
    """`args` run as `postgres` when this is root (PostgreSQL will not run as root)."""
    if os.geteuid() != 0:
        return args
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
    return ["runuser", "-u", "postgres", "--", *args]


@pytest.fixture(scope="module")
def pg_server():
    """A PostgreSQL server of its own: (host, port, superuser)."""
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (initdb not found; Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install piop[postgres])")
    if os.geteuid() == 0:
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="piop-pg-"))
    data, log = root / "data", root / "server.log"
    if os.geteuid() == 0:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    port = free_port()
    run = lambda args: subprocess.run(as_server_user(args), capture_output=True, text=True, timeout=120)  # noqa: E731
    try:
        init = run([str(bindir / "initdb"), "-D", str(data), "-U", "piop", "--auth=trust", "-E", "UTF8", "--no-sync"])
        assert init.returncode == 0, init.stderr
        opts = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"
        start = run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60", "start"])
        assert start.returncode == 0, start.stderr + (log.read_text() if log.exists() else "")
        yield "127.0.0.1", port, "piop"
    finally:
        if (data / "postmaster.pid").exists():
            stop = run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"])
            if stop.returncode != 0 and (data / "postmaster.pid").exists():  # never leave a server behind
                os.kill(int((data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server, request) -> str:
    """A fresh database on the server for one test."""
    import psycopg2

    host, port, user = pg_server
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name).lower()[:50]
    conn = psycopg2.connect(host=host, port=port, user=user, dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    return f"postgresql://{user}@{host}:{port}/{name}"


def make_spec(tmp_path: Path, n_trials: int, duration_h: float, **changes) -> Path:
    """A tiny study: a fixed random sampler over two settings of the reactive policy."""
    base = {
        "name": "rdb",
        "seed": 1,
        "duration_h": duration_h,
        "fleet": [{"workload": "database", "count": 2, "used_gb": 100, "name": "db-"}],
        "policies": [{"policy": "reactive", "params": {"full_tier": "hdd"}}],
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    spec = {
        "base": "base.yaml",
        "n_trials": n_trials,
        "sampler": "random",
        "params": {"params.backoff": {"low": 0.1, "high": 0.9}, "params.throttle_impact": {"low": 0.01, "high": 0.5, "log": True}},
        **changes,
    }
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def start_tune(spec: Path, url: str, out: Path, *extra) -> subprocess.Popen:
    args = ["tune", spec, "--storage", url, "--study", STUDY, "--out", out, "--json", "-q", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "experiments", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def storage_of(url: str):
    if url.startswith("journal:"):
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url[len("journal:") :]))
    return optuna.storages.RDBStorage(url.replace("postgresql://", "postgresql+psycopg2://"))


def trials_of(url: str) -> list:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name=STUDY, storage=storage_of(url)).get_trials(deepcopy=False)


def run_two(spec: Path, url: str, out: Path) -> list[dict]:
    """Two `piop tune` processes at once on one study; their JSON outputs."""
    procs = [start_tune(spec, url, out), start_tune(spec, url, out)]
    outs = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=240)
            assert p.returncode == 0, stderr
            assert "Traceback" not in stderr, stderr
            outs.append(json.loads(stdout))
    finally:
        for p in procs:
            p.kill()
    return outs


def assert_shared(url: str, outs: list[dict], n_trials: int, out: Path) -> None:
    trials = trials_of(url)
    states = [t.state.name for t in trials]
    assert set(states) == {"COMPLETE"}, states  # all finished, none RUNNING
    assert len(trials) >= n_trials
    per_process: dict[str, int] = {}
    for t in trials:
        per_process[t.user_attrs["worker"]] = per_process.get(t.user_attrs["worker"], 0) + 1
    print(f"{url.split(':', 1)[0]}: trials per process {sorted(per_process.values())}")
    assert len(per_process) == 2, per_process  # both processes recorded trials
    # each trial drew its own settings: the sampler is seeded by trial number, not alike in both processes
    draws = {tuple(sorted(t.params.items())) for t in trials}
    assert len(draws) == len(trials)
    # whichever finished last exported the whole study
    summary = json.loads((out / "rdb" / "tune" / STUDY / "summary.json").read_text())
    assert max(o["n_trials"] for o in outs) == len(trials) == summary["n_trials"]
    assert summary["chosen"] is not None and summary["chosen"]["number"] in {t.number for t in trials}
    assert summary["storage"] == outs[0]["storage"]


def test_two_processes_share_a_postgresql_study(tmp_path, pg_url):
    spec = make_spec(tmp_path, n_trials=10, duration_h=24)
    out = tmp_path / "res"
    outs = run_two(spec, pg_url, out)
    assert_shared(pg_url, outs, 10, out)
    assert outs[0]["storage"] == pg_url  # no password in it to hide


def test_two_processes_share_a_journal_study(tmp_path):
    spec = make_spec(tmp_path, n_trials=10, duration_h=24)
    out = tmp_path / "res"
    url = f"journal:{tmp_path / 'study.log'}"
    outs = run_two(spec, url, out)
    assert_shared(url, outs, 10, out)


def wait_running(url: str, proc: subprocess.Popen, timeout_s: float = 90) -> int:
    """The number of a trial RUNNING in `proc`."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            trials = trials_of(url)
        except KeyError:  # the study is not created yet
            trials = []
        running = [t for t in trials if t.state.name == "RUNNING" and "process" in t.user_attrs]
        if running:
            return running[-1].number
        time.sleep(0.2)
    raise AssertionError("no trial started in time")


@pytest.mark.parametrize("elsewhere", [False, True], ids=["this-host", "other-host-heartbeat"])
def test_killed_process_trial_is_failed_and_retried(tmp_path, pg_url, elsewhere):
    """kill -9 mid-trial: the next run fails the trial left RUNNING and runs it again. On this
    host the dead pid tells at once; for a trial of another machine only the heartbeat can tell
    (silent for grace_s), which is what `elsewhere` stands for."""
    spec = make_spec(tmp_path, n_trials=40, duration_h=48, heartbeat_s=1, grace_s=2)
    out = tmp_path / "res"
    proc = start_tune(spec, pg_url, out)
    try:
        killed = wait_running(pg_url, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    before = {t.number: t for t in trials_of(pg_url)}
    assert before[killed].state.name == "RUNNING"
    if elsewhere:  # the trial as if another machine ran it: this host cannot judge its pid
        storage = storage_of(pg_url)
        owner = dict(before[killed].user_attrs["process"], host="elsewhere.invalid")
        storage.set_trial_user_attr(before[killed]._trial_id, "process", owner)
        time.sleep(2.5)  # past grace_s without a heartbeat
    done = sum(t.state.name == "COMPLETE" for t in before.values())
    again = start_tune(spec, pg_url, out, "--trials", done + 1)
    stdout, stderr = again.communicate(timeout=240)
    assert again.returncode == 0, stderr
    after = trials_of(pg_url)
    assert after[killed].state.name == "FAIL"
    assert "RUNNING" not in {t.state.name for t in after}
    (retry,) = [t for t in after if t.system_attrs.get("failed_trial") == killed]
    assert retry.state.name == "COMPLETE" and retry.params == before[killed].params
    assert retry.user_attrs["worker"].endswith(f":{again.pid}")  # run by the new process, not taken for the dead one's
    assert json.loads(stdout)["failed_trials"] == 1


def test_storage_urls_are_checked_first(tmp_path, pg_server):
    """A server without that database, or a journal in a missing folder: one line naming it,
    before any trial (the command's exit 2 for a UserError: tests/test_tune.py)."""
    spec = make_spec(tmp_path, n_trials=1, duration_h=1)
    host, port, user = pg_server
    with pytest.raises(UserError, match=rf"'postgresql://{user}:\*\*\*@{host}:{port}/nosuchdb' is unreachable: .*nosuchdb"):
        tune(spec, storage=f"postgresql://{user}:pw@{host}:{port}/nosuchdb", out_root=tmp_path / "r")
    with pytest.raises(UserError, match="folder .*none does not exist"):
        tune(spec, storage=f"journal:{tmp_path}/none/j.log", out_root=tmp_path / "r")
    assert not list((tmp_path / "r").rglob("summary.json"))
