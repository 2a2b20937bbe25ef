"""The real-host environment beside `sim/`: measure a host's block devices and fit its device model.

- `record.py` (`piop record`): `/proc/diskstats` and psutil sampled every interval into
  an SQLite store (`store.py`) that survives `kill -9`, with counter wrap and reset
  handling (`diskstats.py`) and retention.
- `store_source.py`, `importers/`: the store, an interval-metrics table and
  node_exporter counters as trace families the simulator replays (`families.py`
  registers them).
- `calibrate/` (`piop calibrate`): fio ladders -> the simulator's device class and a
  measured latency curve (`sim/curve.py`).

Importing `host` does not register anything; import `host.families` for that.
"""
