"""`piop agent` on this host: real fio load, real restic repositories, real cgroups.

Real-host tests on a scale of seconds (decision period 0.5 s, RPO of a minute or two):
fio plays a production load with busy and quiet phases on the device backing the test's
folder, the agent backs up a few hundred MB of files the test wrote. Each test skips
with its reason where root, restic, fio or a block device is missing; nothing is faked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from host import diskstats
from host.blockdev import device_of_path

ROOT = Path(__file__).resolve().parents[1]
MB = 1e6
#: the device model the tests give the agent: far below this disk's real capacity, so fio's busy
#: phases (40-50 % of it) dominate whatever else reads from a shared disk meanwhile
DEVICE = {"name": "test-disk", "max_iops": 20000.0, "max_mbps": 500.0, "base_latency_ms": 0.5}


# ----------------------------------------------------------------------------- the host


def need_host(folder: Path) -> str:
    """The block device under `folder`; skips (with the reason) where these tests cannot run."""
    if sys.platform != "linux" or not Path("/proc/diskstats").exists():
        pytest.skip("not Linux (no /proc/diskstats)")
    if os.geteuid() != 0:
        pytest.skip("needs root (cgroups, dropping the page cache)")
    for tool, how in (("restic", "apt-get install restic (.ci/run installs it)"), ("fio", "apt-get install fio")):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed ({how})")
    dev, how = device_of_path(folder)
    if dev is None:
        pytest.skip(f"the test folder is not on a block device: {how}")
    return dev


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def write_files(folder: Path, total_mb: int, n: int = 4, seed: int = 0) -> None:
    """`n` files of random bytes, `total_mb` in all (rewritten: new content, new mtime)."""
    folder.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    for i in range(n):
        with open(folder / f"file{i}.bin", "wb") as fh:
            for j in range(total_mb // n):
                fh.write(bytes([(seed + i + j) & 0xFF]) + block[1:])
    os.sync()


def restic(repo: Path, pw: Path, *args, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "RESTIC_PASSWORD_FILE": str(pw)}
    proc = subprocess.run(["restic", "-r", str(repo), *map(str, args)], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def snapshots(repo: Path, pw: Path) -> list[dict]:
    return json.loads(restic(repo, pw, "--json", "--no-lock", "snapshots").stdout or "[]")


class Site:
    """A test folder: repositories, password, device model, data folders, configs."""

    def __init__(self, root: Path):
        self.root = root
        self.dev = need_host(root)
        self.pw = root / "restic.pass"
        self.pw.write_text("piop-test\n")
        (root / "device.yaml").write_text(yaml.safe_dump(DEVICE))
        self.fio_file = root / "load" / "fio.dat"

    def repo(self, name: str = "fast") -> Path:
        repo = self.root / f"repo-{name}"
        if not repo.exists():
            restic(repo, self.pw, "init")
        return repo

    def config(self, name: str, volumes: list[dict], tiers: list[dict] | None = None, **top) -> Path:
        cfg = {
            "name": f"{name}-{os.getpid()}",
            "state": str(self.root / f"{name}.state"),
            "period": "0.5s",
            "history_step": "2s",
            "horizon": "80s",
            "impact_threshold": 0.05,
            "device_model": "device.yaml",
            "estimate_every": "1s",
            "tiers": tiers
            or [
                {
                    "name": "fast",
                    "media": "ssd",
                    "ingest_mbps": 400,
                    "restore_mbps": 400,
                    "slots": 2,
                    "restic": {"repository": str(self.repo()), "password_file": str(self.pw)},
                }
            ],
            "volumes": volumes,
            **top,
        }
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path


@pytest.fixture
def site(tmp_path):
    yield Site(tmp_path)
    for big in [tmp_path / "load", *tmp_path.glob("data-*"), *tmp_path.glob("repo-*")]:  # pytest keeps tmp folders: not these
        shutil.rmtree(big, ignore_errors=True)


# ----------------------------------------------------------------------------- processes


class AgentProc:
    def __init__(self, config: Path, *args, log: Path, user: int | None = None, env: dict | None = None):
        self.log = log
        self.fh = open(log, "ab")
        pre = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
        self.p = subprocess.Popen(
            [*pre, sys.executable, "-m", "host", "agent", str(config), *map(str, args)],
            cwd=ROOT,
            stdout=self.fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float) -> str:
        end = time.time() + timeout
        while time.time() < end:
            text = self.text()
            if needle in text:
                return text
            if self.p.poll() is not None:
                raise AssertionError(f"the agent exited ({self.p.returncode}) before {needle!r}:\n{text}")
            time.sleep(0.2)
        raise AssertionError(f"no {needle!r} after {timeout} s:\n{self.text()}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        rc = self.p.wait(timeout)
        self.fh.close()
        return rc


def query(state: Path, sql: str, args=()) -> list[tuple]:
    with sqlite3.connect(f"file:{state / 'agent.db'}?mode=ro", uri=True, timeout=10) as con:
        return con.execute(sql, args).fetchall()


def wait_rows(state: Path, sql: str, n: int, timeout: float) -> list[tuple]:
    end = time.time() + timeout
    rows: list[tuple] = []
    while time.time() < end:
        try:
            rows = query(state, sql)
        except sqlite3.OperationalError:
            rows = []
        if len(rows) >= n:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{sql}: {len(rows)} rows after {timeout} s (wanted {n})")


def piop_json(*args) -> dict:
    proc = subprocess.run([sys.executable, "-m", "host", *map(str, args), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def lay_out(fio_file: Path) -> None:
    """fio's 512 MB file (written once per test: lay it out before the clock of a scenario starts)."""
    if fio_file.exists() and fio_file.stat().st_size >= 512 << 20:
        return
    fio_file.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["fio", "--name=lay", f"--filename={fio_file}", "--size=512M", "--create_only=1"], capture_output=True, check=True)


