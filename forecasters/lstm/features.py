"""The LSTM's model inputs for (volume, origin) pairs, read from per-history tables.

Most inputs depend on the target row only, not on the origin: the seasonal candidates of
target step `h` after origin `t` read the rows `D * ceil(h / D)` before row `j = t + h - 1`
(and the days before that), so they are a function of that *base row* `j - D * ceil(h / D)`.
`Tables` computes those five per-row candidates (daily seasonal naive, the mean and median
over `days` days, the trailing hourly mean one day before and its median over the days)
and the calendar once per history; a training batch then gathers rows instead of
recomputing medians for every (sample, step, day). Nothing past the origin is read: a base
row is always before the origin.
The inputs of one prediction are built in `forecasters.lstm.origin`.
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
    cand = candidates(last[:, None], dayc, week, scale[:, None, None, :])
    static = torch.cat([a.kinds[v], tb.cal[t], torch.log10(scale) / 3.0, wk_ok.float()[:, None]], -1)
    ratio = gather(a.y, j.clamp(max=T - 1), v) / sc  # [B, H, 2]
    return seq, static, cand, ratio, j < T


def candidates(last: torch.Tensor, dayc: torch.Tensor, week: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The nine candidates, log-scaled, in `dayc`'s layout (`[B, H, ..]` or `[H, V, ..]`): the last
    hour's mean and median and the last 6 h's median (`last`, broadcast over the horizon),
    daily seasonal naive, weekly seasonal naive, then the other day candidates. `scale`
    broadcasts against `[.., .., K, 2]`."""
    last = torch.log1p(last.clamp(min=0.0) / scale).expand(*dayc.shape[:2], -1, -1)
    week = torch.log1p(week[:, :, None].clamp(min=0.0) / scale)
    dayc = torch.log1p(dayc.clamp(min=0.0) / scale)
    return torch.cat([last, dayc[:, :, :1], week, dayc[:, :, 1:]], 2)
