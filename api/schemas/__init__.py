"""Pydantic models at the HTTP boundary, one module per resource.

Request bodies forbid unknown fields, bound every integer, refuse booleans and strings where
integers are expected, and accept only timezone-aware instants.
"""
