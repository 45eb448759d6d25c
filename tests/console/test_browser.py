"""The console in a real browser: Debian's chromium driven by Playwright, against `labq serve`
on the seeded demo lab (its embedded worker runs the repair an escalation queues).

Every run writes a 1600x1000 screenshot of each page under ``screenshots/`` (git-ignored).
Playwright's own browsers are never downloaded: the system chromium is the browser
(``.ci/run`` installs it with apt-get when it is missing).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scheduler.db import make_engine, session_scope
from scheduler.migrate import upgrade

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "screenshots"
CHROMIUM = Path(os.environ.get("LABQ_CHROMIUM", "/usr/bin/chromium"))
VIEWPORT = {"width": 1600, "height": 1000}
STARTUP_SECONDS = 120
REPAIR_SECONDS = 180  # a deadline for the repair to publish, not a speed target

playwright_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():  # pragma: no cover - CI installs it
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Demo:
    def __init__(self, base: str, lab: str, supervisor: str, examiner: str, examiner_ref: str):
        self.base = base
        self.lab = lab
        self.supervisor = supervisor
        self.examiner = examiner
        self.examiner_ref = examiner_ref

    def url(self, path: str) -> str:
        return self.base + path.replace("LAB", self.lab)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    from scheduler.benchmarks.api_reads import _publish_demo
    from scheduler.services import keys
    from scheduler.services.labs import get_lab
    from scheduler.services.resources import get_examiner

    directory = tmp_path_factory.mktemp("console-browser")
    url = f"sqlite:///{directory / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    lab_code = _publish_demo(engine, 5)
    with session_scope(engine) as session:
        lab = get_lab(session, lab_code)
        supervisor = keys.create_key(
            session, actor="test", role="supervisor", name="browser", lab=lab
        ).token
        examiner_row = get_examiner(session, lab, "E01")
        examiner = keys.create_key(
            session, actor="test", role="examiner", name="browser", lab=lab, examiner=examiner_row
        ).token
    engine.dispose()
    port = _free_port()
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "LABQ_DATABASE_URL": url, "PYTHONPATH": path, "LABQ_LOG_LEVEL": "INFO"}
    env.pop("LABQ_EMBEDDED_WORKER", None)  # the server's own worker runs the repair
    log = directory / "serve.log"
    child = subprocess.Popen(
        [sys.executable, "-c", "from api.cli import main; main()", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or child.poll() is not None:
            os.killpg(child.pid, signal.SIGKILL)
            pytest.fail(f"labq serve did not start: {log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)
    try:
        yield Demo(base, lab_code, supervisor, examiner, "E01")
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        launched.close()


def _signed_in(browser: Any, demo: Demo, token: str, start: str = "/ui/labs/LAB/board") -> Any:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    outside: list[str] = []

    def only_own(route: Any) -> None:  # the network is cut: only labq itself answers
        if route.request.url.startswith(demo.base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_own)
    page.outside = outside
    page.goto(demo.url(start))
    assert "/ui/sign-in" in page.url
    page.fill("#key", token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_a_supervisor_works_through_every_page(browser, demo):
    page = _signed_in(browser, demo, demo.supervisor)
    assert page.url.endswith(f"/ui/labs/{demo.lab}/board")
    pages = [
        ("1-board", "/ui/labs/LAB/board", "Board"),
        ("1-board-week", "/ui/labs/LAB/board?days=5", "Board"),
        ("2-backlog", "/ui/labs/LAB/backlog", "Backlog"),
        ("4-exposure", "/ui/labs/LAB/exposure", "Exposure"),
        ("7-runs", "/ui/labs/LAB/runs", "Runs"),
    ]
    for name, path, heading in pages:
        answer = page.goto(demo.url(path))
        assert answer.status == 200, path
        assert page.get_by_role("heading", level=1).first.inner_text().startswith(heading)
        _shot(page, name)

    # the board: a bar opens its job on the case page
    page.goto(demo.url("/ui/labs/LAB/board"))
    bar = page.locator("a.bar").first
    label = bar.inner_text()
    assert label.strip()
    bar.click()
    page.wait_for_load_state()
    match = re.search(r"/cases/([^/#?]+)#job-(\d+)$", page.url)
    assert match, page.url
    assert page.locator(f"#job-{match.group(2)}").is_visible()
    _shot(page, "3-case")

    # keyboard: the skip link, the navigation and the page's controls take focus in order
    page.goto(demo.url("/ui/labs/LAB/backlog"))
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert reached[0] == "Skip to content"
    assert {"Board", "Backlog", "Exposure", "Runs", "Sign out"} <= set(reached)
    assert page.outside == []


def test_an_escalation_shows_the_repairs_new_version(browser, demo):
    page = _signed_in(browser, demo, demo.supervisor)
    page.goto(demo.url("/ui/labs/LAB/backlog?priority=P5"))
    case_ref = page.locator("table.cases tbody a").first.inner_text()
    before = page.goto(demo.url("/ui/labs/LAB/runs"))
    assert before.status == 200
    versions_before = set(page.locator("table.versions tbody th").all_inner_texts())

    page.goto(demo.url(f"/ui/labs/LAB/cases/{case_ref}"))
    page.select_option("#esc-priority", "P1")
    page.fill("#esc-reason", "new report")
    page.get_by_role("button", name="Escalate").click()
    page.wait_for_load_state()
    notice = page.get_by_role("status").inner_text()
    assert "escalated to P1" in notice and "repair run" in notice
    assert page.locator("h1 .chip").inner_text() == "P1"

    page.goto(demo.url("/ui/labs/LAB/runs"))
    # the live table follows the repair; its version appears published (P1 repairs publish)
    page.wait_for_selector(
        "#runs-live tbody tr:first-child >> text=/version \\d+/", timeout=REPAIR_SECONDS * 1000
    )
    page.wait_for_selector(
        "#runs-live tbody tr:first-child .chip >> text=published",
        timeout=REPAIR_SECONDS * 1000,
    )
    first = page.locator("#runs-live tbody tr").first.inner_text()
    assert "repair" in first
    page.reload()
    versions_after = set(page.locator("table.versions tbody th").all_inner_texts())
    assert versions_after - versions_before, "no new version"
    _shot(page, "7-runs-after-repair")
    assert page.outside == []


def test_writes_without_the_csrf_token_are_refused(browser, demo):
    page = _signed_in(browser, demo, demo.supervisor)
    page.goto(demo.url("/ui/labs/LAB/backlog?priority=P4"))
    case_ref = page.locator("table.cases tbody a").first.inner_text()
    answer = page.request.post(
        demo.url(f"/ui/labs/LAB/cases/{case_ref}/escalate"), form={"priority": "P1"}
    )
    assert answer.status == 403 and "CSRF" in answer.text()
    forged = page.request.post(
        demo.url(f"/ui/labs/LAB/cases/{case_ref}/escalate"),
        form={"priority": "P1", "csrf": "0" * 64},
    )
    assert forged.status == 403
    page.goto(demo.url(f"/ui/labs/LAB/cases/{case_ref}"))
    assert page.locator("h1 .chip").inner_text() == "P4"  # nothing changed


def test_an_examiner_sees_only_their_own_work(browser, demo):
    page = _signed_in(browser, demo, demo.examiner, start="/ui/")
    assert page.url.endswith(f"/ui/labs/{demo.lab}/me")
    _shot(page, "8-examiner")
    lanes = page.locator("th.lanename .ref").all_inner_texts()
    assert lanes == [demo.examiner_ref]
    assert page.locator("text=Workstations (machine work)").count() == 0
    rows = page.locator("table.heat tbody th").all_inner_texts()
    assert [r.split()[0] for r in rows] == [demo.examiner_ref]
    assert page.locator("nav[aria-label=Pages] a").all_inner_texts() == ["My work"]
    for path in ("/ui/labs/LAB/board", "/ui/labs/LAB/backlog", "/ui/labs/LAB/runs"):
        assert page.goto(demo.url(path)).status == 403
    page.goto(demo.url("/ui/labs/LAB/me"))
    page.get_by_role("button", name="Create my calendar link").click()
    page.wait_for_load_state()
    link = page.locator("#feed-url").input_value()
    assert link.startswith(demo.base + "/feeds/")
    assert page.outside == []


def test_capacity_and_a_what_if_in_the_browser(browser, demo):
    page = _signed_in(browser, demo, demo.supervisor, start="/ui/labs/LAB/capacity")
    assert page.get_by_role("heading", level=1).first.inner_text() == "Capacity"
    sentence = page.locator("p.sentence").inner_text()
    assert sentence.startswith("Bottleneck: AXIOM licences (2) are ")
    assert page.locator("svg.chart").count() == 1
    _shot(page, "5-capacity")

    page.get_by_role("link", name="What-if", exact=True).click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).first.inner_text() == "What-if"
    _shot(page, "6-what-if-form")
    page.fill("input[name=licences_axiom]", "4")
    page.fill("#wi-limit", "5")
    page.get_by_role("button", name="Run the what-if").click()
    page.wait_for_load_state()
    assert re.search(r"/what-if/\d+$", page.url), page.url
    # the live part follows the preview run (the server's embedded worker) to its comparison
    page.wait_for_selector("table.comparison", timeout=REPAIR_SECONDS * 1000)
    rows = page.locator("table.comparison tbody tr").all_inner_texts()
    assert any(r.startswith("Jobs scheduled in the horizon") for r in rows)
    assert page.locator("dl.bottlenecks dd").count() == 2
    _shot(page, "6-what-if")
    assert page.outside == []
