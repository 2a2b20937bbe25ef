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

Modules: `features` (inputs, with the per-history tables a training batch gathers from),
`origin` (the inputs of one prediction, every volume at once), `model` (network and loss),
`forecaster` (`LSTMForecaster`: fit, warm start, predict).
"""

import forecasters.threads  # noqa: F401  (the OpenMP wait policy, set before torch loads)
from forecasters.lstm.forecaster import LSTMForecaster

__all__ = ["LSTMForecaster"]
