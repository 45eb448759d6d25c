"""CP-SAT model of the lab scheduling problem, one module per rule (see ``model.py``)."""

from scheduler.core.cpsat.context import ModelContext
from scheduler.core.cpsat.hints import add_hint
from scheduler.core.cpsat.model import build_model, read_solution, term_values

__all__ = ["ModelContext", "add_hint", "build_model", "read_solution", "term_values"]
