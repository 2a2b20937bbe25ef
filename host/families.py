"""Registers the host's trace families in `workloads.registry.TRACES` (import for the side effect).

- `piop-store`: a `piop record` store (`host.store_source`);
- `metrics-table`: an interval-metrics CSV or Parquet table with a column mapping
  (`host.importers.table`);
- `node-exporter`: node_exporter disk counters as a Prometheus range-query JSON
  (`host.importers.prometheus`).

Factories are registered lazily: importing this module imports none of them.
"""

from __future__ import annotations

from workloads.registry import TRACES

FAMILIES = {
    "piop-store": "host.store_source:store_source",
    "metrics-table": "host.importers.table:table_source",
    "node-exporter": "host.importers.prometheus:prometheus_source",
}

for _name, _target in FAMILIES.items():
    if _name not in TRACES:
        TRACES.register_lazy(_name, _target)
