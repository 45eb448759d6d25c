"""Rule 4: predecessors end before a job starts; a left-out predecessor keeps successors out.

Release and fixed neighbours are already in the start domains (placement.py); this adds the links
between two free jobs.
"""

from __future__ import annotations

from scheduler.core.cpsat.context import ModelContext


def add_precedence(ctx: ModelContext) -> None:
    """Rule 4: ``present[succ] => present[pred]`` and ``start[succ] >= end[pred]``."""
    model = ctx.model
    for job_id in ctx.free:
        succ = ctx.vars[job_id]
        for pred_id in succ.job.after:
            pred = ctx.vars.get(pred_id)
            if pred is None:
                continue  # absent (done) or fixed: handled by the start domain
            model.add_implication(succ.present, pred.present)
            model.add(succ.start >= pred.end).only_enforce_if(succ.present)
