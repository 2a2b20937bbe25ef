"""A global LSTM forecaster (one model for all volumes, batched), in PyTorch.

Per volume and forecast origin `t` (the first unobserved step) the model sees:

- a window of the last `window_s` of log-scaled IOPS and MB/s, the same window one day
  earlier, the CPU / memory / network covariates and time-of-day / day-of-week
  features of each step (the LSTM's input sequence);
- the application kind (one-hot of `history.kinds`), the calendar at the origin, the
  volume's scale and whether a week of history exists (static inputs);
- nine *candidate* forecasts for every target step: the last hour's mean and median,
  the last 6 h's median, the daily and weekly seasonal naive values, the mean and median
  over the last `days` days at the same time of day, and the (trailing) hourly mean one
  day before and its median over the last `days` days.

All load values are scaled per sample as `z = log1p(x / s)` with `s` the volume's mean
over the week before the origin, so one model serves volumes of any size. The network
turns the LSTM state and static inputs into a context vector, and from it, for every
target step h (direct multi-horizon output, both targets at once): softmax weights over
the candidates (per geometric horizon bucket) plus a per-step correction give the median,
and a positive per-step spread on top gives the upper quantile. It is trained with the
pinball loss at 0.5 and `quantile` (e.g. 0.9), plus a pinball-0.5 term on the mean load
over the next hour and next 6 h, which is what the scheduler uses.

Training samples are (volume, origin) pairs drawn from the fitted history, with at least
an hour of observed targets after the origin; target steps past `history.end_t` are
masked out of the loss, so nothing from the future is ever used. `fit` on an already fitted model
warm-starts: it continues from the current weights for `warm_epochs` on the last
`warm_days`. Deterministic under `seed` (fixed seeds, CPU kernels, `threads` threads).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.checks import require
from common.units import DAY_S, MONDAY0_S, WEEK_S
from forecasters.base import FORECASTERS, make_forecast
from forecasters.seasonal import SeasonalNaive
from forecasters.series import horizon_bucket, steps, targets
from forecasters.threads import torch_threads
from sim.types import Forecast, LoadHistory

KIND_VOCAB: tuple[str, ...] = ("database", "vm", "fileserver", "other")
N_CAND = 9
N_SEQ = 11  # z(iops, mbps), z one day earlier (2), cpu, mem, net, tod sin/cos, week sin/cos
N_STATIC = len(KIND_VOCAB) + 4 + 2 + 1
_EPS = 1e-6


def _calendar(epoch: torch.Tensor) -> torch.Tensor:
    """Time of day and position in the week (Monday 00:00 = 0) as sin/cos pairs: `[..., 4]`."""
    day = 2 * math.pi * torch.remainder(epoch, DAY_S) / DAY_S
    week = 2 * math.pi * torch.remainder(epoch - MONDAY0_S, WEEK_S) / WEEK_S
    return torch.stack([torch.sin(day), torch.cos(day), torch.sin(week), torch.cos(week)], -1).float()


def _median(x: torch.Tensor, dim: int) -> torch.Tensor:
    """`x.median(dim).values` (the lower median), several times faster for the short axes here.

    Sorts along `dim` with an odd-even transposition network (elementwise min/max over
    whole slices) when that axis is short; falls back to `torch.median` otherwise.
    """
    n = x.shape[dim]
    if n > 16:
        return x.median(dim).values
    v = list(x.unbind(dim))
    for r in range(n):
        for i in range(r % 2, n - 1, 2):
            v[i], v[i + 1] = torch.minimum(v[i], v[i + 1]), torch.maximum(v[i], v[i + 1])
    return v[(n - 1) // 2]


def _kinds_onehot(kinds: list[str]) -> torch.Tensor:
    idx = [KIND_VOCAB.index(k) if k in KIND_VOCAB else len(KIND_VOCAB) - 1 for k in kinds]
    return F.one_hot(torch.tensor(idx, dtype=torch.long), len(KIND_VOCAB)).float()


@dataclass
class _Arrays:
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


def _arrays(history: LoadHistory, cov_from: int = 0) -> _Arrays:
    y = torch.from_numpy(np.stack([history.iops, history.mbps], -1).astype(np.float32, copy=False))
    torch.nan_to_num_(y, nan=0.0, posinf=0.0).clamp_(min=0.0)  # a fresh copy: in place
    c = np.stack(
        [history.cpu_pct[cov_from:] / 100.0, history.mem_pct[cov_from:] / 100.0, np.log1p(np.maximum(history.net_mbps[cov_from:], 0.0))], -1
    )
    cov = torch.from_numpy(np.nan_to_num(c.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0))
    t0 = history.start_epoch + (float(history.times[0]) if history.n_steps else 0.0)
    return _Arrays(y, cov, cov_from, _kinds_onehot(history.kinds), t0, history.step_s)


class _Net(nn.Module):
    def __init__(self, hidden: int, horizon: int):
        super().__init__()
        self.horizon = horizon
        bucket = torch.from_numpy(horizon_bucket(horizon))
        self.n_buckets = int(bucket.max()) + 1
        self.register_buffer("bucket", bucket)
        self.lstm = nn.LSTM(N_SEQ, hidden, batch_first=True)
        self.ctx = nn.Sequential(nn.Linear(hidden + N_STATIC, hidden), nn.ReLU())
        self.mix = nn.Linear(hidden, self.n_buckets * N_CAND * 2)
        self.delta = nn.Linear(hidden, horizon * 2)
        self.spread = nn.Linear(hidden, horizon * 2)
        with torch.no_grad():
            self.delta.weight.mul_(0.1)
            self.delta.bias.zero_()
            self.spread.bias.fill_(0.0)

    def forward(self, seq: torch.Tensor, static: torch.Tensor, cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Median and upper quantile `[B, h, 2]` for the first `h = cand.shape[1]` target steps."""
        _, (hid, _) = self.lstm(seq)
        x = self.ctx(torch.cat([hid[-1], static], -1))
        b, h = x.shape[0], cand.shape[1]
        w = torch.softmax(self.mix(x).view(b, self.n_buckets, N_CAND, 2), dim=2)[:, self.bucket[:h]]  # [B, h, K, 2]
        head = slice(0, 2 * h)  # the output rows of the first h steps
        med = (w * cand).sum(2) + F.linear(x, self.delta.weight[head], self.delta.bias[head]).view(b, h, 2)
        up = med + F.softplus(F.linear(x, self.spread.weight[head], self.spread.bias[head]).view(b, h, 2))
        return med, up


