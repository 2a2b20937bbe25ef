"""The LSTM network and its training loss.

The LSTM reads the input sequence; its last state and the static inputs make a context
vector, from which, for every target step (direct multi-horizon output, both targets at
once), softmax weights over the candidate forecasts (per geometric horizon bucket) plus a
per-step correction give the median, and a positive per-step spread on top gives the
upper quantile. The loss is the pinball loss at 0.5 and at the upper quantile, plus a
pinball-0.5 term on the mean load over the next hour and 6 h (what the scheduler reads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from forecasters.lstm.features import N_CAND, N_SEQ, N_STATIC
from forecasters.series import horizon_bucket


class Net(nn.Module):
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


def pinball(pred: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    """Elementwise pinball (quantile) loss."""
    d = target - pred
    return torch.maximum(q * d, (q - 1) * d)


def quantile_loss(
    med: torch.Tensor, up: torch.Tensor, ratio: torch.Tensor, known: torch.Tensor, windows: list[int], quantile: float, window_loss: float
) -> torch.Tensor:
    """Pinball losses over the target steps inside the history (`known`), plus window means."""
    zt = torch.log1p(ratio)
    m = known[:, :, None].float()
    n = m.sum() * 2 + 1e-9
    loss = (pinball(med, zt, 0.5) * m).sum() / n + (pinball(up, zt, quantile) * m).sum() / n
    if window_loss > 0:
        lin = torch.expm1(med.clamp(max=30.0)).clamp(min=0.0)
        for w in windows:
            full = known[:, w - 1].float()[:, None]  # the whole window is observed
            if float(full.sum()) == 0:
                continue
            pm = torch.log1p(lin[:, :w].mean(1))
            am = torch.log1p(ratio[:, :w].mean(1))
            loss = loss + window_loss * (pinball(pm, am, 0.5) * full).sum() / (full.sum() * 2)
    return loss
