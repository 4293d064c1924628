"""The ``pathway`` command: a thin shell over the functions the API and scheduler use.

    pathway evaluate CASE.json ...             print each assessment (one file: JSON; several: JSON lines)
    pathway evaluate [--pack ID|FILE.yaml] ... with a built-in pack (default: the case's `pack`, else the
                                               default pack) or an edited pack file
    pathway evaluate --check CASE.json ...     compare each case with its expect block (a bad file is
                                               reported, the rest still checked; exit 2)
    pathway packs                              list the rule packs and versions loaded
    pathway packs describe [--pack ID] [--version V] [--format md|text]   a pack in words (docs/PATHWAY.md)
    pathway packs retier [--workers N] [--batch N] [--quiet]   every patient re-tiered under the pack in force
    pathway packs impact --pack NEW.yaml [--against V] [--as-of T] [--format text|json] [--csv PATH]
                         [--workers N] [--quiet]   every stored patient under the edition in force
                                               (or V) and NEW, compared; nothing stored
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
    pathway webhook-echo [--port P] [--secret S]   a receiver that checks signatures and prints events

Exit codes: 0 ok, 1 a case differs from its expectation, 2 bad input (one line naming the field).
This is the composition root: it builds the registry and the engine, and imports them lazily.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pathway.cli.admin import _create_key, _create_team, _list_keys, _list_teams, _revoke_key
from pathway.cli.demo import _demo
from pathway.cli.evaluate import _evaluate, pack_choice
from pathway.cli.impact import _impact
from pathway.cli.packs import _describe_pack, _packs
from pathway.cli.retier import _retier
from pathway.cli.serve import _scheduler, _serve
from pathway.cli.webhooks import _webhook_echo
from pathway.clinical.errors import PathwayError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pathway", description="三高共管 care-pathway engine")
    commands = parser.add_subparsers(dest="command", required=True)
    evaluate = commands.add_parser("evaluate", help="evaluate case files with the rule engine (no database)")
    evaluate.add_argument("cases", nargs="+", type=Path, metavar="CASE.json")
    evaluate.add_argument(
        "--check", action="store_true", help="compare each result with the case's expect block"
    )
    evaluate.add_argument(
        "--pack",
        metavar="ID|FILE.yaml",
        help="a built-in pack id (default: the pack the case names, else the default pack), or a"
        " rule-pack YAML file to use instead of the built-in packs",
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
    packs_commands = packs.add_subparsers(dest="packs_command")
    describe = packs_commands.add_parser(
        "describe", help="a pack in words: rules, schedules, task catalogue, follow-through (docs/PATHWAY.md)"
    )
    describe.add_argument("--pack", default=None, help="the pack id (default: the default pack)")
    describe.add_argument("--version", default=None, help="the edition (default: the newest)")
    describe.add_argument("--format", choices=["md", "text"], default="md", help="Markdown (default) or text")
    retier = packs_commands.add_parser(
        "retier", help="re-tier every managed patient under the pack in force now (claimed, resumable)"
    )
    retier.add_argument("--workers", type=int, default=2, help="processes (patients split by id; default 2)")
    retier.add_argument(
        "--batch", type=int, default=None, help="patients a transaction (default 500; SQLite 50)"
    )
    retier.add_argument("--quiet", action="store_true", help="no progress on stderr")
    impact = packs_commands.add_parser(
        "impact",
        help="every stored patient under the edition in force and a candidate pack (nothing stored)",
    )
    impact.add_argument(
        "--pack", required=True, type=Path, metavar="NEW.yaml", help="the candidate pack file"
    )
    impact.add_argument(
        "--against", default=None, help="the edition to compare with (default: the one in force)"
    )
    impact.add_argument("--as-of", default=None, help="the moment both evaluate, ISO 8601 (default: now)")
    impact.add_argument("--format", choices=["text", "json"], default="text", help="the report on stdout")
    impact.add_argument(
        "--csv", type=Path, default=None, metavar="PATH", help="the changed patients, one a row"
    )
    impact.add_argument("--workers", type=int, default=None, help="worker processes (default: min(2, CPUs))")
    impact.add_argument("--quiet", action="store_true", help="no progress on stderr")
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
    echo = commands.add_parser(
        "webhook-echo", help="a webhook receiver that checks signatures and prints each event (a demo)"
    )
    echo.add_argument("--host", default="127.0.0.1")
    echo.add_argument("--port", type=int, default=8099)
    echo.add_argument("--secret", help="the subscription's secret (without it, signatures are not checked)")
    args = parser.parse_args(argv)
    try:
        if args.command == "packs" and args.packs_command == "impact":
            return _impact(
                args.pack,
                args.against,
                args.as_of,
                form=args.format,
                csv_path=args.csv,
                workers=args.workers,
                quiet=args.quiet,
            )
        if args.command == "packs" and args.packs_command == "describe":
            return _describe_pack(args.pack, args.version, args.format)
        if args.command == "packs" and args.packs_command == "retier":
            return _retier(args.workers, args.batch, quiet=args.quiet)
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
        if args.command == "webhook-echo":
            return _webhook_echo(args.host, args.port, args.secret)
        if args.command == "scheduler":
            return _scheduler(once=args.once)
        pack_file, pack_id = pack_choice(args.pack)
        return _evaluate(
            args.cases,
            check=args.check,
            pack_file=pack_file,
            version=args.pack_version,
            coverage=args.coverage,
            pack_id=pack_id,
        )
    except PathwayError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
