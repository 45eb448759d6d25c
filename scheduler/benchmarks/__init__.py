"""External and synthetic benchmarks run through the same engine as production solves.

Readers map the classic shop-scheduling instances (Brandimarte FJSP, job shop JSON) onto the
`labq.snapshot/1` contract with objective "makespan"; the runners measure labq against the
dispatch baselines, best-known values and, when installed, PyJobShop.
"""
