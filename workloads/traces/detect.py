"""Which trace family a path holds, and which files of it to read.

Detection looks at content, not names: the first lines of a file (decompressed when
gzip / bzip2 / xz) are matched against each family's layout. A folder is detected
from its files (or, for Bitbrains, from its month sub-folders); a folder mixing
families is an error rather than a guess.
"""

from __future__ import annotations

import re
from pathlib import Path

from workloads.traces.errors import TraceError, TraceFormatError
from workloads.traces.parse import read_head

FAMILIES = ("bitbrains", "alibaba", "msr", "systor", "tencent")
REQUEST_FAMILIES = ("msr", "systor", "tencent")
INTERVAL_FAMILIES = ("bitbrains", "alibaba")

#: files never taken as trace data inside a trace folder
_SKIP_SUFFIXES = {".md", ".txt", ".json", ".sha256", ".py", ".yaml", ".yml", ".png", ".parquet", ".pdf", ".html"}


def natural_key(s: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s))


def _is_int(s: str) -> bool:
    s = s.strip()
    return s.isdigit() or (s[:1] in "+-" and s[1:].isdigit())


def _is_num(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def sniff(path: Path) -> str | None:
    """The family of one file from its first lines, or None."""
    head = read_head(path, 1 << 15)
    if b"\x00" in head[:4096]:
        return None
    lines = [ln.strip() for ln in head.decode("utf-8", "replace").lstrip("\ufeff").splitlines() if ln.strip()]
    if not lines:
        return None
    first = lines[0]
    low = first.lower().replace(" ", "")
    if low.startswith("timestamp[ms];") or (first.count(";") == 10 and _is_num(first.split(";")[0])):
        return "bitbrains"
    if low.startswith("timestamp,response,iotype,lun,offset,size"):
        return "systor"
    sample = lines[1:4] if (first[:1].isalpha() and len(lines) > 1) else lines[:3]
    votes = {_sniff_line(ln) for ln in sample}
    if len(votes) == 1:
        return votes.pop()
    return None


def _sniff_line(line: str) -> str | None:
    f = [x.strip() for x in line.split(",")]
    if len(f) == 7 and f[3].lower() in ("read", "write") and _is_int(f[0]) and _is_int(f[4]):
        return "msr"
    if len(f) == 9 and f[0] and not _is_num(f[0]) and _is_num(f[1]):
        return "alibaba"
    if len(f) == 6 and f[2].upper() in ("R", "W") and _is_num(f[0]):
        return "systor"
    if len(f) == 5 and all(_is_num(x) for x in f) and f[3] in ("0", "1"):
        return "tencent"
    return None


def data_files(folder: Path) -> list[Path]:
    """Regular, non-hidden files of a folder that could hold trace data (natural order)."""
    out = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() not in _SKIP_SUFFIXES]
    return sorted(out, key=lambda p: natural_key(p.name))


def month_dirs(folder: Path) -> list[Path]:
    """Sub-folders holding Bitbrains files (e.g. 2013-7), in calendar order."""
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    found = []
    for d in subs:
        files = data_files(d)
        if files and sniff(files[0]) == "bitbrains":
            found.append(d)
    return sorted(found, key=lambda p: month_key(p.name))


def month_key(name: str) -> tuple:
    m = re.search(r"(\d{4})-(\d{1,2})", name)
    if m:
        return (int(m.group(1)), int(m.group(2)), name)
    return (10**6, 0, name)


def detect(path: str | Path) -> str:
    """The family of a trace file or folder; `TraceFormatError` when it is unknown."""
    p = Path(path)
    if not p.exists():
        raise TraceError(f"{p}: no such file or folder")
    if p.is_file():
        fam = sniff(p)
        if fam is None:
            raise TraceFormatError(
                f"{p}: unknown trace format (first line: {_first_line(p)!r}); give the family explicitly or check the file"
            )
        return fam
    if month_dirs(p):
        return "bitbrains"
    files = data_files(p)
    if not files:
        raise TraceError(f"{p}: no trace files in this folder")
    fams = {f: sniff(f) for f in files}
    known = {v for v in fams.values() if v is not None}
    if not known:
        raise TraceFormatError(f"{p}: no file of a known trace family (first: {files[0].name})")
    if len(known) > 1:
        raise TraceError(f"{p}: files of several trace families ({', '.join(sorted(known))}); pass one file or a folder of one family")
    return known.pop()


def family_files(path: str | Path, family: str) -> list[Path]:
    """The files of `family` under `path` (a file, or a folder: its files of that family)."""
    p = Path(path)
    if not p.exists():
        raise TraceError(f"{p}: no such file or folder")
    if p.is_file():
        return [p]
    files = [f for f in data_files(p) if sniff(f) == family]
    if not files:
        raise TraceError(f"{p}: no {family} trace files in this folder")
    return files


def file_stem(p: Path) -> str:
    name = p.name
    for suf in (".gz", ".bz2", ".xz"):
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
    for suf in (".csv", ".txt", ".tsv"):
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
    return name


def _first_line(p: Path) -> str:
    try:
        head = read_head(p, 512)
    except TraceFormatError:
        return ""
    return head.split(b"\n", 1)[0][:80].decode("utf-8", "replace")
