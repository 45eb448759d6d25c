"""The stable name of every hard rule the verifier checks (docs/architecture.md §3).

A violation carries one of these names, and so does every CP-SAT constraint, explanation and
refusal that speaks of a rule: import the constant, never type the string. ``verify.RULES`` lists
them in the order the verifier checks them.
"""

from __future__ import annotations

# The plan's shape (§3).
COVERAGE = "coverage"
HORIZON = "horizon"
END = "end"

# 3.1 Eligibility.
EXAMINER_UNKNOWN = "examiner_unknown"
EXAMINER_NEEDED = "examiner_needed"
EXAMINER_NOT_NEEDED = "examiner_not_needed"
SKILLS = "skills"
EXAMINER_ALLOW_LIST = "examiner_allow_list"
WORKSTATION_UNKNOWN = "workstation_unknown"
WORKSTATION_NEEDED = "workstation_needed"
WORKSTATION_NOT_NEEDED = "workstation_not_needed"
CAPABILITIES = "capabilities"
MACHINE_BY_WORKSTATION = "machine_by_workstation"

# 3.2 Examiner time.
EXAMINER_AVAILABILITY = "examiner_availability"
EXAMINER_OVERLAP = "examiner_overlap"

# 3.3 Workstations and licence pools.
WORKSTATION_AVAILABILITY = "workstation_availability"
WORKSTATION_CAPACITY = "workstation_capacity"
POOL_CAPACITY = "pool_capacity"

# 3.4 Precedence and release.
RELEASE = "release"
PRECEDENCE = "precedence"

# 3.5 Exposure (the caps' accounting is `scheduler.core.rules.exposure`).
MAX_SEVERITY = "max_severity"
EXPOSURE_WINDOW = "exposure_window"
EXPOSURE_DAILY_CAP = "exposure_daily_cap"
EXPOSURE_SEVERE_DAILY_CAP = "exposure_severe_daily_cap"
EXPOSURE_WEEKLY_CAP = "exposure_weekly_cap"

# 3.6 Pins and frozen placements.
PIN = "pin"
FROZEN = "frozen"

#: The rules that keep a placement where it is (a plan never moves such a job to mend another).
KEPT = frozenset({PIN, FROZEN})

#: Rules that speak of other jobs or of the plan as a whole, not of one placement on its own:
#: a placement tried by itself (a pin, a kept placement left out) is judged on the rest.
NOT_ITS_OWN = frozenset({COVERAGE, PRECEDENCE, PIN, FROZEN})
