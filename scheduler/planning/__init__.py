"""The planning service: the edge between the database and the engine (docs/architecture.md §7.3).

``loader`` turns one lab's rows into a `Snapshot`, the engine solves it, ``store`` keeps the
verified `Plan` as a `ScheduleVersion`, ``publish`` makes a version the lab's schedule, and
``runs`` queues and executes solve runs for the worker, the API and the CLI.
"""