def _pinball(pred: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    """Elementwise pinball (quantile) loss."""
    d = target - pred
    return torch.maximum(q * d, (q - 1) * d)


@FORECASTERS.register("lstm")
class LSTMForecaster:
    name = "lstm"

    def __init__(
        self,
        *,
        window_s: float = 4 * 3600.0,
        horizon_s: float = DAY_S,
        hidden: int = 48,
        days: int = 7,
        quantile: float = 0.9,
        epochs: int = 10,
        warm_epochs: int = 3,
        warm_days: float = 7.0,
        samples_per_epoch: int = 16384,
        batch_size: int = 256,
        lr: float = 3e-3,
        warm_lr: float = 1e-3,
        window_loss: float = 1.0,
        warm_start: bool = True,
        seed: int = 0,
        threads: int = 2,
        rule=None,
    ):
        require(0.5 < quantile < 1.0, "quantile", "must be in (0.5, 1)", quantile, where=self.name)
        self.window_s, self.horizon_s, self.hidden, self.days = float(window_s), float(horizon_s), int(hidden), int(days)
        self.quantile = float(quantile)
        self.epochs, self.warm_epochs, self.warm_days = int(epochs), int(warm_epochs), float(warm_days)
        self.samples_per_epoch, self.batch_size = int(samples_per_epoch), int(batch_size)
        self.lr, self.warm_lr, self.window_loss = float(lr), float(warm_lr), float(window_loss)
        self.warm_start, self.seed, self.threads, self.rule = bool(warm_start), int(seed), max(1, min(2, int(threads))), rule
        self.net: _Net | None = None
        self.step_s: float | None = None
        self.n_fits = 0
        self.loss_history: list[float] = []  # mean training loss per epoch, all fits
        self.last_fit: dict[str, float] = {}
        self._fallback = SeasonalNaive(quantile=quantile, rule=rule)

    # ------------------------------------------------------------------ sizes
    def _sizes(self, step_s: float) -> tuple[int, int, int, int, int]:
        """(window W, day D, week WK, horizon H, one hour P) in steps."""
        return (
            steps(self.window_s, step_s),
            steps(DAY_S, step_s),
            steps(WEEK_S, step_s),
            steps(self.horizon_s, step_s),
            steps(3600.0, step_s),
        )

    def min_history_steps(self, step_s: float) -> int:
        w, d, _, _, _ = self._sizes(step_s)
        return w + d

    def min_target_steps(self, step_s: float) -> int:
        """Observed target steps a training origin needs after it (one hour)."""
        return steps(3600.0, step_s)

    def reset(self) -> None:
        """Forget the weights: the next `fit` trains from scratch."""
        self.net = None

    # ------------------------------------------------------------------ features
    def _features(
        self,
        a: _Arrays,
        v: torch.Tensor,
        t: torch.Tensor,
        scale: torch.Tensor,
        with_target: bool,
        common: bool = False,
        steps_out: int | None = None,
    ):
        """Model inputs for (volume `v`, origin `t`) pairs, for the first `steps_out` target
        steps (all the trained horizon by default).

        `common` says every volume of the history is asked for, in order, at one origin (the
        prediction case): rows are then picked along time once and shared by all volumes,
        instead of one gather per (volume, row) pair.
        """
        W, D, WK, H, P = self._sizes(a.step_s)
        sc = scale[:, None, :]

        def take(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            """`x[rows[b, ...], v[b]]` as `[B, ..., C]`."""
            if common:
                return x[rows[0]].movedim(-2, 0)
            flat = rows * x.shape[1] + v.view(-1, *([1] * (rows.dim() - 1)))  # row-major (row, volume) index
            return torch.index_select(x.reshape(-1, x.shape[-1]), 0, flat.reshape(-1)).view(*rows.shape, x.shape[-1])

        widx = (t[:, None] + torch.arange(-W, 0)).clamp(min=0)  # [B, W]
        zw = torch.log1p(take(a.y, widx) / sc)
        zl = torch.log1p(take(a.y, (widx - D).clamp(min=0)) / sc)
        cw = take(a.cov, (widx - a.cov_off).clamp(min=0))
        calw = _calendar(a.t0 + widx.double() * a.step_s)
        seq = torch.cat([zw, zl, cw, calw], -1)

        H = H if steps_out is None else min(H, steps_out)
        h = torch.arange(1, H + 1)
        j = t[:, None] + h - 1  # rows of the target steps [B, H]
        base = j - D * torch.ceil(h / D).long()
        idx_d = base[:, :, None] - torch.arange(self.days) * D  # [B, H, days]
        idx_d = torch.where(idx_d >= 0, idx_d, base[:, :, None]).clamp(min=0)
        yd = take(a.y, idx_d)  # [B, H, days, 2]
        c_day = yd[:, :, 0]
        c_kmean = yd.mean(2)
        c_kmed = _median(yd, 2)
        wk_ok = t >= WK
        c_week = torch.where(wk_ok[:, None, None], take(a.y, (j - WK * torch.ceil(h / WK).long()).clamp(min=0)), c_day)
        recent = take(a.y, (t[:, None] + torch.arange(-6 * P, 0)).clamp(min=0))  # last 6 h [B, 6P, 2]
        c_mean = recent[:, -P:].mean(1)[:, None, :].expand(-1, H, -1)
        c_med = recent[:, -P:].median(1).values[:, None, :].expand(-1, H, -1)
        c_med6 = recent.median(1).values[:, None, :].expand(-1, H, -1)
        # hourly means ending at the same time on previous days (smoother seasonal values)
        hi = idx_d + 1
        lo = (hi - P).clamp(min=0)
        r = idx_d[0]  # [H, days]
        if common and torch.equal(r, r[:1] + torch.arange(H)[:, None]):
            # one origin, each day's rows one run: sum over just those runs and the hour before
            blk = r[:1] - P + torch.arange(H + P)[:, None]  # [H + P, days]
            run = torch.cumsum((take(a.y, blk.clamp(min=0)[None]) * (blk >= 0)[None, :, :, None]).double(), 1)
            hsum = run[:, P:] - run[:, :-P]
        else:
            hsum = take(a.csum, hi) - take(a.csum, lo)
        hmean = hsum.float() / (hi - lo).clamp(min=1)[..., None].float()
        c_hday = hmean[:, :, 0]
        c_hkmed = _median(hmean, 2)
        cands = [c_mean, c_med, c_med6, c_day, c_week, c_kmean, c_kmed, c_hday, c_hkmed]
        cand = torch.log1p(torch.stack(cands, 2).clamp(min=0.0) / scale[:, None, None, :])
        static = torch.cat([a.kinds[v], _calendar(a.t0 + t.double() * a.step_s), torch.log10(scale) / 3.0, wk_ok.float()[:, None]], -1)
        if not with_target:
            return seq, static, cand
        ratio = take(a.y, j.clamp(max=a.y.shape[0] - 1)) / sc  # [B, H, 2]
        known = j < a.y.shape[0]  # target steps inside the history [B, H]
        return seq, static, cand, ratio, known

    @staticmethod
    def _train_scale(csum: torch.Tensor, v: torch.Tensor, t: torch.Tensor, wk: int) -> torch.Tensor:
        lo = (t - wk).clamp(min=0)
        return ((csum[t, v] - csum[lo, v]) / (t - lo).clamp(min=1)[:, None].double()).float() + _EPS

    # ------------------------------------------------------------------ training
    def _loss(self, med: torch.Tensor, up: torch.Tensor, ratio: torch.Tensor, known: torch.Tensor, windows: list[int]) -> torch.Tensor:
        """Pinball losses over the target steps inside the history (`known`), plus window means."""
        zt = torch.log1p(ratio)
        m = known[:, :, None].float()
        n = m.sum() * 2 + 1e-9
        loss = (_pinball(med, zt, 0.5) * m).sum() / n + (_pinball(up, zt, self.quantile) * m).sum() / n
        if self.window_loss > 0:
            lin = torch.expm1(med.clamp(max=30.0)).clamp(min=0.0)
            for w in windows:
                full = known[:, w - 1].float()[:, None]  # the whole window is observed
                if float(full.sum()) == 0:
                    continue
                pm = torch.log1p(lin[:, :w].mean(1))
                am = torch.log1p(ratio[:, :w].mean(1))
                loss = loss + self.window_loss * (_pinball(pm, am, 0.5) * full).sum() / (full.sum() * 2)
        return loss

    def fit(self, history: LoadHistory) -> None:
        t_start = time.perf_counter()
        W, D, WK, H, P = self._sizes(history.step_s)
        T = history.n_steps
        # origins need a window and a day before them, and at least an hour of targets after
        # (target steps past the end of the history are masked out of the loss)
        t_lo, t_hi = W + D, T - min(H, self.min_target_steps(history.step_s))
        if t_hi < t_lo:  # not enough history to train on: keep what we have
            self.last_fit = {"fit_s": time.perf_counter() - t_start, "epochs": 0, "warm": 0.0, "samples": 0}
            return
        with torch_threads(self.threads):
            warm = self.warm_start and self.net is not None and self.step_s == history.step_s
            torch.manual_seed(self.seed + self.n_fits)
            rng = np.random.default_rng(self.seed + self.n_fits)
            if not warm:
                self.net = _Net(self.hidden, H)
                self.step_s = history.step_s
                epochs, lr = self.epochs, self.lr
            else:
                t_lo = max(t_lo, t_hi - steps(self.warm_days * DAY_S, history.step_s))
                epochs, lr = self.warm_epochs, self.warm_lr
            a = _arrays(history)
            V = a.y.shape[1]
            csum = a.csum
            n_t = t_hi - t_lo + 1
            total = V * n_t
            per_epoch = min(self.samples_per_epoch, total)
            windows = [w for w in (P, 6 * P) if w <= H]
            opt = torch.optim.Adam(self.net.parameters(), lr=lr)
            net = self.net
            net.train()
            for _ in range(epochs):
                pick = rng.choice(total, size=per_epoch, replace=False) if total > per_epoch else rng.permutation(total)
                vs = torch.from_numpy(pick // n_t)
                ts = torch.from_numpy(pick % n_t + t_lo)
                running, n_b = 0.0, 0
                for s in range(0, per_epoch, self.batch_size):
                    v, t = vs[s : s + self.batch_size], ts[s : s + self.batch_size]
                    scale = self._train_scale(csum, v, t, WK)
                    seq, static, cand, ratio, known = self._features(a, v, t, scale, True)
                    med, up = net(seq, static, cand)
                    loss = self._loss(med, up, ratio, known, windows)
                    opt.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                    opt.step()
                    running += float(loss.detach())
                    n_b += 1
                self.loss_history.append(running / max(1, n_b))
            net.eval()
            self.n_fits += 1
            self.last_fit = {
                "fit_s": time.perf_counter() - t_start,
                "epochs": float(epochs),
                "warm": float(warm),
                "samples": float(epochs * per_epoch),
            }

    # ------------------------------------------------------------------ prediction
    def predict(self, history: LoadHistory, horizon_steps: int) -> Forecast:
        if self.net is None or self.step_s != history.step_s or history.n_steps < self.min_history_steps(history.step_s):
            fc = self._fallback.predict(history, horizon_steps)
            fc.model = f"{self.name}(fallback:seasonal_naive)"
            return fc
        W, D, WK, H, P = self._sizes(history.step_s)
        with torch_threads(self.threads):
            # only the rows the features read: a week (scale, weekly lag) plus a day and the window
            need = WK + D + W
            tail = history.tail(need) if history.n_steps > need else history
            T = tail.n_steps
            a = _arrays(tail, cov_from=max(0, T - W))
            V = a.y.shape[1]
            v = torch.arange(V)
            t = torch.full((V,), T, dtype=torch.long)
            scale = a.y[max(0, T - WK) :].mean(0) + _EPS  # [V, 2]
            with torch.no_grad():
                seq, static, cand = self._features(a, v, t, scale, False, common=True, steps_out=horizon_steps)
                med, up = self.net(seq, static, cand)
            s = scale[:, None, :].double()
            mean = (torch.expm1(med.double().clamp(max=30.0)) * s).numpy()
            upper = (torch.expm1(up.double().clamp(max=30.0)) * s).numpy()
        if horizon_steps <= H:
            mean, upper = mean[:, :horizon_steps], upper[:, :horizon_steps]
        else:  # beyond the trained horizon: seasonal naive
            extra = self._fallback._point(targets(tail), history.step_s, horizon_steps)[:, H:]
            mean = np.concatenate([mean, extra], 1)
            upper = np.concatenate([upper, extra], 1)
        return make_forecast(history, mean, upper, quantile=self.quantile, model=self.name, rule=self.rule)
