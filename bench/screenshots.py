"""Screenshots of the workbench's three pages at 1366×768, for a reviewer to look at.

    python -m bench.screenshots [--out DIR] [--patients 300] [--database URL --team CODE --key KEY]

By default: a fresh SQLite store in a temporary directory, a synthetic team of ``--patients``
patients with a year of care (:mod:`bench.workbench_seed`, up to the real clock's now) and a small
second team; ``pathway serve`` on it (a subprocess, a free port on 127.0.0.1); Debian's headless
Chromium (``/usr/bin/chromium``, driven by Playwright; no browser is ever downloaded) signs in with
a team key and saves, in Chinese and in English:

- ``today[-en].png`` — 今日任务, the team's daily list;
- ``patient[-en].png`` — the patient page of the first red-tier patient on the list with readings;
- ``dashboard[-en].png`` — the team dashboard (once its indicators are computed);
- ``contact[-en].png`` — 失访管理, the team's patients without contact;
- ``patients[-en].png`` — 患者, the team's patients with the search box;

each as the 1366×768 viewport and as the whole page (``*-full.png``). With ``--database`` the
pages of an existing store are shot instead (``--team`` and a team ``--key`` of it required).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

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
WIDTH, HEIGHT = 1366, 768


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(database_url: str, log: Path) -> Iterator[str]:
    """``pathway serve`` on the store (no scheduler: the pictures should not move); its base URL."""
    port = free_port()
    env = {**os.environ, "PATHWAY_DATABASE_URL": database_url}
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "pathway", "serve", "--port", str(port), "--no-scheduler"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/workbench/login", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pathway serve did not start:\n{log.read_text()}") from None
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def _seed(database_url: str, patients: int) -> tuple[int, str]:
    """A synthetic team (and a small second one) up to now; (team id, a team key)."""
    from sqlmodel import Session

    from api.main import pathway_config
    from bench.workbench_seed import seed_team
    from pathway.access import permissions
    from pathway.clinical.clock import SystemClock
    from pathway.settings import Settings
    from pathway.store.db import make_engine, migrate
    from rules.evaluation import Evaluator
    from rules.registry import PackRegistry

    settings = Settings(database_url=database_url)
    migrate(database_url)
    engine = make_engine(database_url)
    config = pathway_config(Evaluator(PackRegistry.from_directory()), settings)
    now = SystemClock(settings.tz).now()
    started = time.perf_counter()
    team = seed_team(engine, config, code="jimo-01", name="即墨 家庭医生团队 1", patients=patients, now=now)
    seed_team(engine, config, code="jimo-02", name="即墨 家庭医生团队 2", patients=12, now=now, seed=2)
    print(f"seeded {patients + 12} patients in {time.perf_counter() - started:.1f} s")
    with Session(engine) as session:
        _key, plaintext = permissions.create_key(
            session, permissions.Role.TEAM, "团队1 工作站", now, team_code="jimo-01"
        )
        session.commit()
    engine.dispose()
    return team.team_id, plaintext


def _save(page: Page, out: Path, name: str) -> list[Path]:
    """The viewport (``NAME.png``) and the whole page (``NAME-full.png``)."""
    paths = [out / f"{name}.png", out / f"{name}-full.png"]
    page.screenshot(path=str(paths[0]))
    page.screenshot(path=str(paths[1]), full_page=True)
    return paths


def shoot(base: str, team_id: int, key: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium (or `make test`, which does)")
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for lang in ("zh", "en"):
                context = browser.new_context(
                    viewport={"width": WIDTH, "height": HEIGHT}, locale="zh-CN" if lang == "zh" else "en-US"
                )
                page = context.new_page()
                page.goto(f"{base}/workbench/login?lang={lang}")
                page.fill("#api_key", key)
                page.click("button[type=submit]")
                page.wait_for_url(re.compile(r".*/today.*"))
                suffix = "" if lang == "zh" else "-en"

                saved += _save(page, out, f"today{suffix}")
                patient = page.locator(".patient-card.tier-red a.patient").first
                if patient.count() == 0:
                    patient = page.locator(".patient-card a.patient").first
                patient.click()
                page.wait_for_selector("svg[data-chart=bp]")
                saved += _save(page, out, f"patient{suffix}")
                page.goto(f"{base}/workbench/teams/{team_id}/dashboard")
                # Until the indicators are computed the page refreshes itself every second.
                page.wait_for_selector("[data-as-of]", timeout=180_000)
                saved += _save(page, out, f"dashboard{suffix}")
                page.goto(f"{base}/workbench/teams/{team_id}/contact")
                saved += _save(page, out, f"contact{suffix}")
                page.goto(f"{base}/workbench/teams/{team_id}/patients")
                saved += _save(page, out, f"patients{suffix}")
                context.close()
        finally:
            browser.close()
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="where the PNGs go")
    parser.add_argument("--patients", type=int, default=300, help="patients of the synthetic team")
    parser.add_argument("--database", help="shoot an existing store instead (needs --team and --key)")
    parser.add_argument("--team", type=int, help="the team id to shoot (with --database)")
    parser.add_argument("--key", help="a team key of that team (with --database)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pathway-screens-") as tmp:
        if args.database:
            if args.team is None or not args.key:
                parser.error("--database needs --team and --key")
            url, team_id, key = args.database, args.team, args.key
        else:
            url = f"sqlite:///{Path(tmp) / 'pathway.db'}"
            team_id, key = _seed(url, args.patients)
        with serve(url, Path(tmp) / "serve.log") as base:
            started = datetime.now()
            saved = shoot(base, team_id, key, args.out)
    print(f"{len(saved)} screenshots in {args.out}/ ({(datetime.now() - started).total_seconds():.1f} s):")
    for path in saved:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
