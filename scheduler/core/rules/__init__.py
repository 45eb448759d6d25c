"""The hard rules' shared definitions (docs/architecture.md §3.7).

``names`` holds every rule's stable name, as the verifier reports it and every other module
refers to it; ``exposure`` is rule 3.5's caps: which cap a job counts against, in which day or
week, and how much room an examiner has left once logged and planned minutes are counted.
"""
