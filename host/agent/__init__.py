"""`piop agent`: the design's main loop on a real host, driving a real backup tool.

Every period (default 10 s) the agent observes its volumes' devices and the host,
forecasts IOPS and MB/s, builds the simulator's `DecisionContext` from real state and
asks the registered policy (the same class the simulator runs) what to do; the actions
start, throttle, pause and resume real backup processes (restic, or any command).

Modules: `config.py` (the YAML schema), `setup.py` (what this host can serve),
`state.py` (SQLite state: jobs, restore points, decisions, history), `observe.py`
(diskstats and host sampling, history steps), `estimate.py` (bytes a backup will read),
`points.py` (restore points -> RPO/RTO figures), `context.py` (the DecisionContext),
`jobs.py` + `proc.py` + `throttle.py` + `retry.py` (processes, cgroup / signal limits,
back-off), `adapters/` (restic, generic command), `feasible.py` (who will miss an RPO),
`loop.py` (the agent), `advise.py` (`--dry-run`), `status.py`, `metrics.py`
(Prometheus), `cli.py`.
"""
