"""The LSTM's inputs at one origin for every volume (prediction), fast and bit for bit.

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

import numpy as np
import torch

from forecasters.lstm.features import N_CAND, Arrays, Sizes, candidates, day_candidates, median_of
from forecasters.threads import torch_threads


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
        cand = candidates(last[None], dayc, week, scale[None, :, None, :])
    return seq, static, cand.transpose(0, 1)  # cand [V, H, 9, 2]


def origin_candidates(a: Arrays, sz: Sizes, days: int, scale: torch.Tensor, n: int, last: torch.Tensor) -> torch.Tensor | None:
    """The nine candidates `[n, V, 9, 2]` of target steps 1..n after the last row: the values
    of `candidates(day_candidates(.., runs=True))`, from row views.

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
