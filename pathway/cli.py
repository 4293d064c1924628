"""The ``pathway`` command: a thin shell over the functions the API and scheduler use.

    pathway evaluate CASE.json ...             print each assessment (one file: JSON; several: JSON lines)
    pathway evaluate --check CASE.json ...     compare each case with its expect block (a bad file is
                                               reported, the rest still checked; exit 2)
    pathway packs                              list the rule packs and versions loaded
    pathway packs describe [--pack ID] [--version V] [--format md|text]   a pack in words (docs/PATHWAY.md)
    pathway serve [--host H] [--port P] [--workers N] [--no-scheduler]   migrate, serve the API + scheduler
    pathway keys create --role R --name N [--team CODE] [--source-system S]   an API key (its id and the
                                                           key, once)
    pathway keys revoke PREFIX                             revoke a key (servers honour it within
                                                           PATHWAY_KEY_CACHE_SECONDS)
    pathway keys list                                      every key (id, prefix, role, team, name,
                                                           created, revoked; never the key)
    pathway teams create CODE --name N --level L          register a GP team
    pathway teams list                                     every GP team
    pathway scheduler [--once]                 issue tasks: daily 06:00 + hourly runs, catching up missed days
    pathway demo [--patients N] [--seed S] [--as-of T]   load a synthetic county, run a day of scheduling

Exit codes: 0 ok, 1 a case differs from its expectation, 2 bad input (one line naming the field).
This is the composition root: it builds the registry and the engine, and imports them lazily.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pathway.errors import PathwayError

if TYPE_CHECKING:
    from pathway.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pathway", description="三高共管 care-pathway engine")
    commands = parser.add_subparsers(dest="command", required=True)
    evaluate = commands.add_parser("evaluate", help="evaluate case files with the rule engine (no database)")
    evaluate.add_argument("cases", nargs="+", type=Path, metavar="CASE.json")
    evaluate.add_argument(
        "--check", action="store_true", help="compare each result with the case's expect block"
    )
    evaluate.add_argument(
        "--pack", type=Path, help="a rule-pack YAML file to use instead of the built-in packs"
    )
    evaluate.add_argument(
        "--pack-version", help="a built-in pack version (default: the one in force at as_of)"
    )
    evaluate.add_argument(
        "--coverage",
        action="store_true",
        help="with --check: list the pack's rules no case fired (exit 1 if any)",
    )
    packs = commands.add_parser("packs", help="list the rule packs and versions loaded")
    describe = packs.add_subparsers(dest="packs_command").add_parser(
        "describe", help="a pack in words: rules, schedules, task catalogue, follow-through (docs/PATHWAY.md)"
    )
    describe.add_argument("--pack", default=None, help="the pack id (default: the default pack)")
    describe.add_argument("--version", default=None, help="the edition (default: the newest)")
    describe.add_argument("--format", choices=["md", "text"], default="md", help="Markdown (default) or text")
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create_key = keys.add_parser(
        "create", help="create an API key; its id and the key are printed once, on stdout (tab-separated)"
    )
    create_key.add_argument("--role", required=True, choices=["admin", "ehr", "team", "gateway"])
    create_key.add_argument("--name", required=True, help="who holds it (a system, a team, a device gateway)")
    create_key.add_argument("--team", help="team code (required for --role team)")
    create_key.add_argument(
        "--source-system",
        help="the system it posts for: readings and visits are stored under it, and a reading is"
        " identified by (patient, system, source id); give a replacement key the same one"
        " (default: key-<prefix>, the key's own)",
    )
    revoke_key = keys.add_parser("revoke", help="revoke an API key by its prefix (the part after pw_)")
    revoke_key.add_argument("prefix")
    keys.add_parser("list", help="every API key: id, prefix, role, team, name, created, revoked (no secret)")
    teams = commands.add_parser("teams", help="GP teams").add_subparsers(dest="teams_command", required=True)
    create_team = teams.add_parser("create", help="register a GP team (家庭医生团队)")
    create_team.add_argument("code")
    create_team.add_argument("--name", required=True)
    create_team.add_argument("--level", required=True, choices=["home", "base", "center"])
    teams.add_parser("list", help="every GP team: id, code, level, time zone, name")
    serve = commands.add_parser(
        "serve", help="apply migrations and serve the HTTP API (PATHWAY_DATABASE_URL)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=1, help="server processes (PostgreSQL only; SQLite has one writer)"
    )
    serve.add_argument(
        "--no-scheduler",
        action="store_true",
        help="do not run the task scheduler in this process (run `pathway scheduler` instead)",
    )
    scheduler = commands.add_parser(
        "scheduler", help="run the task scheduler as its own process (daily 06:00 and hourly runs)"
    )
    scheduler.add_argument("--once", action="store_true", help="catch up every missed run, then exit")
    demo = commands.add_parser(
        "demo", help="load a synthetic county (teams, patients, histories), run a day of scheduling"
    )
    demo.add_argument("--patients", type=int, default=2000, help="patients in the county (2000)")
    demo.add_argument("--seed", type=int, default=1, help="the county's seed: same seed, same county (1)")
    demo.add_argument("--as-of", help="the demo's now, ISO 8601 (default: the real clock)")
    demo.add_argument(
        "--if-empty", action="store_true", help="only into a store without patients (`make run`: once)"
    )
    demo.add_argument(
        "--base-url", default="http://127.0.0.1:8000", help="where the server will be, for the URLs printed"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "packs" and args.packs_command == "describe":
            return _describe_pack(args.pack, args.version, args.format)
        if args.command == "packs":
            return _packs()
        if args.command == "serve":
            return _serve(args.host, args.port, args.workers, scheduler=not args.no_scheduler)
        if args.command == "keys" and args.keys_command == "revoke":
            return _revoke_key(args.prefix)
        if args.command == "keys" and args.keys_command == "list":
            return _list_keys()
        if args.command == "keys":
            return _create_key(args.role, args.name, args.team, args.source_system)
        if args.command == "teams" and args.teams_command == "list":
            return _list_teams()
        if args.command == "teams":
            return _create_team(args.code, args.name, args.level)
        if args.command == "demo":
            return _demo(args.patients, args.seed, args.as_of, if_empty=args.if_empty, base_url=args.base_url)
        if args.command == "scheduler":
            return _scheduler(once=args.once)
        return _evaluate(
            args.cases,
            check=args.check,
            pack_file=args.pack,
            version=args.pack_version,
            coverage=args.coverage,
        )
    except PathwayError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _settings() -> Settings:
    """The ``PATHWAY_*`` settings, or one line naming the variable that is wrong (BadSetting)."""
    from pathway.settings import Settings, read_settings

    return read_settings(Settings)


def _migrate(url: str) -> None:
    """Bring the store up to date, or one line saying why it cannot be opened (DatabaseUnreachable)."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from pathway.db import migrate, unreachable

    try:
        migrate(url)
    except (SQLAlchemyError, OSError, CommandError) as error:
        raise unreachable(url, error) from None


