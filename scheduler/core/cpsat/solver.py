"""How every CP-SAT solve in labq is set up, in one place: workers, seed, clock and presolve.

With one worker a solve runs on CP-SAT's work-counted (deterministic) clock, so a run replays the
same on any machine; with more it runs on wall time (docs/architecture.md §5).
"""

from __future__ import annotations

from collections.abc import Mapping

from ortools.sat.python import cp_model

#: CP-SAT deterministic time units per wall second of one worker, measured on neighbourhood
#: models of generated labs (0.07-0.13); only used for reproducible single-worker runs.
DETERMINISTIC_UNITS_PER_SECOND = 0.1

#: Neighbourhood models are small and solved many times: a light presolve leaves more of each
#: short limit to search (measured on generated labs: about twice the gain per second).
#: Do not add ``cp_model_probing_level: 0``: together with ``max_presolve_iterations: 1`` it
#: crashes OR-Tools 9.15 (segmentation fault) on some neighbourhood models with two workers.
LIGHT_PRESOLVE: dict[str, object] = {
    "symmetry_level": 0,
    "max_presolve_iterations": 1,
}


def make_solver(
    *,
    workers: int,
    seconds: float,
    deterministic: bool,
    seed: int | None = None,
    light_presolve: bool = False,
    extra: Mapping[str, object] | None = None,
) -> cp_model.CpSolver:
    """A solver with ``workers`` threads stopping after ``seconds`` (of work when
    ``deterministic``, of wall time otherwise); ``extra`` parameters are set last."""
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.num_workers = max(1, workers)
    if seed is not None:
        params.random_seed = seed
    if deterministic:
        params.max_deterministic_time = seconds * DETERMINISTIC_UNITS_PER_SECOND
    else:
        params.max_time_in_seconds = seconds
    for key, value in {**(LIGHT_PRESOLVE if light_presolve else {}), **(extra or {})}.items():
        setattr(params, key, value)
    return solver


def work_seconds(solver: cp_model.CpSolver) -> float:
    """The work a finished solve did, in the seconds of `DETERMINISTIC_UNITS_PER_SECOND`."""
    return float(solver.deterministic_time) / DETERMINISTIC_UNITS_PER_SECOND
