"""The agent's Prometheus endpoint (`metrics.port` in the config).

Per volume: observed production IOPS and MB/s (last period), the forecast's mean and
upper IOPS / MB/s for the current step, the restore point's age and the RPO, whether the
tiers' EDF check says the RPO will be missed, the job's state (0 none, 1 queued,
2 running, 3 paused), its measured read rate and the throttle in force (MB/s; +Inf while
unthrottled, 0 without a job), and counters of finished backups by outcome and of
decisions by action (forced starts apart). For the agent: the time one decision period
took and the process's own CPU (the standard `process_*` metrics).
"""

from __future__ import annotations

import math

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.process_collector import ProcessCollector

from sim.types import Forecast


class Metrics:
    def __init__(self, volumes: list[str]):
        self.volumes = volumes
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)
        g = lambda name, doc: Gauge(name, doc, ["volume"], registry=r)  # noqa: E731
        self.obs_iops = g("piop_observed_iops", "production IOPS of the volume's device in the last period")
        self.obs_mbps = g("piop_observed_mbps", "production MB/s of the volume's device in the last period")
        self.pred_iops = g("piop_predicted_iops", "forecast mean IOPS of the current history step")
        self.pred_mbps = g("piop_predicted_mbps", "forecast mean MB/s of the current history step")
        self.pred_upper_iops = g("piop_predicted_upper_iops", "forecast upper-quantile IOPS of the current step")
        self.pred_upper_mbps = g("piop_predicted_upper_mbps", "forecast upper-quantile MB/s of the current step")
        self.age = g("piop_restore_point_age_seconds", "age of the newest restore point (+Inf: none)")
        self.rpo = g("piop_rpo_seconds", "the volume's RPO")
        self.will_miss = g("piop_rpo_will_miss", "1 when the tiers' EDF check says this volume will pass its RPO")
        self.job_state = g("piop_job_state", "0 none, 1 queued, 2 running, 3 paused")
        self.job_rate = g("piop_backup_read_mbps", "what the volume's backup read from its device in the last period")
        self.throttle = g("piop_throttle_mbps", "the read limit in force (+Inf unthrottled, 0 no job)")
        self.backups = Counter("piop_backups", "finished backups", ["volume", "outcome"], registry=r)
        self.decisions = Counter("piop_decisions", "scheduler actions", ["action", "forced"], registry=r)
        self.loop_s = Gauge("piop_agent_period_seconds", "wall time of the last decision period's work", registry=r)
        self.server = None
        self.port: int | None = None

    def serve(self, port: int, address: str) -> int:
        """Start the HTTP endpoint; the port it listens on."""
        self.server, _thread = start_http_server(port, address, registry=self.registry)
        self.port = int(self.server.server_address[1])
        return self.port

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def update(self, ctx, fc: Forecast | None, will_miss: set[str]) -> None:
        i0 = None
        if fc is not None and fc.horizon:
            i0 = min(max(int(math.floor((ctx.t - fc.origin_t) / fc.step_s)), 0), fc.horizon - 1)
        for v, name in enumerate(self.volumes):
            self.obs_iops.labels(name).set(float(ctx.prod_iops[v]))
            self.obs_mbps.labels(name).set(float(ctx.prod_mbps[v]))
            if i0 is not None:
                self.pred_iops.labels(name).set(float(fc.mean[v, i0, 0]))
                self.pred_mbps.labels(name).set(float(fc.mean[v, i0, 1]))
                self.pred_upper_iops.labels(name).set(float(fc.upper[v, i0, 0]))
                self.pred_upper_mbps.labels(name).set(float(fc.upper[v, i0, 1]))
            self.age.labels(name).set(float(ctx.rp_age_s[v]))
            self.rpo.labels(name).set(float(ctx.volumes.rpo_s[v]))
            self.will_miss.labels(name).set(1.0 if name in will_miss else 0.0)
            st = int(ctx.job_state[v])
            self.job_state.labels(name).set(st)
            self.job_rate.labels(name).set(float(ctx.job_rate_mbps[v]))
            thr = float(ctx.job_throttle_mbps[v])
            self.throttle.labels(name).set(0.0 if st == 0 else (thr if np.isfinite(thr) else math.inf))