class CannotListen(PathwayError):
    code = "cannot-listen"


def _check_listen(host: str, port: int) -> None:
    """Fail before anything starts if the server could not listen there (in use, no such address)."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
    except OSError as error:
        reason = error.strerror or str(error)
        where = "--host" if isinstance(error, socket.gaierror) else "--port"
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}", where) from None


def _serve(host: str, port: int, workers: int, *, scheduler: bool = True) -> int:
    """The API, and (unless told not to) the task scheduler in the same process: with several
    workers the scheduler runs once, in the parent; the database makes every run happen once anyway."""
    import uvicorn

    from api.main import create_app
    from api.slow_clients import PROTOCOL, ClientTimeouts, SlowClientProtocol
    from api.web.session import WebSettings
    from pathway.clock import SystemClock
    from pathway.db import shown_url
    from pathway.settings import read_settings
    from scheduler.runner import start_background

    settings = _settings()
    read_settings(WebSettings)  # PATHWAY_WEB_*: a bad value is one line here, not a traceback at start
    read_settings(ClientTimeouts)  # PATHWAY_HEADER_/BODY_TIMEOUT_SECONDS, likewise
    if workers < 1 or (workers > 1 and settings.database_url.startswith("sqlite")):
        print("error: --workers: one process on SQLite (one writer); more need PostgreSQL", file=sys.stderr)
        return 2
    _check_listen(host, port)
    _migrate(settings.database_url)
    _bootstrap_admin_key(settings)
    print(
        f"pathway: API on http://{host}:{port}/docs (database {shown_url(settings.database_url)})", flush=True
    )
    stop_scheduler = start_background(settings, SystemClock(settings.tz)) if scheduler else None
    if stop_scheduler is not None:
        print("pathway: task scheduler running in this process (daily 06:00 and hourly runs)", flush=True)
    log_config = _log_config()
    try:
        if workers == 1:
            app = create_app(settings)
            uvicorn.run(
                app,
                host=host,
                port=port,
                http=SlowClientProtocol,
                log_level="warning",
                log_config=log_config,
                access_log=False,
            )
        else:  # each worker process builds its app from the same PATHWAY_* environment
            uvicorn.run(
                "api.main:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                http=PROTOCOL,  # imported by name in each worker process
                log_level="warning",
                log_config=log_config,
                access_log=False,
            )
    finally:
        if stop_scheduler is not None:
            stop_scheduler()
    return 0


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, plus the access log (``pathway.access``, one line a request) on stdout;
    uvicorn applies it in every worker process."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["pathway"] = {"format": "%(asctime)s %(message)s"}
    config["handlers"]["pathway"] = {
        "class": "logging.StreamHandler",
        "formatter": "pathway",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["pathway.access"] = {"handlers": ["pathway"], "level": "INFO", "propagate": False}
    return config


def _scheduler(*, once: bool) -> int:
    """``pathway scheduler``: the task scheduler in its own process (logs to stderr)."""
    import logging

    from pathway.clock import SystemClock
    from scheduler.runner import run_blocking, run_once

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings()
    _migrate(settings.database_url)
    clock = SystemClock(settings.tz)
    if once:
        for zone, dates in run_once(settings, clock).items():
            print(f"{zone}\t{' '.join(d.isoformat() for d in dates) or '-'}")
        return 0
    run_blocking(settings, clock)
    return 0


def _bootstrap_admin_key(settings: Settings) -> None:
    """On a store without any API key, create one admin key and print it once (first start)."""
    from sqlmodel import Session

    from pathway import access
    from pathway.clock import SystemClock
    from pathway.db import make_engine

    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        if not access.has_any_key(session):
            _key, plaintext = access.create_key(
                session, access.Role.ADMIN, "bootstrap", SystemClock(settings.tz).now()
            )
            session.commit()
            print(f"pathway: first start: admin API key (shown once): {plaintext}", flush=True)
    engine.dispose()


def _create_key(role: str, name: str, team: str | None, source_system: str | None = None) -> int:
    from sqlmodel import Session

    from pathway import access
    from pathway.clock import SystemClock
    from pathway.db import make_engine

    settings = _settings()
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        key, plaintext = access.create_key(
            session,
            access.Role(role),
            name,
            SystemClock(settings.tz).now(),
            team_code=team,
            source_system=source_system,
        )
        session.commit()
        print(
            f"created {role} key #{key.id} ({key.prefix}, source system {key.source_system}) for {name};"
            " store it now, it is not shown again (stdout: the key id, a tab, the key):",
            file=sys.stderr,
        )
    engine.dispose()
    print(f"{key.id}\t{plaintext}")
    return 0


def _list_keys() -> int:
    """``pathway keys list``: one tab-separated line a key, with a header; the secret is never stored."""
    from sqlmodel import Session

    from pathway import access
    from pathway.db import make_engine

    settings = _settings()
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        keys = access.list_keys(session)
    engine.dispose()

    def when(at: datetime | None) -> str:
        return at.astimezone(settings.tz).isoformat(timespec="minutes") if at else "-"

    print("id\tprefix\trole\tteam\tname\tcreated\trevoked")
    for key in keys:
        fields = (key.id, key.prefix, key.role, key.team_code or "-", key.name)
        print("\t".join(str(f) for f in fields) + f"\t{when(key.created_at)}\t{when(key.revoked_at)}")
    return 0


def _list_teams() -> int:
    """``pathway teams list``: one tab-separated line a team, with a header."""
    from sqlmodel import Session

    from pathway import access
    from pathway.db import make_engine

    settings = _settings()
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        teams = access.list_teams(session)
    engine.dispose()
    print("id\tcode\tlevel\ttimezone\tname")
    for team in teams:
        print(f"{team.id}\t{team.code}\t{team.institution_level}\t{team.timezone}\t{team.name}")
    return 0


def _revoke_key(prefix: str) -> int:
    from sqlmodel import Session

    from pathway import access
    from pathway.clock import SystemClock
    from pathway.db import make_engine

    settings = _settings()
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        key = access.revoke_key(
            session, prefix.removeprefix(access.KEY_PREFIX), SystemClock(settings.tz).now()
        )
        session.commit()
        print(f"revoked {key.role} key #{key.id} ({key.prefix}) of {key.name}")
    engine.dispose()
    return 0


def _create_team(code: str, name: str, level: str) -> int:
    from sqlmodel import Session

    from pathway import access
    from pathway.db import make_engine

    settings = _settings()
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        team = access.create_team(session, code, name, level)
        session.commit()
        print(f"team #{team.id} {code} ({level})")
    engine.dispose()
    return 0


def _demo(
    patients: int,
    seed: int,
    as_of: str | None,
    *,
    if_empty: bool = False,
    base_url: str = "http://127.0.0.1:8000",
) -> int:
    """``pathway demo``: a synthetic county (``pathway.demo``) stored through the service layer, a
    chunk of patients per transaction; then the daily issuing run at the demo's now, one team key
    per team and an ehr key, and where to look. Loading the same county again stores nothing new."""
    import itertools
    import time
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sqlalchemy.engine import make_url
    from sqlmodel import Session

    from api.main import pathway_config
    from pathway import access, demo, demo_county, recording, repository, service
    from pathway.clock import Clock, FixedClock, SystemClock
    from pathway.db import make_engine
    from rules.evaluation import Evaluator
    from rules.registry import PackRegistry
    from scheduler import jobs, runner

    settings = _settings()
    clock: Clock = SystemClock(settings.tz)
    if as_of is not None:
        try:
            at = datetime.fromisoformat(as_of)
        except ValueError:
            print(f"error: --as-of: not an ISO 8601 time: {as_of!r}", file=sys.stderr)
            return 2
        clock = FixedClock(at if at.tzinfo else at.replace(tzinfo=settings.tz))
    if patients < 1:
        print("error: --patients must be at least 1", file=sys.stderr)
        return 2
    now, spec, registry = clock.now(), demo_county.load_county(), PackRegistry.from_directory()
    config = pathway_config(Evaluator(registry), settings)
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    if if_empty:
        with Session(engine) as session:
            if repository.has_patients(session):
                print("pathway demo: the store already holds patients; nothing loaded (--if-empty)")
                engine.dispose()
                return 0
    tally = demo.LoadTally()

    def load(session: Session, plan: demo.DemoPatient) -> None:
        patient, created = service.upsert_patient(session, plan.patient, now)
        assert patient.id is not None
        new = 0
        for encounter in plan.encounters:
            new += (
                recording.record_encounter(
                    session, patient, encounter, source_system=plan.source_system, config=config, now=now
                )[1]
                != "duplicate"
            )
        tally.encounters += new
        for system, batch in plan.readings:
            items = recording.record_readings(
                session, patient, batch, source_system=system, config=config, now=now
            )
            for item in items:
                new += item.status == "created"
                tally.readings += item.status == "created"
                tally.duplicates += item.status == "duplicate"
                if item.error is not None:
                    tally.rejected.append(f"{plan.patient.external_id} {system} #{item.index}: {item.error}")
        record = None
        if created or new:  # assessed as the API did: when the last visit was posted, and now
            for moment in plan.assessed_at:
                record = service.reassess(session, patient, config, moment)
                tally.assessments += 1
        else:
            record = repository.latest_assessment(session, patient.id)
        tally.patient(plan, patient.id, created, record.tier if record else None)

    started = time.perf_counter()
    with Session(engine) as session:
        teams = {}
        for team in spec.teams:
            try:
                row = access.team_by_code(session, team.code)
            except access.UnknownTeam:
                row = access.create_team(session, team.code, team.name, team.level)
            assert row.id is not None
            teams[team.code] = (row.id, row.name, row.institution_level)
        session.commit()
    plans = demo.county(spec, patients, seed, now, settings.tz)
    while chunk := list(itertools.islice(plans, 200)):
        with Session(engine) as session:
            for plan in chunk:
                load(session, plan)
            session.commit()
    loaded = time.perf_counter() - started
    print(
        f"pathway demo: {tally.patients:,} patients ({tally.created:,} new) in {len(teams)} teams loaded in "
        f"{loaded:.1f} s: {tally.encounters:,} new visits, {tally.readings:,} new readings "
        f"({tally.duplicates:,} already stored, {len(tally.rejected)} rejected), "
        f"{tally.assessments:,} assessments (as of {now.isoformat(timespec='minutes')})"
    )
    for line in tally.rejected[:10]:
        print(f"  rejected: {line}", file=sys.stderr)
    print("tiers: " + ", ".join(f"{tier} {tally.tiers[tier]:,}" for tier in ("red", "yellow", "blue")))
    print("special histories: " + ", ".join(f"{k} {n}" for k, n in sorted(tally.scenarios.items())))

    ctx = runner.context(settings, clock, registry)
    try:
        for zone in jobs.zones(ctx):
            day = now.astimezone(ZoneInfo(zone)).date()
            report = jobs.run_daily(ctx, zone, day)
            done = ", ".join(f"{k} {v:,}" for k, v in report.as_dict().items()) if report else "already done"
            print(f"daily issuing run {day.isoformat()} ({zone}): {done}")
    finally:
        ctx.engine.dispose()

    with Session(engine) as session:
        ehr_key = access.create_key(session, access.Role.EHR, "demo ehr", now)[1]
        keys = []
        for code, (team_id, name, level) in teams.items():
            key = access.create_key(session, access.Role.TEAM, f"demo {code}", now, team_code=code)[1]
            keys.append(demo.TeamKey(team_id, code, name, level, tally.teams[code], key))
        session.commit()
    engine.dispose()
    print()
    for line in demo.where_to_look(
        base_url=base_url.rstrip("/"),
        database_url=make_url(settings.database_url).render_as_string(hide_password=True),
        today=now.astimezone(settings.tz).date(),
        teams=keys,
        ehr_key=ehr_key,
        red_patient=tally.red_patient,
    ):
        print(line)
    return 1 if tally.rejected else 0


def _packs() -> int:
    from rules.registry import PackRegistry

    for loaded in PackRegistry.from_directory().all():
        pack = loaded.pack
        counts = f"{len(pack.rules)} rules, {len(pack.schedules)} schedules"
        print(f"{pack.id}\t{pack.version}\teffective {pack.effective_from}\t{counts}\tsha256 {loaded.sha256}")
    return 0


def _describe_pack(pack_id: str | None, version: str | None, form: str) -> int:
    """``pathway packs describe``: the pack in words, on stdout (``--format md``: docs/PATHWAY.md)."""
    from rules import describe
    from rules.registry import DEFAULT_PACK_ID, PackRegistry

    loaded = PackRegistry.from_directory().get(pack_id or DEFAULT_PACK_ID, version)
    sys.stdout.write(describe.markdown(loaded) if form == "md" else describe.text(loaded))
    return 0


def _evaluate(
    paths: list[Path], *, check: bool, pack_file: Path | None, version: str | None, coverage: bool = False
) -> int:
    from pathway.cases import case_history, differences, read_case
    from pathway.clock import clinic_date
    from rules.evaluation import Evaluator
    from rules.registry import DEFAULT_PACK_ID, LoadedPack, PackRegistry, load_pack

    registry = PackRegistry([load_pack(pack_file)]) if pack_file else PackRegistry.from_directory()
    evaluator = Evaluator(registry)
    failed = bad = 0
    fired: dict[tuple[str, str], set[str]] = {}
    used: dict[tuple[str, str], LoadedPack] = {}
    for path in paths:
        try:
            case = read_case(path)
            if pack_file is not None:
                pack = registry.all()[0]
            elif version is not None:
                pack = registry.get(DEFAULT_PACK_ID, version)
            else:
                pack = registry.in_force(DEFAULT_PACK_ID, on=clinic_date(case.as_of))
            history = case_history(case, pack.pack.units, pack.pack.plausibility)
        except PathwayError as error:
            # A bad file is reported and the others are still evaluated; the exit status is 2.
            print(f"error: {path}: {error}", file=sys.stderr)
            if check:
                print(f"BAD  {path.name}: {error}")
            bad += 1
            continue
        result = evaluator.assess(history, case.as_of, pack)
        key = (pack.pack.id, pack.pack.version)
        used[key] = pack
        fired.setdefault(key, set()).update(r.rule_id for r in result.reasons)
        if not check:
            # One file: the assessment as readable JSON; several: one JSON line each, in order.
            indent = 2 if len(paths) == 1 else None
            print(json.dumps(result.to_json(), ensure_ascii=False, indent=indent))
            continue
        if case.expect is None:
            print(f"error: {path}: no expect block to check against", file=sys.stderr)
            print(f"BAD  {path.name}: no expect block to check against")
            bad += 1
            continue
        problems = differences(case.expect, result)
        label = case.name or path.stem
        if problems:
            failed += 1
            print(f"FAIL {path.name}: {label}: {'; '.join(problems)}")
        else:
            print(f"ok   {path.name}: {label}")
    if check:
        print(f"{len(paths) - failed - bad} passed, {failed} failed, {bad} bad")
    if check and coverage:
        for key, loaded in used.items():
            never = [rule.id for rule in loaded.pack.rules if rule.id not in fired[key]]
            total = len(loaded.pack.rules)
            print(f"rule coverage {key[0]} {key[1]}: {total - len(never)}/{total} rules fired by these cases")
            for rule_id in never:
                print(f"  never fired: {rule_id}")
            failed += len(never)
    return 2 if bad else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
