"""The simulation clock: a SimPy environment that counts the events it processes.

The benchmark reports events per tick (the fleet model's point is that they do not grow
with the number of volumes); counting here avoids reading SimPy's private counters.
A run that ends with an empty event queue has processed every event it scheduled.
"""

from __future__ import annotations

import simpy


class CountingEnvironment(simpy.Environment):
    """`simpy.Environment` whose `processed` is the number of events processed so far."""

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.processed = 0

    def step(self) -> None:
        super().step()
        self.processed += 1
