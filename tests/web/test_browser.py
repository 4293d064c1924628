"""The workbench in a real browser: Debian's headless Chromium (driven by Playwright) against
``pathway serve`` on a temporary SQLite store holding the small team of :mod:`tests.web.world`.

One server and one browser for the whole module; each test gets a fresh browser context (its own
cookies). No browser is downloaded: Chromium must be ``/usr/bin/chromium`` (``make test`` installs
Debian's package when it is missing); without it these tests fail, saying so.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from api.main import pathway_config
from pathway.clinical.clock import SystemClock
from pathway.settings import Settings
from pathway.store.db import make_engine, migrate
from rules.evaluation import Evaluator
from tests.web.world import WANG_BP_CLINIC, WANG_BP_HOME, WANG_GLUCOSE, WANG_LDL, World, build_world

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Served:
    base: str
    world: World


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, evaluator: Evaluator) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'pathway.db'}"
    settings = Settings(database_url=url)
    migrate(url)
    port = _free_port()
    log = folder / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "pathway", "serve", "--port", str(port), "--no-scheduler"],
            env={**os.environ, "PATHWAY_DATABASE_URL": url},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        engine = make_engine(url)  # the team is stored while the server starts
        world = build_world(engine, pathway_config(evaluator, settings), SystemClock(settings.tz).now())
        engine.dispose()
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/workbench/login", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "pathway serve did not start:\n" + log.read_text()
                time.sleep(0.1)
        yield Served(base, world)
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium package "
            "(`make test` installs it; or run `apt-get install -y chromium`)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


def _sign_in(page: Page, served: Served, key: str) -> None:
    page.goto(f"{served.base}/workbench/login")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/workbench/teams/\d+/today$"))


def test_todays_list_then_an_outcome_takes_the_item_off_the_list_without_a_reload(
    page: Page, served: Served
) -> None:
    _sign_in(page, served, served.world.keys["team-a"])
    items = page.locator("li.item")
    count = items.count()
    assert count > 0
    expect(page.locator("h1")).to_contain_text("今日任务")
    first = items.first
    task_id = first.get_attribute("data-task")
    page.evaluate("window.__same_document = true")  # lost if the page reloads
    first.locator("details.act-outcome summary").click()
    first.locator("select[name=outcome]").select_option("done")
    first.locator("input[name=note]").fill("已电话随访")
    first.locator("details.act-outcome button[type=submit]").click()
    expect(page.locator(f"#task-{task_id}")).to_have_count(0)
    expect(page.locator("[data-live]")).to_contain_text("已记录结果")
    assert page.evaluate("window.__same_document") is True
    expect(page.locator("li.item")).to_have_count(count - 1)
    expect(page.locator(".count[data-total]")).to_have_attribute("data-total", str(count - 1))
    page.reload()
    expect(page.locator(f"#task-{task_id}")).to_have_count(0)  # gone on the server too


def test_reassigning_updates_the_item_in_place(page: Page, served: Served) -> None:
    _sign_in(page, served, served.world.keys["team-a"])
    item = page.locator("li.item").nth(1)
    item.locator("details.act-reassign summary").click()
    item.locator("input[name=member]").fill("王健康管理师")
    item.locator("details.act-reassign button[type=submit]").click()
    expect(item.locator("[data-assignee]")).to_have_text("王健康管理师")


def test_a_patient_page_draws_one_marker_per_reading(page: Page, served: Served) -> None:
    _sign_in(page, served, served.world.keys["team-a"])
    page.locator("a.patient", has_text="王建国").first.click()
    page.wait_for_url(re.compile(rf".*/workbench/patients/{served.world.patients['A-001']}$"))
    bp = page.locator("svg[data-chart=bp]")
    expect(bp).to_have_attribute("data-points", str(WANG_BP_CLINIC + WANG_BP_HOME))
    expect(bp.locator("circle.sbp")).to_have_count(WANG_BP_CLINIC + WANG_BP_HOME)
    expect(bp.locator("circle.dbp.home")).to_have_count(WANG_BP_HOME)
    expect(page.locator("svg[data-chart=glucose] circle.reading")).to_have_count(WANG_GLUCOSE)
    expect(page.locator("svg[data-chart=ldl] circle.reading")).to_have_count(WANG_LDL)
    assert page.locator("svg[data-chart=tiers] rect.tier-span").count() >= 1
    box = bp.bounding_box()
    assert box is not None
    assert box["width"] > 500  # drawn, at the page's width
    expect(page.locator("[data-section=assessment] .reason-row").first).to_be_visible()


def test_a_prescription_added_on_the_patient_page_is_listed_under_its_group(
    page: Page, served: Served
) -> None:
    _sign_in(page, served, served.world.keys["team-a"])
    page.goto(f"{served.base}/workbench/patients/{served.world.patients['A-002']}")
    block = page.locator("[data-section=medication]")
    expect(block.locator("[data-empty-medication]")).to_be_visible()
    block.locator("details.act summary", has_text="新增处方").click()
    form = block.locator("form[data-form=add]")
    form.locator("select[name=classes]").select_option("arb")
    form.locator("input[name=drug]").fill("缬沙坦胶囊")
    form.locator("input[name=dose]").fill("80 mg qd")
    form.locator("input[name=supply_days]").fill("28")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/patients/\d+\?notice=prescription_added#medication$"))
    expect(page.locator(".notice.ok")).to_contain_text("已新增处方")
    row = page.locator("table[data-group=antihypertensive] tr[data-prescription]", has_text="缬沙坦胶囊")
    expect(row).to_have_attribute("data-days-left", "28")
    expect(row).to_contain_text("ARB（沙坦类）")


def test_another_teams_patient_is_refused(page: Page, served: Served) -> None:
    _sign_in(page, served, served.world.keys["team-a"])
    answer = page.goto(f"{served.base}/workbench/patients/{served.world.patients['B-001']}")
    assert answer is not None
    assert answer.status == 404  # as if the patient did not exist
    assert "赵敏" not in page.content()


def test_the_language_toggle_switches_to_english_and_back(page: Page, served: Served) -> None:
    _sign_in(page, served, served.world.keys["team-a"])
    page.click("[data-lang-toggle]")
    expect(page.locator("h1")).to_contain_text("Today's list")
    page.click("[data-lang-toggle]")
    expect(page.locator("h1")).to_contain_text("今日任务")


def test_without_javascript_the_forms_post_and_come_back(browser: Browser, served: Served) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, java_script_enabled=False)
    page = context.new_page()
    try:
        _sign_in(page, served, served.world.keys["team-a"])
        first = page.locator("li.item").first
        task_id = first.get_attribute("data-task")
        first.locator("details.act-outcome summary").click()
        first.locator("select[name=outcome]").select_option("done")
        first.locator("details.act-outcome button[type=submit]").click()
        page.wait_for_url(re.compile(r".*/today\?notice=outcome$"))
        expect(page.locator(".notice.ok")).to_contain_text("已记录结果")
        expect(page.locator(f"#task-{task_id}")).to_have_count(0)
    finally:
        context.close()


def test_the_api_docs_render_with_no_network_but_this_server(browser: Browser, served: Served) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    outside: list[str] = []

    def local_only(route: Route) -> None:
        if route.request.url.startswith(served.base + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(f"{served.base}/docs")
        expect(page.locator(".opblock").first).to_be_visible()  # the operations, read from /openapi.json
        assert page.locator(".opblock").count() > 20
        page.goto(f"{served.base}/redoc")
        expect(page.get_by_text("Search Patients").first).to_be_attached()  # an operation, drawn
    finally:
        context.close()
    assert outside == []