class Load(threading.Thread):
    """fio phases one after another on one file (direct I/O, so no page cache in the way)."""

    RATES = {"busy": ("randread", "64k", "200m"), "quiet": ("randread", "4k", "200k"), "heavy": ("randread", "64k", "250m")}

    def __init__(self, fio_file: Path, plan: list[tuple[str, float]]):
        super().__init__(daemon=True)
        self.fio_file, self.plan = fio_file, plan
        self.phases: list[tuple[str, float, float]] = []
        self.stop_flag = threading.Event()
        lay_out(fio_file)

    def run(self) -> None:
        for kind, secs in self.plan:
            if self.stop_flag.is_set():
                return
            rw, bs, rate = self.RATES[kind]
            t0 = time.time()
            self.proc = subprocess.Popen(
                [
                    "fio",
                    "--name=prod",
                    f"--filename={self.fio_file}",
                    f"--rw={rw}",
                    f"--bs={bs}",
                    f"--rate={rate}",
                    "--direct=1",
                    "--ioengine=libaio",
                    "--iodepth=16",
                    "--size=512M",
                    f"--runtime={secs}",
                    "--time_based",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.proc.wait()
            self.phases.append((kind, t0, time.time()))

    def kind_at(self, t: float) -> str | None:
        for kind, a, b in self.phases:
            if a <= t < b:
                return kind
        return None

    def stop(self) -> None:
        self.stop_flag.set()
        p = getattr(self, "proc", None)
        if p is not None and p.poll() is None:
            p.terminate()
        self.join(30)


def job_processes(root: Path) -> list[int]:
    """Pids of the backup processes of agents whose state is under `root` (by their wrapper's argv)."""
    groups, members = set(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            args = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        if len(args) > 5 and args[3].startswith(b"piop-job-") and args[5].startswith(str(root).encode()):
            groups.add(int(entry.name))
        tool = args[0].endswith(b"restic") and any(str(root).encode() in a for a in args)  # even if its wrapper is gone
        members.append((int(entry.name), -1 if tool else int(stat[stat.rfind(")") + 2 :].split()[2])))
    return [pid for pid, pgid in members if pgid in groups or pgid == -1]


class DiskReads(threading.Thread):
    """Samples, every 0.25 s, the device's cumulative bytes read (/proc/diskstats) and the bytes
    the backup processes of agents under `root` read from storage (their /proc/PID/io)."""

    def __init__(self, dev: str, root: Path):
        super().__init__(daemon=True)
        self.dev, self.root = dev, root
        self.samples: list[tuple[float, float, float]] = []
        self.last: dict[int, float] = {}  # pid -> its read_bytes when last seen (kept after it exits)
        self.stop_flag = threading.Event()

    def _jobs(self) -> float:
        for pid in job_processes(self.root):
            try:
                io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
                self.last[pid] = float(io["read_bytes"])
            except (OSError, KeyError, ValueError):
                pass
        return sum(self.last.values())

    def run(self) -> None:
        while not self.stop_flag.wait(0.25):
            c = diskstats.read()[self.dev]
            self.samples.append((time.time(), c.get("sectors_read") * 512.0, self._jobs()))

    def mbps(self, a: float, b: float, which: int = 1) -> float:
        """Mean read MB/s over [a, b]: the device's (which=1) or the backups' (which=2)."""
        inside = [(s[0], s[which]) for s in self.samples if a <= s[0] <= b]
        (t0, x0), (t1, x1) = inside[0], inside[-1]
        return (x1 - x0) / (t1 - t0) / MB

    def check(self, want: float, a: float, b: float, below: float = 0.2, above: float = 0.2) -> tuple[float, float]:
        """The backup's reads hold `want` MB/s: at most `above` over it (what a limit promises) and at
        most `below` under it (the limit, not the tool, set the pace); so do the device's, unless
        other processes read from the device meanwhile (a shared disk), then the device shows at
        least the backup's reads. (device MB/s, backup MB/s)."""
        device, job = self.mbps(a, b), self.mbps(a, b, which=2)
        print(
            f"limit {want:.1f} MB/s; over {b - a:.1f} s the device read {device:.1f} MB/s (/proc/diskstats), the backup "
            f"{job:.1f} MB/s (/proc/PID/io): {100 * (job / want - 1):+.0f} %"
        )
        assert want * (1 - below) <= job <= want * (1 + above)
        others = device - job
        if others <= 0.1 * want:
            assert want * (1 - below) <= device <= want * (1 + above)
        else:
            print(f"other readers on {self.dev} meanwhile: {others:.1f} MB/s; the device check is device >= backup")
            assert device >= 0.95 * job
        return device, job

    def stop(self) -> None:
        self.stop_flag.set()
        self.join(5)


def jobs(state: Path, volume: str | None = None) -> list[dict]:
    cols = (
        "id",
        "volume",
        "kind",
        "state",
        "forced",
        "start_t",
        "end_t",
        "throttle_mbps",
        "read_bytes",
        "est_bytes",
        "processed_bytes",
        "error",
        "snapshot_id",
    )
    rows = query(state, f"SELECT {', '.join(cols)} FROM jobs ORDER BY id")
    out = [dict(zip(cols, r)) for r in rows]
    return [j for j in out if volume is None or j["volume"] == volume]


def decisions(state: Path) -> list[dict]:
    cols = ("t", "volume", "action", "rate_mbps", "forced", "accepted", "limit_text", "reason")
    return [dict(zip(cols, r)) for r in query(state, f"SELECT {', '.join(cols)} FROM decisions ORDER BY rowid")]


def assert_no_leftovers(root: Path) -> None:
    """No backup process of an agent under `root` and none of their job cgroups remain."""
    left = [p for p in job_processes(root) if Path(f"/proc/{p}").exists()]
    assert not left, f"processes left: {left}"
    cg = Path("/sys/fs/cgroup/blkio")
    if cg.exists():
        mine = [g for g in cg.glob("piop-*") if g.name.rsplit("-", 1)[0].endswith(f"-{os.getpid()}")]
        assert not mine, mine


# ----------------------------------------------------------------------------- scenarios

PRED_PARAMS = {"deadline_margin_s": 3, "full_every_h": None, "ewma_s": 5, "fallback_horizon_h": 0.02}


def seasonal(season_s: float) -> dict:
    """Seasonal naive over a season of `season_s` seconds, fitted once a season is seen; until
    then (and as the fallback) the median of the last 15 s, robust to another process's burst."""
    return {
        "history_step": "5s",
        "forecaster": "seasonal_naive",
        "forecaster_params": {"season": season_s, "calib_horizon_s": season_s, "calib_days": 0.01},
        "fallback": "trailing_median",
        "fallback_params": {"window_s": 15.0},
        "retrain": {"min_history_hours": season_s / 3600.0, "every_hours": 1.0, "eval_s": 10.0},
    }


def prepare_volume(site: Site, name: str, mb: int, repo: Path) -> tuple[Path, float]:
    """A data folder with a restore point of its (small) old content, `mb` MB of new content
    since, and a cold cache; (the folder, the restore point's Unix time).

    The restore point is taken before the big write, so its age when a scenario starts does
    not depend on how fast this host writes and backs up (a scenario's RPO is given from it)."""
    from host.agent.adapters.restic import parse_time

    data = site.root / f"data-{name}"
    data.mkdir(parents=True, exist_ok=True)
    (data / "old.txt").write_text(f"{name}: the content of the last restore point\n")
    out = restic(repo, site.pw, "--json", "backup", "--tag", f"piop-volume={name}", "--tag", "piop-kind=full", data).stdout
    sid = next(m["snapshot_id"] for m in map(json.loads, out.splitlines()) if m.get("message_type") == "summary")
    snap_t = parse_time(json.loads(restic(repo, site.pw, "--json", "--no-lock", "snapshots", sid).stdout)[0]["time"])
    write_files(data, mb, seed=1)
    drop_caches()
    return data, snap_t


def rpo_from(snap_t: float, budget_s: float) -> str:
    """An RPO whose deadline is `budget_s` seconds from now (for a restore point taken at `snap_t`)."""
    return f"{time.time() - snap_t + budget_s:.1f}s"


def run_scenario(site: Site, cfg: Path, plan, until, timeout: float, lead: float = 0.0) -> tuple[Load, DiskReads, AgentProc]:
    """Play `plan` with fio (the agent starts `lead` seconds into it) until `until()` or `timeout`."""
    load = Load(site.fio_file, plan)
    reads = DiskReads(site.dev, site.root)
    reads.start()
    load.start()
    time.sleep(lead)
    agent = AgentProc(cfg, log=site.root / f"{cfg.stem}.log")
    try:
        end = time.time() + timeout
        while time.time() < end and not until():
            assert agent.p.poll() is None, agent.text()
            time.sleep(0.5)
    finally:
        assert agent.stop() == 0, agent.text()
        load.stop()
        reads.stop()
    return load, reads, agent


def limit_during(decs: list[dict], volume: str, a: float, b: float) -> float:
    """The time-weighted read limit (MB/s) the policy set for `volume` over [a, b] (0 while paused)."""
    steps = [
        (d["t"], 0.0 if d["action"] == "pause" else d["rate_mbps"])
        for d in decs
        if d["volume"] == volume and d["accepted"] and d["action"] in ("start", "throttle", "pause", "resume")
    ]
    total = 0.0
    for i, (t, r) in enumerate(steps):
        lo, hi = max(t, a), min(steps[i + 1][0] if i + 1 < len(steps) else b, b)
        if hi > lo:
            assert r is not None, "an unthrottled stretch"
            total += r * (hi - lo)
    return total / (b - a)


@pytest.mark.slow
def test_predictive_defers_the_backup_to_the_quiet_phase_fixed_does_not_and_the_throttle_holds(site):
    cycle = [("busy", 25.0), ("quiet", 25.0)] * 3
    repo = site.repo()
    lay_out(site.fio_file)
    data, snap_t = prepare_volume(site, "db", 200, repo)
    vol = {"name": "db", "paths": [str(data)], "kind": "database", "rpo": rpo_from(snap_t, 130.0), "rto": "1h"}  # 130 s into the script
    cfg = site.config("pred", [vol], policy="predictive", params=PRED_PARAMS, **seasonal(50.0))
    state = site.root / "pred.state"
    done = lambda: any(j["state"] in ("done", "failed") for j in jobs(state)) if (state / "agent.db").exists() else False  # noqa: E731
    load, reads, agent = run_scenario(site, cfg, cycle, done, timeout=160, lead=3.0)
    log = agent.text()
    js = jobs(state, "db")
    assert len(js) >= 1 and js[0]["state"] == "done", (js, log)
    job = js[0]
    start_kind, end_kind = load.kind_at(job["start_t"]), load.kind_at(job["end_t"] - 0.5)
    print(
        f"\npredictive: job {job['kind']} started {job['start_t'] - load.phases[0][1]:.1f} s into the script "
        f"({start_kind}), ended {job['end_t'] - load.phases[0][1]:.1f} s ({end_kind}); phases "
        f"{[(k, round(a - load.phases[0][1]), round(b - load.phases[0][1])) for k, a, b in load.phases]}"
    )
    assert start_kind == "quiet" and end_kind == "quiet", log
    assert not job["forced"]
    # the limit the policy set held: the backup's reads and the device's (/proc/diskstats)
    decs = decisions(state)
    a, b = job["start_t"] + 1.5, job["end_t"] - 0.5
    print(f"throttle (job read {job['read_bytes'] / MB:.0f} MB, estimated {job['est_bytes'] / MB:.0f} MB): ", end="")
    reads.check(limit_during(decs, "db", a, b), a, b)
    assert job["read_bytes"] == pytest.approx(job["est_bytes"], rel=0.2)  # the estimate against the device reads
    assert job["processed_bytes"] == pytest.approx(job["est_bytes"], rel=0.05)  # and against what restic reported
    lim = [d["limit_text"] for d in decs if d["action"] == "start"]
    assert "read_bps_device" in lim[0] or "io.max" in lim[0] or "duty cycle" in lim[0], lim

    # the fixed policy on the same script: due 10 s into each 50 s cycle, in the busy phase
    repo2 = site.repo("fixed")
    data2, _ = prepare_volume(site, "db2", 50, repo2)  # only its start matters
    t0 = time.time()
    fixed = {"incremental_every_h": 50 / 3600, "incremental_at_h": ((t0 + 10.0) % 50.0) / 3600}
    tier = {
        "name": "fast",
        "ingest_mbps": 400,
        "restore_mbps": 400,
        "slots": 2,
        "restic": {"repository": str(repo2), "password_file": str(site.pw)},
    }
    vol2 = {**vol, "name": "db2", "paths": [str(data2)]}
    cfg2 = site.config("fixed", [vol2], [tier], policy="fixed", params=fixed)
    state2 = site.root / "fixed.state"
    started = lambda: any(j["start_t"] for j in jobs(state2)) if (state2 / "agent.db").exists() else False  # noqa: E731
    load2, _, agent2 = run_scenario(site, cfg2, cycle, started, timeout=60, lead=3.0)
    job2 = jobs(state2, "db2")[0]
    print(f"fixed: job started {job2['start_t'] - load2.phases[0][1]:.1f} s into the script ({load2.kind_at(job2['start_t'])})")
    assert load2.kind_at(job2["start_t"]) == "busy", agent2.text()
    assert_no_leftovers(site.root)


@pytest.mark.slow
def test_a_busy_phase_longer_than_the_rpo_forces_the_backup_in_time(site):
    repo = site.repo()
    lay_out(site.fio_file)
    data, old_t = prepare_volume(site, "db", 400, repo)
    rpo = rpo_from(old_t, 38.0)  # 38 s into the script: 400 MB need >= 14 MB/s; at heavy load the threshold allows ~12
    vol = {"name": "db", "paths": [str(data)], "kind": "database", "rpo": rpo, "rto": "1h"}
    cfg = site.config("forced", [vol], policy="predictive", params=PRED_PARAMS, **seasonal(50.0))
    state = site.root / "forced.state"
    done = lambda: any(j["state"] in ("done", "failed") for j in jobs(state)) if (state / "agent.db").exists() else False  # noqa: E731
    load, _, agent = run_scenario(site, cfg, [("heavy", 90.0)], done, timeout=90, lead=5.0)
    job = jobs(state, "db")[0]
    starts = [d for d in decisions(state) if d["action"] == "start"]
    print(
        f"\nforced: started {job['start_t'] - old_t:.1f} s after the last restore point, done {job['end_t'] - old_t:.1f} s after it "
        f"(RPO {rpo}); {starts[0]['reason'][:160]}"
    )
    assert job["state"] == "done" and job["forced"] == 1, agent.text()
    assert starts[0]["forced"] == 1 and "forced" in starts[0]["reason"]
    assert "FORCED start" in agent.text()
    assert load.kind_at(job["start_t"]) == "heavy"
    assert job["end_t"] <= old_t + float(rpo[:-1]) + 1.0  # the new restore point exists before the RPO passed
    status = piop_json("agent", "status", cfg)
    assert status["volumes"][0]["forced_starts"] >= 1


@pytest.mark.slow
def test_an_undersized_tier_names_the_volumes_that_will_miss(site):
    repo = site.repo()
    made = [prepare_volume(site, f"v{i}", 60, repo) for i in range(4)]
    vols = [{"name": f"v{i}", "paths": [str(data)], "rpo": rpo_from(snap_t, 20.0), "rto": "1h"} for i, (data, snap_t) in enumerate(made)]
    tier = {
        "name": "one",
        "ingest_mbps": 20,
        "restore_mbps": 100,
        "slots": 1,
        "restic": {"repository": str(repo), "password_file": str(site.pw)},
    }
    cfg = site.config("small", vols, [tier], policy="predictive", params=PRED_PARAMS, metrics={"port": 0})
    agent = AgentProc(cfg, log=site.root / "small.log")
    try:
        port = metrics_port(agent)
        text = agent.wait_for("cannot meet every RPO", 30)
        time.sleep(3)
        status = piop_json("agent", "status", cfg)
        table = subprocess.run([sys.executable, "-m", "host", "agent", "status", cfg], cwd=ROOT, capture_output=True, text=True, timeout=60)
        m = scrape(port)
    finally:
        agent.stop()
    line = next(ln for ln in text.splitlines() if "cannot meet every RPO" in ln)
    print("\n" + line)
    named = [v["name"] for v in vols if f"{v['name']} at " in line]
    assert len(named) >= 2, line
    assert "needs" in line and "slots" in line
    misses = status["feasibility"]["misses"]
    assert len(misses) >= 2 and all(m["at"] > 0 for m in misses), status["feasibility"]
    assert table.returncode == 0 and "agent running" in table.stdout and "the tiers cannot meet every RPO" in table.stdout, table
    rows = {ln.split()[1]: ln for ln in table.stdout.splitlines() if ln[:1] in "│|" and ln.split()[1:2] and ln.split()[1] in named}
    assert all(re.search(r"\d\d:\d\d:\d\d", rows[v]) for v in {x["volume"] for x in misses} & set(rows)), table.stdout  # "will miss" time
    print(table.stdout)
    for v in (x["volume"] for x in misses):  # the endpoint: observed and predicted load, the predicted miss
        assert m[f'piop_rpo_will_miss{{volume="{v}"}}'] == 1.0, m
    for key in ("observed_iops", "observed_mbps", "predicted_iops", "predicted_mbps", "restore_point_age_seconds", "throttle_mbps"):
        assert f'piop_{key}{{volume="v0"}}' in m, (key, m)
    assert_no_leftovers(site.root)


def metrics_port(agent: AgentProc) -> int:
    line = agent.wait_for("metrics: http://", 30)
    return int(line.split("metrics: http://")[1].split("/")[0].rsplit(":", 1)[1])


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out = {}
    for ln in text.splitlines():
        if ln.startswith("piop_") and " " in ln:
            k, v = ln.rsplit(" ", 1)
            out[k] = float(v)
    return out


@pytest.mark.slow
def test_kill_9_mid_backup_then_restart_adopts_or_cleans_up_and_loses_no_restore_point(site):
    repo = site.repo()
    data, _ = prepare_volume(site, "db", 200, repo)
    t0 = time.time()
    params = {"incremental_every_h": 25 / 3600, "incremental_at_h": ((t0 + 6.0) % 25.0) / 3600, "rate_mbps": 10.0}
    cfg = site.config(
        "kill",
        [{"name": "db", "paths": [str(data)], "rpo": "5m", "rto": "1h"}],
        policy="fixed",
        params=params,
        metrics={"port": 0},
        retry={"base": "1s", "max": "5s"},
    )
    state = site.root / "kill.state"
    log = site.root / "kill.log"
    a = AgentProc(cfg, log=log)
    port = metrics_port(a)
    row = wait_rows(state, "SELECT id, pid FROM jobs WHERE state = 'running'", 1, 30)[0]
    time.sleep(3)
    m = scrape(port)
    assert m['piop_throttle_mbps{volume="db"}'] == pytest.approx(10.0) and m['piop_job_state{volume="db"}'] == 2.0, m
    assert 'piop_restore_point_age_seconds{volume="db"}' in m and m['piop_rpo_seconds{volume="db"}'] == 300.0
    a.stop(signal.SIGKILL)
    assert os.killpg(row[1], 0) is None  # the backup outlived the agent (its own session)
    epoch = query(state, "SELECT value FROM meta WHERE key = 'start_epoch'")

    b = AgentProc(cfg, log=log)  # adopts job 1 and lets it finish
    b.wait_for(f"adopted job {row[0]}", 30)
    wait_rows(state, f"SELECT id FROM jobs WHERE id = {row[0]} AND state = 'done'", 1, 60)
    write_files(data, 200, seed=2)  # new content for job 2
    drop_caches()
    row2 = wait_rows(state, f"SELECT id, pid FROM jobs WHERE id > {row[0]} AND state = 'running'", 1, 60)[0]
    end = time.time() + 30
    while not list((repo / "locks").iterdir()) and time.time() < end:  # restic has opened the repository
        time.sleep(0.1)
    time.sleep(1)
    b.stop(signal.SIGKILL)
    os.killpg(row2[1], signal.SIGKILL)  # the backup dies too: restic leaves its lock behind
    time.sleep(1)
    assert list((repo / "locks").iterdir()), "restic left no lock to clean up"

    c = AgentProc(cfg, log=log)  # finds job 2 dead: a failure, stale locks removed; job 3 succeeds
    c.wait_for("stale locks removed", 30)
    wait_rows(state, f"SELECT id FROM jobs WHERE id > {row2[0]} AND state = 'done'", 1, 90)
    assert c.stop() == 0
    text = log.read_text()
    print("\n" + "\n".join(ln for ln in text.splitlines() if "job" in ln or "adopted" in ln))
    assert query(state, "SELECT value FROM meta WHERE key = 'start_epoch'") == epoch  # one clock across restarts
    js = {j["id"]: j for j in jobs(state)}
    assert js[row[0]]["state"] == "done" and js[row2[0]]["state"] == "failed" and "killed" in js[row2[0]]["error"]
    listed = {s["short_id"] for s in snapshots(repo, site.pw)}
    known = {r[0] for r in query(state, "SELECT snapshot_id FROM points WHERE volume = 'db'")}
    assert listed == known and len(listed) == 3, (listed, known)  # the seed, job 1 (adopted), job 3
    assert not list((repo / "locks").iterdir())
    assert_no_leftovers(site.root)


@pytest.mark.slow
def test_bad_input_is_one_line_each_and_the_other_volumes_are_served(site):
    repo = site.repo()
    good, _ = prepare_volume(site, "good", 40, repo)
    t0 = time.time()
    params = {"incremental_every_h": 6 / 3600, "incremental_at_h": ((t0 + 2.0) % 6.0) / 3600}
    tiers = [
        {
            "name": "fast",
            "ingest_mbps": 400,
            "restore_mbps": 400,
            "slots": 2,
            "restic": {"repository": str(repo), "password_file": str(site.pw)},
        },
        {
            "name": "gone",
            "ingest_mbps": 400,
            "restore_mbps": 400,
            "slots": 2,
            "priority": 1,
            "restic": {"repository": str(site.root / "no-such-repo"), "password_file": str(site.pw)},
        },
    ]
    vols = [
        {"name": "good", "paths": [str(good)], "rpo": "5m", "rto": "1h"},
        {"name": "fails", "paths": [str(good)], "rpo": "5m", "rto": "1h", "command": "sh -c 'echo disk on fire >&2; exit 3'"},
        {"name": "nopath", "paths": [str(site.root / "no-such-folder")], "rpo": "5m", "rto": "1h"},
    ]
    cfg = site.config("bad", vols, tiers, policy="fixed", params=params, retry={"base": "1s", "max": "4s"})
    state = site.root / "bad.state"
    agent = AgentProc(cfg, log=site.root / "bad.log")
    try:
        agent.wait_for("fails: job", 30)
        wait_rows(state, "SELECT id FROM jobs WHERE volume = 'good' AND state = 'done'", 1, 30)
        with lock_exclusively(repo, site.pw):  # another restic holds an exclusive lock
            agent.wait_for("locked exclusively", 30)
            n_done = len(query(state, "SELECT id FROM jobs WHERE volume = 'good' AND state = 'done'"))
        wait_rows(state, "SELECT id FROM jobs WHERE volume = 'good' AND state = 'done'", n_done + 1, 40)  # served again
    finally:
        assert agent.stop() == 0
    text = agent.text()
    lines = text.splitlines()
    print("\n" + "\n".join(ln for ln in lines if "error" in ln or "failed" in ln)[:3000])
    gone = [ln for ln in lines if "tiers.1 (gone)" in ln]
    nopath = [ln for ln in lines if "volumes.2 (nopath)" in ln]
    assert len(gone) == 1 and "does not exist" in gone[0] and "tier not used" in gone[0]
    assert len(nopath) == 1 and "no such file or directory" in nopath[0] and "not served" in nopath[0]
    fails = [ln for ln in lines if ln.split(" ", 1)[-1].startswith("fails: job") and "failed" in ln]
    assert fails and all("disk on fire" in ln and "exit code 3" in ln for ln in fails)
    locked = [ln for ln in lines if "good: job" in ln and "locked exclusively" in ln]
    assert len(locked) >= 1
    js = jobs(state)
    assert not any(j["snapshot_id"] for j in js if j["state"] == "failed")  # a failed backup is no restore point
    assert not query(state, "SELECT * FROM points WHERE volume = 'fails'")
    fl = dict(query(state, "SELECT volume, total FROM failures"))
    assert fl["fails"] >= 2 and fl["good"] >= 1
    status = piop_json("agent", "status", cfg)
    assert set(status["skipped"]) == {"tier gone", "volume nopath"}
    advice = piop_json("agent", cfg, "--dry-run")
    assert {r["volume"] for r in advice["volumes"]} == {"good", "fails"}
    assert all(r["start"] is not None and r["tier"] == "fast" and r["reason"] for r in advice["volumes"]), advice
    assert_no_leftovers(site.root)


class lock_exclusively:
    """A real `restic prune`, stopped while it holds the repository's exclusive lock.

    It is run in small steps (SIGCONT, 10 ms, SIGSTOP) until a lock in the repository is
    its own and exclusive (`restic cat lock`: the agent's backups hold locks there too)."""

    def __init__(self, repo: Path, pw: Path):
        self.repo, self.pw = repo, pw

    def _holds(self, seen: set[str]) -> bool:
        for f in (self.repo / "locks").iterdir():
            if f.name in seen:
                continue
            seen.add(f.name)
            out = restic(self.repo, self.pw, "--no-lock", "cat", "lock", f.name, check=False)
            if out.returncode == 0:
                lock = json.loads(out.stdout)
                if lock.get("pid") == self.p.pid and lock.get("exclusive"):
                    return True
        return False

    def __enter__(self):
        env = {**os.environ, "RESTIC_PASSWORD_FILE": str(self.pw)}
        self.p = subprocess.Popen(
            ["sh", "-c", 'kill -STOP $$; exec restic -r "$0" prune', str(self.repo)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        seen: set[str] = set()
        end = time.time() + 60
        while not self._holds(seen):
            assert time.time() < end and self.p.poll() is None, "restic prune never took its lock"
            os.killpg(self.p.pid, signal.SIGCONT)
            time.sleep(0.01)
            os.killpg(self.p.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        os.killpg(self.p.pid, signal.SIGCONT)
        self.p.wait(120)


@pytest.mark.slow
def test_without_cgroup_permission_the_agent_throttles_by_duty_cycle(tmp_path):
    import tempfile

    # the agent runs as `nobody` from this checkout and its virtualenv: both must be readable by it
    probe = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", "import host.agent.throttle"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or [f"exit {probe.returncode}"])[-1]
        pytest.skip(f"user nobody cannot run piop from {ROOT} (a parent folder is private to root?): {why}")
    root = Path(tempfile.mkdtemp(dir="/tmp", prefix="piop-agent-nobody-"))
    try:
        root.chmod(0o777)
        site = Site(root)
        repo = site.repo()
        data, _ = prepare_volume(site, "db", 200, repo)
        for p in [*root.rglob("*"), root]:
            os.chown(p, 65534, 65534)
        t0 = time.time()
        params = {"incremental_every_h": 60 / 3600, "incremental_at_h": ((t0 + 8.0) % 60.0) / 3600, "rate_mbps": 20.0}
        cfg = site.config("nobody", [{"name": "db", "paths": [str(data)], "rpo": "5m", "rto": "1h"}], policy="fixed", params=params)
        os.chown(cfg, 65534, 65534)
        state = root / "nobody.state"
        reads = DiskReads(site.dev, root)
        reads.start()
        agent = AgentProc(cfg, log=root / "nobody.log", user=65534, env={"RESTIC_CACHE_DIR": str(root / "cache"), "HOME": str(root)})
        try:
            wait_rows(state, "SELECT id FROM jobs WHERE state IN ('done', 'failed')", 1, 60)
        except AssertionError as err:
            raise AssertionError(f"{err}\n{agent.text()}") from None
        finally:
            agent.stop()
            reads.stop()
        text = agent.text()
        line = next(ln for ln in text.splitlines() if "throttle:" in ln)
        print("\n" + line)
        assert "throttle: signals" in line and "Permission denied" in line
        job = jobs(state)[0]
        assert job["state"] == "done", text
        lim = [d["limit_text"] for d in decisions(state) if d["action"] == "start"][0]
        assert "duty cycle" in lim
        print(f"duty cycle ({lim}): ", end="")
        # the promise of a limit is never to go over it; a duty cycle stops the tool's CPU work too, and
        # from this short job's rate estimate it has been seen to run well under (once -70 %, mostly -14..+1 %)
        reads.check(20.0, job["start_t"] + 1.5, job["end_t"] - 0.5, below=0.8)
        assert_no_leftovers(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
