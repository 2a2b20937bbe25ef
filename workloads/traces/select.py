"""Which volumes of a trace to replay: by id or glob pattern, by activity, by file.

Volumes are named by ids (`volumes`, in the given order, globs in natural order) and/or
cut to the `top` most active; a Bitbrains volume is a file, so its selection (and the
month folders, `months`) picks files before anything is read.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import numpy as np

from workloads.traces import detect as det
from workloads.traces.errors import TraceError


def is_pattern(v: str) -> bool:
    return any(ch in v for ch in "*?[")


def _matches(vid: str, wanted: str) -> bool:
    return fnmatch(vid, wanted) if is_pattern(wanted) else vid == wanted


def _listing(ids: list[str]) -> str:
    """`n: a, b, ...` (the first eight ids) for an error message."""
    return f"{len(ids)}: {', '.join(ids[:8])}{', ...' if len(ids) > 8 else ''}"


def select_volumes(family: str, names: list[str], activity: np.ndarray, volumes: list[str] | None, top: int | None) -> list[int]:
    """Indices into `names` of the chosen volumes: `volumes` in order, then the `top` most active."""
    order = sorted(range(len(names)), key=lambda i: det.natural_key(names[i]))
    if volumes is not None:
        index = {n: i for i, n in enumerate(names)}
        chosen: list[int] = []
        seen: set[int] = set()
        for v in volumes:
            if is_pattern(v):
                matches = [i for i in order if fnmatch(names[i], v)]
            else:
                matches = [index[v]] if v in index else []
            if not matches:
                raise TraceError(f"{family}: no volume {v!r} in the trace (it has {_listing([names[i] for i in order])})")
            for m in matches:
                if m not in seen:
                    seen.add(m)
                    chosen.append(m)
        order = chosen
    if top is not None:
        order = sorted(order, key=lambda i: (-activity[i], det.natural_key(names[i])))[:top]
    return order


def bitbrains_files(path, months, volumes) -> tuple[list[Path], list[str], list[str]]:
    """(files, volume id of each, labels) of a Bitbrains file or folder, cut to `months` and `volumes`."""
    root = Path(path)
    if not root.exists():
        raise TraceError(f"{root}: no such file or folder")
    if root.is_file():
        if months is not None:
            raise TraceError("months: give the Bitbrains folder (with month sub-folders), not a file")
        files = [root]
    else:
        mdirs = det.month_dirs(root)
        if mdirs:
            if months is not None:
                mdirs = filter_months(mdirs, months)
            files = [f for d in mdirs for f in det.data_files(d)]
        else:
            if months is not None:
                raise TraceError(f"months: {root} has no month sub-folders (e.g. 2013-7)")
            files = det.data_files(root)
    if not files:
        raise TraceError(f"{root}: no Bitbrains files")
    ids = [det.file_stem(f) for f in files]
    if volumes is not None:
        keep = [i for i, vid in enumerate(ids) if any(_matches(vid, v) for v in volumes)]
        missing = [v for v in volumes if not any(_matches(vid, v) for vid in ids)]
        if missing:
            some = sorted(set(ids), key=det.natural_key)
            raise TraceError(f"bitbrains: no volume {missing[0]!r} in {root} (it has {_listing(some)})")
        files = [files[i] for i in keep]
        ids = [ids[i] for i in keep]
    return files, ids, [str(f) for f in files]


def filter_months(mdirs: list[Path], months) -> list[Path]:
    """The month folders named by `months` ("2013-7", a month number, or a folder name)."""
    if isinstance(months, str | int):
        months = [months]
    keys = {d: det.month_key(d.name) for d in mdirs}
    chosen = []
    for m in months:
        s = str(m).strip()
        if s.isdigit() and len(s) <= 2:
            hit = [d for d in mdirs if keys[d][1] == int(s)]
        else:
            k = det.month_key(s)
            hit = [d for d in mdirs if keys[d][:2] == k[:2]] if k[0] < 10**6 else [d for d in mdirs if d.name == s]
        if not hit:
            raise TraceError(f"months: no month {m!r}; have {', '.join(d.name for d in mdirs)}")
        chosen.extend(d for d in hit if d not in chosen)
    return sorted(chosen, key=lambda d: keys[d])
