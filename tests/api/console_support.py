"""Helpers of the console's tests: sign in through the real form, read tokens off pages."""

from __future__ import annotations

import re
import warnings
from typing import Any

from fastapi import FastAPI

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Any reference a page could make to another host: an absolute or protocol-relative URL in an
# attribute, a CSS url() or @import, or a script's fetch of one.
EXTERNAL = re.compile(
    r"""(?:src|href|action|formaction|poster|data)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//"""
    r"""|url\(\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//|@import|https?://""",
    re.IGNORECASE,
)


def browser(app: FastAPI) -> TestClient:
    """A fresh client with its own cookie jar (a browser)."""
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def sign_in(app: FastAPI, token: str, next_: str = "/ui/") -> TestClient:
    client = browser(app)
    form = client.get("/ui/sign-in")
    assert form.status_code == 200, form.text
    answer = client.post(
        "/ui/sign-in", data={"csrf": csrf_of(form.text), "key": token, "next": next_}
    )
    assert answer.status_code == 303, answer.text
    assert "labq_console" in client.cookies
    return client


def page_csrf(client: TestClient, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, r.text
    return csrf_of(r.text)


def external_urls(html: str) -> list[Any]:
    return [m.group(0) for m in EXTERNAL.finditer(html)]
