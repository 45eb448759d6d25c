"""The web console: server-rendered pages for supervisors and examiners at ``/ui/``.

A FastAPI sub-application mounted on the API (``mount_console``): it shares the API's settings,
database, key check and role declarations, renders Jinja2 templates shipped in this package, and
serves its own CSS and script (no CDN). See docs/architecture.md §7.8.
"""

from api.console.app import NAV, NavItem, mount_console

__all__ = ["NAV", "NavItem", "mount_console"]
