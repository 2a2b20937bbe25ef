"""The on-disk cache of aggregated trace series.

Folder: `$PIOP_CACHE`, else `.cache/piop` under the current directory.

Key: a SHA-256 over a small JSON document holding the cache format version, the trace
family, each input file's **content** SHA-256 (not its path or time stamp) and every
parameter that changes the stored data (for request-level traces: the grid origin and
the trace-time tick; interval traces store the cleaned native-resolution series, which
no tick or resampling option changes). Hashing a big file costs about a second per
GB, so the content hash of a file is remembered next to its size and mtime in
`digests.json`: a second run neither re-reads nor re-hashes an unchanged file.

Entries are folders written under a temporary name and renamed into place, so a
crashed or concurrent writer never leaves a half entry behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: bump when the stored layout or the parsing rules change
CACHE_VERSION = 1


def cache_root() -> Path:
    env = os.environ.get("PIOP_CACHE")
    return Path(env) if env else Path.cwd() / ".cache" / "piop"


def _memo_path() -> Path:
    return cache_root() / "digests.json"


def _load_memo() -> dict:
    try:
        return json.loads(_memo_path().read_text())
    except (OSError, ValueError):
        return {}


def _save_memo(memo: dict) -> None:
    path = _memo_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".digests-")
        with os.fdopen(fd, "w") as f:
            json.dump(memo, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache folder only costs re-hashing


def file_digests(paths: list[Path]) -> list[str]:
    """Content SHA-256 of each file (memoised by path, size and mtime)."""
    memo = _load_memo()
    out = []
    changed = False
    for p in paths:
        st = p.stat()
        key = str(p.resolve())
        hit = memo.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            out.append(hit[2])
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        digest = h.hexdigest()
        memo[key] = [st.st_size, st.st_mtime_ns, digest]
        changed = True
        out.append(digest)
    if changed:
        _save_memo(memo)
    return out


def entry_key(parts: dict) -> str:
    doc = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()[:32]


def entry_dir(family: str, parts: dict) -> Path:
    return cache_root() / f"{family}-{entry_key(parts)}"


@contextlib.contextmanager
def building(final: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it becomes `final` (atomically)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, default=_json_default))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-able: {type(o).__name__}")
