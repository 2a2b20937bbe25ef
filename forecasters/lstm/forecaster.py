"""`LSTMForecaster`: training (full or warm-started) and batched prediction of the global LSTM."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from common.checks import require
from common.units import DAY_S
from forecasters.base import FORECASTERS, make_forecast
from forecasters.lstm.features import EPS, Sizes, Tables, arrays, batch_inputs
from forecasters.lstm.model import Net, quantile_loss
from forecasters.lstm.origin import origin_inputs
from forecasters.seasonal import SeasonalNaive
from forecasters.series import steps, targets
from forecasters.threads import torch_threads
from sim.types import Forecast, LoadHistory


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
        self.net: Net | None = None
        self.step_s: float | None = None
        self.n_fits = 0
        self.n_warm_fits = 0
        self.epochs_run = 0  # training epochs over all fits (a warm fit adds `warm_epochs`)
        self.loss_history: list[float] = []  # mean training loss per epoch, all fits
        self.last_fit: dict[str, float] = {}
        #: called after each training epoch with (epochs done, epochs of this fit), e.g. a progress bar
        self.on_epoch: Callable[[int, int], None] | None = None
        self._fallback = SeasonalNaive(quantile=quantile, rule=rule)

    # ------------------------------------------------------------------ sizes
    def _sizes(self, step_s: float) -> Sizes:
        return Sizes.of(self.window_s, self.horizon_s, step_s)

    def min_history_steps(self, step_s: float) -> int:
        sz = self._sizes(step_s)
        return sz.W + sz.D

    def min_target_steps(self, step_s: float) -> int:
        """Observed target steps a training origin needs after it (one hour)."""
        return steps(3600.0, step_s)

    def reset(self) -> None:
        """Forget the weights: the next `fit` trains from scratch."""
        self.net = None

    # ------------------------------------------------------------------ training
    def fit(self, history: LoadHistory) -> None:
        """Train from scratch, or (weights kept, `warm_start`) fine-tune for `warm_epochs` on
        the origins of the last `warm_days`: a refit then costs a fraction of the first."""
        t_start = time.perf_counter()
        sz = self._sizes(history.step_s)
        T = history.n_steps
        # origins need a window and a day before them, and at least an hour of targets after
        # (target steps past the end of the history are masked out of the loss)
        t_lo, t_hi = sz.W + sz.D, T - min(sz.H, self.min_target_steps(history.step_s))
        if t_hi < t_lo:  # not enough history to train on: keep what we have
            self.last_fit = {"fit_s": time.perf_counter() - t_start, "epochs": 0, "warm": 0.0, "samples": 0}
            return
        with torch_threads(self.threads):
            warm = self.warm_start and self.net is not None and self.step_s == history.step_s
            torch.manual_seed(self.seed + self.n_fits)
            rng = np.random.default_rng(self.seed + self.n_fits)
            if not warm:
                self.net = Net(self.hidden, sz.H)
                self.step_s = history.step_s
                epochs, lr = self.epochs, self.lr
            else:
                t_lo = max(t_lo, t_hi - steps(self.warm_days * DAY_S, history.step_s))
                epochs, lr = self.warm_epochs, self.warm_lr
            a = arrays(history)
            tables = Tables(a, sz, self.days, t_lo - sz.D)
            t_tables = time.perf_counter() - t_start
            per_epoch = self._train(a, tables, sz, t_lo, t_hi, epochs, lr, rng)
            self.n_fits += 1
            self.n_warm_fits += int(warm)
            self.last_fit = {
                "fit_s": time.perf_counter() - t_start,
                "tables_s": t_tables,
                "epochs": float(epochs),
                "warm": float(warm),
                "samples": float(epochs * per_epoch),
            }

    def _train(self, a, tables: Tables, sz: Sizes, t_lo: int, t_hi: int, epochs: int, lr: float, rng: np.random.Generator) -> int:
        """`epochs` epochs of Adam over random (volume, origin) samples; returns samples per epoch."""
        V = a.y.shape[1]
        csum = a.csum
        n_t = t_hi - t_lo + 1
        total = V * n_t
        per_epoch = min(self.samples_per_epoch, total)
        windows = [w for w in (sz.P, 6 * sz.P) if w <= sz.H]
        net = self.net
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        net.train()
        for e in range(epochs):
            pick = rng.choice(total, size=per_epoch, replace=False) if total > per_epoch else rng.permutation(total)
            vs = torch.from_numpy(pick // n_t)
            ts = torch.from_numpy(pick % n_t + t_lo)
            running, n_b = 0.0, 0
            for s in range(0, per_epoch, self.batch_size):
                v, t = vs[s : s + self.batch_size], ts[s : s + self.batch_size]
                lo = (t - sz.WK).clamp(min=0)
                scale = ((csum[t, v] - csum[lo, v]) / (t - lo).clamp(min=1)[:, None].double()).float() + EPS
                seq, static, cand, ratio, known = batch_inputs(a, tables, sz, v, t, scale)
                med, up = net(seq, static, cand)
                loss = quantile_loss(med, up, ratio, known, windows, self.quantile, self.window_loss)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                running += float(loss.detach())
                n_b += 1
            self.loss_history.append(running / max(1, n_b))
            self.epochs_run += 1
            if self.on_epoch is not None:
                self.on_epoch(e + 1, epochs)
        net.eval()
        return per_epoch

    # ------------------------------------------------------------------ prediction
    def _rows_read(self, sz: Sizes) -> int:
        """Rows before the origin that a prediction reads: the week of the scale and weekly lag,
        the window and its lag a day before, `days` days of seasonal lags and the hour before them."""
        return max(sz.WK, sz.W + sz.D, self.days * sz.D + sz.P, 6 * sz.P)

    def predict(self, history: LoadHistory, horizon_steps: int) -> Forecast:
        if self.net is None or self.step_s != history.step_s or history.n_steps < self.min_history_steps(history.step_s):
            fc = self._fallback.predict(history, horizon_steps)
            fc.model = f"{self.name}(fallback:seasonal_naive)"
            return fc
        sz = self._sizes(history.step_s)
        H = sz.H
        with torch_threads(self.threads), torch.inference_mode():
            need = self._rows_read(sz)
            tail = history.tail(need) if history.n_steps > need else history
            T = tail.n_steps
            with torch_threads(1):  # elementwise: the same bits on any number of threads (lstm/origin.py)
                a = arrays(tail, cov_from=max(0, T - sz.W))
            scale = a.y[max(0, T - sz.WK) :].mean(0) + EPS  # [V, 2]
            seq, static, cand = origin_inputs(a, sz, self.days, scale, min(H, horizon_steps))
            med, up = self.net(seq, static, cand)
            with torch_threads(1):
                s = scale[:, None, :].double()
                mean = med.double().clamp_(max=30.0).expm1_().mul_(s).numpy()  # in place on the fresh float64 copies
                upper = up.double().clamp_(max=30.0).expm1_().mul_(s).numpy()
        if horizon_steps > H:  # beyond the trained horizon: seasonal naive
            extra = self._fallback._point(targets(tail), history.step_s, horizon_steps)[:, H:]
            mean = np.concatenate([mean, extra], 1)
            upper = np.concatenate([upper, extra], 1)
        return make_forecast(history, mean, upper, quantile=self.quantile, model=self.name, rule=self.rule)
