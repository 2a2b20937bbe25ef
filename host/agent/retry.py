"""Failed backups: counted per volume and retried after an exponential back-off.

After the n-th consecutive failure a volume's next start waits `base * 2**(n-1)`
seconds (at most `max`); a success resets the count. While a volume backs off the
policy's starts for it are refused (and logged once per back-off), the way the
simulator refuses a start that does not fit a volume's state. The counts survive a
restart (they live in the agent's state).
"""

from __future__ import annotations

from dataclasses import dataclass

from host.agent.state import AgentState


@dataclass
class VolumeFailures:
    total: int = 0
    consecutive: int = 0
    next_retry_t: float = 0.0  # Unix seconds
    last_error: str | None = None


class Backoff:
    def __init__(self, volumes: list[str], base_s: float, max_s: float, state: AgentState | None):
        self.volumes = volumes
        self.base_s, self.max_s = base_s, max_s
        self.state = state
        saved = state.failures() if state is not None else {}
        self.f = [VolumeFailures(**saved[v]) if v in saved else VolumeFailures() for v in volumes]
        self.refused_until = [0.0] * len(volumes)  # a refusal is logged once per back-off

    def ready(self, v: int, now: float) -> bool:
        return now >= self.f[v].next_retry_t

    def first_refusal(self, v: int) -> bool:
        """Whether a refused start of `v` is the first of this back-off (worth a log line)."""
        if self.refused_until[v] == self.f[v].next_retry_t:
            return False
        self.refused_until[v] = self.f[v].next_retry_t
        return True

    def failed(self, v: int, now: float, error: str) -> float:
        """Count a failure; the seconds until the next try."""
        f = self.f[v]
        f.total += 1
        f.consecutive += 1
        wait = min(self.max_s, self.base_s * 2 ** (f.consecutive - 1))
        f.next_retry_t = now + wait
        f.last_error = error
        self._save(v)
        return wait

    def succeeded(self, v: int) -> None:
        f = self.f[v]
        if f.consecutive or f.next_retry_t:
            f.consecutive = 0
            f.next_retry_t = 0.0
            self._save(v)

    def _save(self, v: int) -> None:
        if self.state is not None:
            f = self.f[v]
            self.state.set_failure(self.volumes[v], f.total, f.consecutive, f.next_retry_t, f.last_error)
