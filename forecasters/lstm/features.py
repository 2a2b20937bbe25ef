"""The LSTM's model inputs for (volume, origin) pairs, read from per-history tables.

Most inputs depend on the target row only, not on the origin: the seasonal candidates of
target step `h` after origin `t` read the rows `D * ceil(h / D)` before row `j = t + h - 1`
(and the days before that), so they are a function of that *base row* `j - D * ceil(h / D)`.
`Tables` computes those five per-row candidates (daily seasonal naive, the mean and median
over `days` days, the trailing hourly mean one day before and its median over the days)
and the calendar once per history; a training batch then gathers rows instead of
recomputing medians for every (sample, step, day). Nothing past the origin is read: a base
row is always before the origin.

A prediction (`origin_inputs`) needs one origin for every volume: its base rows are one run
per day, read in place (`origin_candidates`). Its numbers are those of `day_candidates`
bit for bit (the model was trained on them, and the simulator's results depend on every
forecast): float sums keep torch's order, and only exact operations change their layout.
Steps whose bits do not depend on the number of threads (copies, exact arithmetic, per-value
functions such as `log1p`, per-lane medians) run on one thread, or in NumPy: on a shared
machine each two-thread step may wait for a core. Reductions across rows, and min/max over
values that may hold -0.0, keep the caller's threads (torch splits them by thread).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F

from common.units import DAY_S, MONDAY0_S, WEEK_S
from forecasters.series import steps
from forecasters.threads import torch_threads
from sim.types import LoadHistory

KIND_VOCAB: tuple[str, ...] = ("database", "vm", "fileserver", "other")
N_CAND = 9
N_DAY_CAND = 5  # daily seasonal naive, k-day mean, k-day median, hourly mean one day before, its k-day median
N_SEQ = 11  # z(iops, mbps), z one day earlier (2), cpu, mem, net, tod sin/cos, week sin/cos
N_STATIC = len(KIND_VOCAB) + 4 + 2 + 1
EPS = 1e-6
_CHUNK_ROWS = 2048  # table rows computed at once (bounds the [days, rows, V, 2] temporaries)


@dataclass(frozen=True)
class Sizes:
    """Window W, day D, week WK, horizon H and one hour P, in steps."""

    W: int
    D: int
    WK: int
    H: int
    P: int

    @classmethod
    def of(cls, window_s: float, horizon_s: float, step_s: float) -> Sizes:
        return cls(steps(window_s, step_s), steps(DAY_S, step_s), steps(WEEK_S, step_s), steps(horizon_s, step_s), steps(3600.0, step_s))


def calendar(epoch: torch.Tensor) -> torch.Tensor:
    """Time of day and position in the week (Monday 00:00 = 0) as sin/cos pairs: `[..., 4]`."""
    day = 2 * math.pi * torch.remainder(epoch, DAY_S) / DAY_S
    week = 2 * math.pi * torch.remainder(epoch - MONDAY0_S, WEEK_S) / WEEK_S
    return torch.stack([torch.sin(day), torch.cos(day), torch.sin(week), torch.cos(week)], -1).float()


def median_small(x: torch.Tensor, dim: int) -> torch.Tensor:
    """`x.median(dim).values` (the lower median), several times faster for the short axes here.

    Sorts along `dim` with an odd-even transposition network (elementwise min/max over
    whole slices) when that axis is short; falls back to `torch.median` otherwise.
    """
    if x.shape[dim] > 16:
        return x.median(dim).values
    return median_of(list(x.unbind(dim)))


@functools.cache
def _median_exchanges(n: int) -> tuple[tuple[int, bool, bool], ...]:
    """The compare-exchanges (i, i + 1) of the odd-even transposition sort of n slices that the
    middle slot depends on, with which outputs are read (the min, to i; the max, to i + 1)."""
    exchanges = [i for r in range(n) for i in range(r % 2, n - 1, 2)]
    live, kept = {(n - 1) // 2}, []
    for i in reversed(exchanges):
        lo, hi = i in live, i + 1 in live
        if lo or hi:
            kept.append((i, lo, hi))
            live |= {i, i + 1}
    return tuple(reversed(kept))


def median_of(v: list, minimum=torch.minimum, maximum=torch.maximum):
    """Elementwise lower median of equally shaped tensors (arrays, with NumPy's min/max): the
    network of `median_small` less the exchanges the middle slot does not read (same values)."""
    v = list(v)
    for i, lo, hi in _median_exchanges(len(v)):
        a, b = v[i], v[i + 1]
        if lo:
            v[i] = minimum(a, b)
        if hi:
            v[i + 1] = maximum(a, b)
    return v[(len(v) - 1) // 2]


def kinds_onehot(kinds: list[str]) -> torch.Tensor:
    idx = [KIND_VOCAB.index(k) if k in KIND_VOCAB else len(KIND_VOCAB) - 1 for k in kinds]
    return F.one_hot(torch.tensor(idx, dtype=torch.long), len(KIND_VOCAB)).float()


@dataclass
class Arrays:
    """A history as tensors (time-major, like `LoadHistory`)."""

    y: torch.Tensor  # [T, V, 2] raw targets
    cov: torch.Tensor  # [Tc, V, 3] covariates for rows cov_off .. cov_off + Tc - 1
    cov_off: int
    kinds: torch.Tensor  # [V, n_kinds]
    t0: float  # calendar time of row 0
    step_s: float

    @cached_property
    def csum(self) -> torch.Tensor:
        """[T + 1, V, 2] float64 cumulative sums of y (row i: sum of rows < i); built on first use."""
        out = torch.zeros(self.y.shape[0] + 1, *self.y.shape[1:], dtype=torch.float64)
        torch.cumsum(self.y, 0, dtype=torch.float64, out=out[1:])
        return out

    def calendar_rows(self, rows: torch.Tensor) -> torch.Tensor:
        return calendar(self.t0 + rows.double() * self.step_s)


def arrays(history: LoadHistory, cov_from: int = 0) -> Arrays:
    targets = (history.iops, history.mbps)
    common = np.result_type(*targets)  # what stacking them would make, before float32
    y = torch.empty(*np.shape(history.iops), 2)
    for i, x in enumerate(targets):
        x = np.asarray(x, common).astype(np.float32, copy=False)
        x = torch.from_numpy(x if min(x.strides, default=0) >= 0 else x.copy())
        torch.nan_to_num(x, nan=0.0, posinf=0.0, out=y[..., i])  # straight into the interleaved rows
    y.clamp_(min=0.0)
    c = np.stack(
        [history.cpu_pct[cov_from:] / 100.0, history.mem_pct[cov_from:] / 100.0, np.log1p(np.maximum(history.net_mbps[cov_from:], 0.0))], -1
    )
    cov = torch.from_numpy(np.nan_to_num(c.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0))
    t0 = history.start_epoch + (float(history.times[0]) if history.n_steps else 0.0)
    return Arrays(y, cov, cov_from, kinds_onehot(history.kinds), t0, history.step_s)


def day_candidates(a: Arrays, rows: torch.Tensor, sz: Sizes, days: int, runs: bool = False) -> torch.Tensor:
    """The five per-base-row candidates `[len(rows), V, 5, 2]` (see the module docstring).

    Day k reads row `b - k * D`, or `b` itself where that is before the history. Hourly
    means come from the history's cumulative sums, or with `runs` (prediction: a few rows)
    from running sums over just the rows read, when each day's rows are one run.
    """
    D, P = sz.D, sz.P
    idx = rows[None, :] - torch.arange(days)[:, None] * D  # [days, n]
    idx = torch.where(idx >= 0, idx, rows[None, :]).clamp(min=0)
    yd = a.y[idx]  # [days, n, V, 2]
    # float sums depend on the memory layout they reduce over: the k-day mean reads the one of
    # the model's first version (a time-major view at prediction, sample-major rows in
    # training), so that version's inputs, and the model trained on them, are matched bit for bit
    if runs:
        kmean = yd.transpose(0, 1).contiguous().movedim(2, 0).mean(2).transpose(0, 1)
    else:
        kmean = yd.permute(1, 2, 0, 3).contiguous().mean(2)
    kmed = median_small(yd, 0)
    n = rows.shape[0]
    if runs and n and torch.equal(idx, idx[:, :1] + torch.arange(n)):
        blk = idx[:, :1] - P + torch.arange(n + P)  # [days, n + P]: the hour before each day's run, and the run
        inside = blk >= 0
        rows = a.y[blk] if bool(inside.all()) else a.y[blk.clamp(min=0)] * inside[:, :, None, None]
        run = torch.cumsum(rows, 1, dtype=torch.float64)
        hsum = run[:, P:] - run[:, :-P]
    else:
        hi = idx + 1
        hsum = a.csum[hi] - a.csum[(hi - P).clamp(min=0)]
    count = torch.minimum(idx + 1, torch.tensor(P)).clamp(min=1)
    hmean = hsum.float() / count[:, :, None, None].float()
    return torch.stack([yd[0], kmean, kmed, hmean[0], median_small(hmean, 0)], 2)


class Tables:
    """Per-history inputs shared by every training sample: the day candidates of the rows
    `b_lo ..` (flattened `[(row, volume), 5 * 2]`) and the calendar of every row."""

    def __init__(self, a: Arrays, sz: Sizes, days: int, b_lo: int):
        T = a.y.shape[0]
        self.b_lo = max(0, min(b_lo, T))
        parts = [day_candidates(a, torch.arange(s, min(T, s + _CHUNK_ROWS)), sz, days) for s in range(self.b_lo, T, _CHUNK_ROWS)]
        V = a.y.shape[1]
        self.day = torch.cat(parts, 0).reshape(-1, N_DAY_CAND * 2) if parts else torch.zeros(0, N_DAY_CAND * 2)
        self.cal = a.calendar_rows(torch.arange(T + 1))  # [T + 1, 4]
        self.V = V


def gather(x: torch.Tensor, rows: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """`x[rows[b, ...], v[b]]` as `[B, ..., C]`, one `index_select` over (row, volume) pairs."""
    flat = rows * x.shape[1] + v.view(-1, *([1] * (rows.dim() - 1)))
    return torch.index_select(x.reshape(-1, x.shape[-1]), 0, flat.reshape(-1)).view(*rows.shape, x.shape[-1])


def batch_inputs(a: Arrays, tb: Tables, sz: Sizes, v: torch.Tensor, t: torch.Tensor, scale: torch.Tensor):
    """(seq, static, cand, ratio, known) of the training pairs (volume `v`, origin `t`).

    `ratio` holds the targets over the whole horizon divided by `scale`, `known` whether each
    target step is inside the history (the rest is masked out of the loss).
    """
    W, D, WK, H, P = sz.W, sz.D, sz.WK, sz.H, sz.P
    T = a.y.shape[0]
    sc = scale[:, None, :]
    widx = (t[:, None] + torch.arange(-W, 0)).clamp(min=0)  # [B, W]
    seq = torch.cat(
        [
            torch.log1p(gather(a.y, widx, v) / sc),
            torch.log1p(gather(a.y, (widx - D).clamp(min=0), v) / sc),
            gather(a.cov, (widx - a.cov_off).clamp(min=0), v),
            tb.cal[widx],
        ],
        -1,
    )
    h = torch.arange(1, H + 1)
    j = t[:, None] + h - 1  # rows of the target steps [B, H]
    base = j - D * torch.ceil(h / D).long()
    B = v.shape[0]
    dayc = torch.index_select(tb.day, 0, ((base - tb.b_lo) * tb.V + v[:, None]).reshape(-1)).view(B, H, N_DAY_CAND, 2)
    wk_ok = t >= WK
    week = torch.where(wk_ok[:, None, None], gather(a.y, (j - WK * torch.ceil(h / WK).long()).clamp(min=0), v), dayc[:, :, 0])
    recent = gather(a.y, (t[:, None] + torch.arange(-6 * P, 0)).clamp(min=0), v)  # last 6 h [B, 6P, 2]
    last = torch.stack([recent[:, -P:].mean(1), recent[:, -P:].median(1).values, recent.median(1).values], 1)  # [B, 3, 2]
    cand = _candidates(last[:, None], dayc, week, scale[:, None, None, :])
    static = torch.cat([a.kinds[v], tb.cal[t], torch.log10(scale) / 3.0, wk_ok.float()[:, None]], -1)
    ratio = gather(a.y, j.clamp(max=T - 1), v) / sc  # [B, H, 2]
    return seq, static, cand, ratio, j < T


def _candidates(last: torch.Tensor, dayc: torch.Tensor, week: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The nine candidates, log-scaled, in `dayc`'s layout (`[B, H, ..]` or `[H, V, ..]`): the last
    hour's mean and median and the last 6 h's median (`last`, broadcast over the horizon),
    daily seasonal naive, weekly seasonal naive, then the other day candidates. `scale`
    broadcasts against `[.., .., K, 2]`."""
    last = torch.log1p(last.clamp(min=0.0) / scale).expand(*dayc.shape[:2], -1, -1)
    week = torch.log1p(week[:, :, None].clamp(min=0.0) / scale)
    dayc = torch.log1p(dayc.clamp(min=0.0) / scale)
    return torch.cat([last, dayc[:, :, :1], week, dayc[:, :, 1:]], 2)


def rows_from(x: torch.Tensor, start: int, n: int) -> torch.Tensor:
    """Rows `start .. start + n - 1` of `x` (rows before 0 read row 0): a view where all exist."""
    return x[start : start + n] if start >= 0 else x[(start + torch.arange(n)).clamp(min=0)]


def origin_inputs(a: Arrays, sz: Sizes, days: int, scale: torch.Tensor, steps_out: int):
    """(seq, static, cand) of every volume at the origin after the last row (prediction).

    Rows are picked along time once and shared by all volumes; only the day candidates of
    the `steps_out` base rows are computed.
    """
    W, D, WK, P = sz.W, sz.D, sz.WK, sz.P
    T = a.y.shape[0]
    V = a.y.shape[1]
    H = steps_out
    wk_ok = T >= WK
    with torch_threads(1):  # steps whose bits do not depend on the number of threads (module docstring)
        sc = scale[None, :, :]
        widx = (T + torch.arange(-W, 0)).clamp(min=0)  # [W]
        seq = torch.cat(
            [
                torch.log1p(rows_from(a.y, T - W, W) / sc),
                torch.log1p(rows_from(a.y, T - W - D, W) / sc),
                rows_from(a.cov, T - W - a.cov_off, W),
                a.calendar_rows(widx)[:, None, :].expand(-1, V, -1),
            ],
            -1,
        ).transpose(0, 1)  # [V, W, N_SEQ]
        recent = rows_from(a.y, T - 6 * P, 6 * P)  # [6P, V, 2]
        medians = [recent[-P:].median(0).values, recent.median(0).values]
        cal = a.calendar_rows(torch.tensor([T]))[0]
        static = torch.cat([a.kinds, cal.expand(V, -1), torch.log10(scale) / 3.0, torch.full((V, 1), float(wk_ok))], -1)
    last = torch.stack([recent[-P:].mean(0), *medians], 1)  # [V, 3, 2]; the mean on the caller's threads
    cand = origin_candidates(a, sz, days, scale, H, last)
    if cand is None:  # some day lag is before the history
        h = torch.arange(1, H + 1)
        j = T + h - 1
        base = j - D * torch.ceil(h / D).long()
        # time-major [H, V, ..] (contiguous) until the candidates are assembled
        dayc = day_candidates(a, base, sz, days, runs=True)  # [H, V, 5, 2]
        week = a.y[(j - WK * torch.ceil(h / WK).long()).clamp(min=0)] if wk_ok else dayc[:, :, 0]
        cand = _candidates(last[None], dayc, week, scale[None, :, None, :])
    return seq, static, cand.transpose(0, 1)  # cand [V, H, 9, 2]


def origin_candidates(a: Arrays, sz: Sizes, days: int, scale: torch.Tensor, n: int, last: torch.Tensor) -> torch.Tensor | None:
    """The nine candidates `[n, V, 9, 2]` of target steps 1..n after the last row: the values
    of `_candidates(day_candidates(.., runs=True))`, from row views.

    Target step h reads base row `T - D + h - 1`, and day k its row `k * D` earlier: each day
    is a run of rows, read in place (no gathered copies). Exact steps (copies, float sums in
    torch's order, min/max of values with no signed zero or NaN) run in NumPy on one thread:
    on a shared machine each of torch's two-thread steps may wait for a core. None where an
    hour before the oldest day's run falls before the history (`day_candidates` handles that).
    """
    D, P = sz.D, sz.P
    y = a.y
    first = y.shape[0] - D
    if days < 1 or n > D or first - (days - 1) * D - P < 0 or not y.is_contiguous():
        return None
    with np.errstate(over="ignore", invalid="ignore"):  # past float32's range: inf (and inf / inf: NaN), as in torch
        return _origin_candidates(y, [first - k * D for k in range(days)], sz, scale, n, last)


def _origin_candidates(y: torch.Tensor, starts: list[int], sz: Sizes, scale: torch.Tensor, n: int, last: torch.Tensor) -> torch.Tensor:
    """`origin_candidates` from the day runs of `n` rows at `starts` (latest first)."""
    WK, P = sz.WK, sz.P
    T, V, days = y.shape[0], y.shape[1], len(starts)
    rows = y.numpy()
    yd = [rows[s : s + n] for s in starts]
    cand = np.empty((n, V, N_CAND, 2), np.float32)
    # each candidate slot takes a (iops, MB/s) pair per value: copied as one 8-byte word
    pairs = cand.view(np.uint64)[..., 0]  # [n, V, 9]
    pairs[:, :, 0:3] = _pairs(last.numpy())
    pairs[:, :, 3] = _pairs(yd[0])
    pairs[:, :, 4] = _pairs(rows[T - WK : T - WK + n] if T >= WK else yd[0])
    if n > 1 and days < 64 and day_sum_is_torch_order():
        kmean = np.divide(day_sum(yd), days)  # the k-day mean, as `mean` divides its sum
    else:  # the layout `day_candidates` reduces, as it is
        kmean = torch.stack([y[s : s + n] for s in starts], 1).movedim(2, 0).mean(2).transpose(0, 1).contiguous().numpy()
    pairs[:, :, 5] = _pairs(kmean)
    kmed = median_of(yd, np.minimum, np.maximum)
    if (kmed == 0).any() and any(np.signbit(x).any() for x in yd):
        # observed -0.0 and 0.0 are equal, and torch's min/max pick between them by position:
        # the median may be a zero of either sign, so take torch's own steps (on the caller's threads)
        kmed = median_of([y[s : s + n] for s in starts]).numpy()
    pairs[:, :, 6] = _pairs(kmed)
    hmean = hour_means(rows, starts, n, P)
    pairs[:, :, 7] = _pairs(hmean[0])
    pairs[:, :, 8] = _pairs(median_of(hmean, np.minimum, np.maximum))  # sums of values >= 0: no -0.0, no NaN
    flat = cand.reshape(n, -1)
    if not flat.min(initial=0.0) >= 0:  # clamp at 0 (-0.0 stays, as with torch's clamp)
        np.maximum(flat, 0.0, out=flat, where=flat < 0)
    np.divide(flat, np.broadcast_to(scale.numpy()[:, None, :], (V, N_CAND, 2)).reshape(-1), out=flat)
    with torch_threads(1):
        return torch.from_numpy(cand).log1p_()


def _pairs(x: np.ndarray) -> np.ndarray:
    """Float32 `[..., 2]` with its last axis contiguous, as one uint64 per pair `[...]` (a view)."""
    return np.ascontiguousarray(x).view(np.uint64)[..., 0]


def day_sum(x: list):
    """The sum of `x` (k days, k < 64; tensors or arrays) in the order torch sums
    `day_candidates`' day axis at prediction.

    There (2 or more target steps) the reduction's output is contiguous in its own shape, so the
    summed axis meets an innermost run of only the two targets: torch then sums each value
    in four interleaved partial sums from 0 (x[0] + x[4] + .., x[1] + x[5] + .., ..), adds
    the days after the last whole group of four to the first, then the other three to it.
    Float sums depend on the order; the same order gives the same bits, and
    tests/test_lstm_predict.py holds it to the reduction itself.
    """
    groups = len(x) // 4
    if groups == 0:
        acc = x[0] + 0.0
        for t in x[1:]:
            acc += t
        return acc
    part = [x[k] + 0.0 for k in range(4)]
    for g in range(1, groups):
        for k in range(4):
            part[k] += x[4 * g + k]
    for t in x[4 * groups :]:
        part[0] += t
    for k in range(1, 4):
        part[0] += part[k]
    return part[0]


@functools.cache
def day_sum_is_torch_order() -> bool:
    """Whether this machine's torch sums the day axis in `day_sum`'s order (checked once, on a probe,
    at 1 and 2 threads): where a build or CPU sums in another order, the prediction takes torch's own
    reduction (the same numbers, without this speed-up)."""
    g = torch.Generator().manual_seed(0)
    prev = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for v, days, n in ((3, 7, 2), (40, 7, 72), (5, 9, 5), (2, 3, 4)):
                yd = torch.rand(days, n, v, 2, generator=g) * 100
                want = yd.transpose(0, 1).contiguous().movedim(2, 0).mean(2).transpose(0, 1)
                got = day_sum(list(yd.unbind(0))) / days
                if not torch.equal(got, want):
                    return False
    finally:
        torch.set_num_threads(prev)
    return True


def hour_means(rows: np.ndarray, starts: list[int], n: int, P: int) -> list[np.ndarray]:
    """Per day (runs of `n` rows of `rows` `[T, V, 2]` at `starts`, equally spaced, latest first):
    the mean of the `P` rows up to each row `[n, V, 2]`, as `day_candidates(runs=True)` has it: a
    float64 running sum from the hour before the run (row by row, like `cumsum`), differences
    `P` rows apart rounded to float32, divided by `P`."""
    k = len(starts)
    flat = rows.reshape(rows.shape[0], -1)
    gap = starts[0] - starts[1] if k > 1 else 0
    step = flat.strides[0]
    # rows start - P .. start + n - 1 of every day, oldest day first: [days, n + P, V * 2]
    block = np.lib.stride_tricks.as_strided(flat[starts[-1] - P :], (k, n + P, flat.shape[1]), (gap * step, step, flat.strides[1]))
    run = block.astype(np.float64)
    run[:, 0] += 0.0  # cumsum starts from 0
    for r in range(1, n + P):
        np.add(run[:, r], run[:, r - 1], out=run[:, r])
    hm = np.empty((k, n, flat.shape[1]), np.float32)
    np.subtract(run[:, P:], run[:, :-P], out=hm, casting="same_kind")  # in float64, rounded on the way out
    hm /= np.float32(P)
    hm = hm.reshape(k, n, *rows.shape[1:])
    return [hm[k - 1 - i] for i in range(k)]
