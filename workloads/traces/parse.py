"""Chunked CSV reading with bounded memory, exact line numbers and a per-chunk fallback.

A file (plain, gzip, bzip2 or xz: detected from its first bytes) is read in blocks of
`block_bytes` cut at line ends, so memory does not grow with the file. Each chunk is
parsed by pyarrow with the column types set (the fast path: several million lines per
second on one core). A chunk the fast path cannot take as a whole (a truncated line, a
non-numeric field, an unknown I/O type, a blank line) is parsed again line by line in
Python, which knows every line's number and drops exactly the bad ones. Both paths
produce the same values for good lines (both parse numbers with correct rounding).
Value checks that need no re-parse (negative sizes, non-finite numbers) run on the
arrays afterwards, with line numbers mapped from row positions.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from workloads.traces.errors import BadLineLog, TraceFormatError

BLOCK_BYTES = 2 << 20
MAX_LINE_BYTES = 1 << 20


def open_binary(path: str | Path) -> BinaryIO:
    """Open a file for reading bytes, decompressing gzip / bzip2 / xz by magic number."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic[:3] == b"BZh":
        return bz2.open(path, "rb")
    if magic[:6] == b"\xfd7zXZ\x00":
        return lzma.open(path, "rb")
    if magic[:4] == b"PK\x03\x04":
        raise TraceFormatError(f"{path}: a zip archive; unpack it and pass the trace file inside")
    if magic[:4] == b"\x28\xb5\x2f\xfd":
        raise TraceFormatError(f"{path}: zstd-compressed; decompress it first (gzip, bzip2 and xz are read directly)")
    return open(path, "rb")


def read_head(path: str | Path, n_bytes: int = 1 << 16) -> bytes:
    """The first `n_bytes` of the (decompressed) file."""
    try:
        with open_binary(path) as f:
            return f.read(n_bytes)
    except (OSError, EOFError, lzma.LZMAError) as err:
        raise TraceFormatError(f"{path}: cannot read: {err}") from None


def iter_chunks(path: str | Path, block_bytes: int | None = None) -> Iterator[bytes]:
    """Yield chunks of about `block_bytes`, each cut just after a newline.

    The last chunk may lack its final newline (a file that does not end with one).
    Callers number lines themselves (`ChunkParser.chunk_lines`), which spares a scan.
    """
    block_bytes = block_bytes or BLOCK_BYTES
    rest = b""
    try:
        with open_binary(path) as f:
            while True:
                buf = f.read(block_bytes)
                if not buf:
                    break
                if rest:
                    buf = rest + buf
                end = buf.rfind(b"\n") + 1
                if end == 0:
                    rest = buf
                    if len(rest) > max(MAX_LINE_BYTES, block_bytes):
                        raise TraceFormatError(f"{path}: a line longer than {len(rest)} bytes; not a line-based trace")
                    continue
                if end == len(buf):
                    rest = b""
                    yield buf
                else:
                    rest = buf[end:]
                    yield buf[:end]
    except (OSError, EOFError, lzma.LZMAError) as err:
        raise TraceFormatError(f"{path}: cannot read (corrupt or truncated archive?): {err}") from None
    if rest:
        yield rest


