"""Trace families for load measured by other tools: an interval-metrics table (`table.py`)
and node_exporter's disk counters as a Prometheus range query (`prometheus.py`).

They are read directly as trace families rather than imported into a store: a config
names the file and carries the column mapping, so the source file stays the one copy of
the data (piop reads traces where they are and never copies them), a bad row is reported
with the source file's own line number, and there is no second step to forget or to go
stale when the export is refreshed.
"""
