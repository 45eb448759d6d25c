"""The loader's parts, one subject each; `scheduler.planning.loader.load_snapshot` puts them
together (docs/architecture.md §7.3).

- `timeline`: the snapshot's clock, working days, the horizon and the frozen window;
- `idmap`: snapshot ids <-> database ids, and what the loader reports (`Excluded`, `Begun`);
- `resources`: examiners, workstations and licence pools as the snapshot has them;
- `rows`: the open jobs' rows, their child tables and predecessors, read once;
- `jobs`: snapshot jobs, due times and the pins of work under way;
- `published`: the published schedule as ``previous``, and the pins of a repair.
"""
