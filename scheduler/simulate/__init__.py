"""``labq simulate``: the lab as it lives, through the real service (docs/architecture.md §10.1).

`events` draws the seeded, policy-independent event stream of a generated lab; `driver` plays it
through the HTTP API on the controlled clock while a worker thread solves; `metrics` turns what
happened into the figures. Benchmark code: nothing in production imports this package.
"""
