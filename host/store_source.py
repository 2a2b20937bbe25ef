"""The `piop-store` trace family: a recorder's store replayed as a `LoadSource`.

Volumes are the recorded block devices (id = device name, e.g. "vda", "dm-0"); each
gets its measured read/write IOPS and MB/s and the host's CPU, memory and network
utilisation. The workload kind is the one given to `piop record --kind`, else the
`kind` / `kinds` parameter, else "vm". Parameters: those of `host.replay` plus
`host` (default True: attach the host series; False: zeros).

The store is opened read-only, so a running recorder can keep appending while it is
replayed (the replay sees the samples committed when it opened the store).
"""

from __future__ import annotations

import contextlib

from host import replay
from host.store import DEVICE_COLUMNS, Store
from workloads.traces.errors import BadLineLog, TraceError
from workloads.traces.source import TraceSource

FAMILY = "piop-store"
PARAMS = {"host": True}
EVENT_NOTES = {
    "start": "recorder started {n} time(s)",
    "resume": "{n} restart(s) resumed from the last committed counters (no uncovered time)",
    "reboot": "{n} reboot(s): the first interval after each is a baseline, no rate",
    "reset": "{n} counter reset(s): those intervals have no rate",
    "wrap": "{n} counter wrap(s), counted across",
    "added": "a device appeared {n} time(s) (its first interval is a baseline)",
    "removed": "a device vanished {n} time(s)",
}
_DISK_COLS = [DEVICE_COLUMNS.index(c) for c in replay.DISK]


def store_source(*, path, tick_s, seed=None, **params) -> TraceSource:
    """Trace factory of the `piop-store` family (registered in `workloads.registry.TRACES`)."""
    p = replay.check_params(FAMILY, params, PARAMS)
    if not isinstance(p["host"], bool):
        raise TraceError(f"host: true or false (got {p['host']!r})")
    if not (isinstance(tick_s, int | float) and tick_s > 0):
        raise TraceError(f"tick_s: must be a positive number (got {tick_s!r})")
    with contextlib.closing(Store.open_read(path)) as st:
        devices = st.devices()
        names, disk, kinds, apps = [], [], [], []
        for d in devices:
            t, dt, v = st.samples(d["name"])
            names.append(d["name"])
            disk.append(replay.Samples(t, dt, v[:, _DISK_COLS]))
            kinds.append(d["kind"])
            app = {k: d[k] for k in ("dev", "disk", "mount") if d[k]}
            apps.append(app)
        ht, hdt, hv = st.host()
        events = st.event_counts()
        meta = st.meta
    host = replay.Samples(ht, hdt, hv) if p["host"] and ht.size else None
    info = {
        "recorder": {"hostname": meta.get("hostname"), "interval_s": float(meta.get("interval_s", "nan"))},
        "events": events,
        "notes": [EVENT_NOTES.get(k, "{n} '" + k + "' event(s)").format(n=n) for k, n in events.items()],
    }
    return replay.build(
        family=FAMILY,
        title=f"piop recorder store ({meta.get('hostname', '?')})",
        path=str(path),
        files=[str(path)],
        tick_s=tick_s,
        seed=seed,
        p=p,
        names=names,
        disk=disk,
        host=[host] * len(names),
        recorded_kinds=kinds,
        apps=apps,
        log=BadLineLog(),
        info=info,
    )
