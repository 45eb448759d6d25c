"""Domain services: create and change the store's entities. They flush, never commit: the caller's
unit of work (an API request, a CLI command) commits on success and rolls back on error."""