@dataclass(frozen=True)
class Column:
    """One used field: its position, name and type ('i8', 'f8', 'bool' or 'str')."""

    index: int
    name: str
    kind: str
    nonneg: bool = False  # negative values make the line malformed
    missing: float | None = None  # this exact value means "missing" (NaN), e.g. Alibaba's -1
    clip_max: float | None = None  # larger values are clipped (and counted)
    label: str = ""  # what the field is, in messages

    @property
    def what(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class CsvSpec:
    n_fields: int
    columns: tuple[Column, ...]
    delimiter: str = ","
    true_values: tuple[str, ...] = ()
    false_values: tuple[str, ...] = ()
    delete: bytes | None = None  # bytes removed from a chunk before parsing (Bitbrains' TABs)
    type_label: str = "I/O type"

    def arrow_options(self):
        names = [f"f{i}" for i in range(self.n_fields)]
        types = {
            "i8": pa.int64(),
            "f8": pa.float64(),
            "bool": pa.bool_(),
            "str": pa.dictionary(pa.int32(), pa.string()),
        }
        col_types = {f"f{c.index}": types[c.kind] for c in self.columns}
        conv = pacsv.ConvertOptions(
            column_types=col_types,
            include_columns=[f"f{c.index}" for c in self.columns],
            true_values=list(self.true_values) or None,
            false_values=list(self.false_values) or None,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        # empty lines are not skipped: then every line is a row (or an error), so rows
        # map to line numbers without scanning the chunk for newlines
        # quotes are plain characters (as in the line-by-line path): no trace format quotes
        parse = pacsv.ParseOptions(delimiter=self.delimiter, ignore_empty_lines=False, quote_char=False)
        return names, parse, conv


@dataclass
class Rows:
    """Parsed good rows of one chunk: numeric columns, string columns as codes + values."""

    cols: dict[str, np.ndarray]
    strings: dict[str, list[str]]
    lines: np.ndarray  # line number of each row
    n: int
    abnormal: dict[str, int] = field(default_factory=dict)  # "missing"/"clipped" value counts per column

    def take(self, keep: np.ndarray) -> Rows:
        return Rows({k: v[keep] for k, v in self.cols.items()}, self.strings, self.lines[keep], int(keep.sum()), self.abnormal)


def _bools(a: pa.BooleanArray) -> np.ndarray:
    """A pyarrow boolean array (no nulls) as a NumPy bool array, via its bitmap."""
    bits = np.unpackbits(np.frombuffer(a.buffers()[1], np.uint8), bitorder="little")
    return bits[a.offset : a.offset + len(a)].view(bool)


def _line_text(chunk: bytes, line0: int, line: int) -> Callable[[], str]:
    def get() -> str:
        parts = chunk.split(b"\n", line - line0 + 1)
        raw = parts[line - line0] if line - line0 < len(parts) else b""
        return raw.rstrip(b"\r").decode("utf-8", "replace")

    return get


class ChunkParser:
    """Parses chunks of one file by a `CsvSpec`, logging malformed lines in `log`."""

    def __init__(self, spec: CsvSpec, file: str, log: BadLineLog):
        self.spec = spec
        self.file = file
        self.log = log
        self.lines_seen = 0  # non-blank lines handed to the parser
        self.chunk_lines = 0  # lines (blank ones included) in the last chunk parsed
        self._names, self._parse, self._conv = spec.arrow_options()
        self._bool_map: dict[bytes, bool] = {v.encode(): True for v in spec.true_values}
        self._bool_map.update({v.encode(): False for v in spec.false_values})

    # -- public ------------------------------------------------------------------------
    def parse(self, line0: int, chunk: bytes) -> Rows:
        """Good rows of `chunk`, whose first line is number `line0`; sets `chunk_lines`."""
        rows = self._fast(line0, chunk)
        if rows is None:
            rows = self._slow(line0, chunk)
        return self._check_values(line0, chunk, rows)

    # -- fast path ---------------------------------------------------------------------
    def _fast(self, line0: int, chunk: bytes) -> Rows | None:
        data = chunk.translate(None, self.spec.delete) if self.spec.delete else chunk
        try:
            tbl = pacsv.read_csv(
                pa.py_buffer(data),
                read_options=pacsv.ReadOptions(column_names=self._names, use_threads=False, block_size=len(data) + 1024),
                parse_options=self._parse,
                convert_options=self._conv,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
        n_lines = tbl.num_rows
        cols: dict[str, np.ndarray] = {}
        strings: dict[str, list[str]] = {}
        for c in self.spec.columns:
            arr = tbl.column(f"f{c.index}")
            if arr.null_count:
                return None
            if c.kind == "str":
                arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
                values = arr.dictionary.to_pylist()
                if "" in values:
                    return None
                cols[c.name] = arr.indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
                strings[c.name] = values
            elif c.kind == "bool":
                cols[c.name] = _bools(arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0))
            else:
                cols[c.name] = arr.to_numpy()
        self.lines_seen += n_lines
        self.chunk_lines = n_lines
        return Rows(cols, strings, np.arange(line0, line0 + n_lines, dtype=np.int64), n_lines)

    # -- slow path ---------------------------------------------------------------------
    def _slow(self, line0: int, chunk: bytes) -> Rows:
        spec, log, file = self.spec, self.log, self.file
        delim = spec.delimiter.encode()
        raw_lines = chunk.split(b"\n")
        if raw_lines and raw_lines[-1] == b"":
            raw_lines.pop()
        self.chunk_lines = len(raw_lines)
        out: dict[str, list] = {c.name: [] for c in spec.columns}
        str_codes: dict[str, dict[str, int]] = {c.name: {} for c in spec.columns if c.kind == "str"}
        lines: list[int] = []
        for i, raw in enumerate(raw_lines):
            s = raw.rstrip(b"\r")
            if spec.delete:
                s = s.translate(None, spec.delete)
            if not s.strip():
                continue
            no = line0 + i
            self.lines_seen += 1
            fields = s.split(delim)
            if len(fields) != spec.n_fields:
                why = "truncated line" if len(fields) < spec.n_fields else "too many fields"
                log.add(file, no, f"{why} ({len(fields)} of {spec.n_fields} fields)", raw.decode("utf-8", "replace"))
                continue
            vals = []
            bad = None
            for c in spec.columns:
                f = fields[c.index].strip()
                if c.kind == "bool":
                    v = self._bool_map.get(f)
                    if v is None:
                        bad = f"unknown {spec.type_label} {f.decode('utf-8', 'replace')!r}"
                        break
                elif c.kind == "str":
                    if not f:
                        bad = f"empty {c.what}"
                        break
                    v = f.decode("utf-8", "replace")
                elif not f:
                    bad = f"empty {c.what}"
                    break
                else:
                    try:
                        v = int(f) if c.kind == "i8" else float(f)
                    except ValueError:
                        bad = f"non-numeric {c.what} {f.decode('utf-8', 'replace')!r}"
                        break
                    if c.kind == "i8" and not (-(2**63) <= v < 2**63):
                        bad = f"{c.what} out of range"
                        break
                vals.append(v)
            if bad is not None:
                log.add(file, no, bad, raw.decode("utf-8", "replace"))
                continue
            for c, v in zip(spec.columns, vals, strict=True):
                out[c.name].append(v)
            lines.append(no)
        cols: dict[str, np.ndarray] = {}
        strings: dict[str, list[str]] = {}
        for c in spec.columns:
            if c.kind == "str":
                codes = str_codes[c.name]
                cols[c.name] = np.array([codes.setdefault(v, len(codes)) for v in out[c.name]], np.int32)
                strings[c.name] = list(codes)
            else:
                dtype = {"i8": np.int64, "f8": np.float64, "bool": bool}[c.kind]
                cols[c.name] = np.array(out[c.name], dtype=dtype)
        return Rows(cols, strings, np.array(lines, np.int64), len(lines))

    # -- value checks ------------------------------------------------------------------
    def _check_values(self, line0: int, chunk: bytes, rows: Rows) -> Rows:
        reason = np.full(rows.n, -1, np.int16)  # first problem of each row, -1 = good
        reasons: list[str] = []
        abnormal: dict[str, int] = {}

        def mark(mask: np.ndarray, why: str) -> None:
            mask = mask & (reason < 0)
            if mask.any():
                reason[mask] = len(reasons)
                reasons.append(why)

        for c in self.spec.columns:
            if c.kind not in ("i8", "f8"):
                continue
            v = rows.cols[c.name]
            if c.kind == "f8":
                if c.missing is not None:
                    miss = v == c.missing
                    if miss.any():
                        v = v.copy()
                        v[miss] = np.nan
                        rows.cols[c.name] = v
                        abnormal[f"{c.name} = {c.missing:g} (missing)"] = int(miss.sum())
                    mark(np.isinf(v), f"non-finite {c.what}")
                else:
                    mark(~np.isfinite(v), f"non-finite {c.what}")
                if c.clip_max is not None:
                    over = v > c.clip_max
                    if over.any():
                        v = v.copy()
                        v[over] = c.clip_max
                        rows.cols[c.name] = v
                        abnormal[f"{c.name} > {c.clip_max:g} (clipped)"] = int(over.sum())
            if c.nonneg:
                mark(v < 0, f"negative {c.what}")
        rows.abnormal = abnormal
        if not reasons:
            return rows
        bad = reason >= 0
        self._log_rows(rows, np.flatnonzero(bad), reason[bad], reasons, chunk, line0)
        return rows.take(~bad)

    def _log_rows(self, rows: Rows, idx: np.ndarray, codes: np.ndarray, reasons: list[str], chunk: bytes, line0: int) -> None:
        """Log rows `idx` (ascending) with reasons `reasons[codes]`; text only for the kept few."""
        log = self.log
        n_text = min(idx.size, max(0, log.keep - len(log.samples)))
        for r, k in zip(idx[:n_text].tolist(), codes[:n_text].tolist(), strict=True):
            log.add(self.file, int(rows.lines[r]), reasons[k], _line_text(chunk, line0, int(rows.lines[r])))
        if idx.size > n_text:
            counts = np.bincount(codes[n_text:], minlength=len(reasons))
            for k, n in enumerate(counts.tolist()):
                if n:
                    log.count += n
                    log.reasons[reasons[k]] += n

    def flag(self, rows: Rows, mask: np.ndarray, reason: str, chunk: bytes, line0: int) -> Rows:
        """Log rows in `mask` as malformed (`reason`) and return the others."""
        if not mask.any():
            return rows
        idx = np.flatnonzero(mask)
        self._log_rows(rows, idx, np.zeros(idx.size, np.int64), [reason], chunk, line0)
        return rows.take(~mask)


def check_early(log: BadLineLog, lines: int, file: str, max_bad_fraction: float) -> None:
    """Stop reading a file that is mostly garbage (wrong family) without waiting for its end."""
    if lines >= 1000 and log.count > 0.5 * lines and log.count > max_bad_fraction * lines:
        log.check(file, lines, max_bad_fraction)
