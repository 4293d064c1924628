"""The ``pathway`` command: a thin shell over the functions the API and scheduler use.

    pathway evaluate CASE.json                 print the assessment as JSON
    pathway evaluate --check CASE.json ...     compare each case with its expect block
    pathway packs                              list the rule packs and versions loaded
    pathway serve [--host H] [--port P]        apply migrations, serve the HTTP API

Exit codes: 0 ok, 1 a case differs from its expectation, 2 bad input (one line naming the field).
This is the composition root: it builds the registry and the engine, and imports them lazily.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pathway.errors import PathwayError


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
    commands.add_parser("packs", help="list the rule packs and versions loaded")
    serve = commands.add_parser(
        "serve", help="apply migrations and serve the HTTP API (PATHWAY_DATABASE_URL)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    try:
        if args.command == "packs":
            return _packs()
        if args.command == "serve":
            return _serve(args.host, args.port)
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


def _serve(host: str, port: int) -> int:
    import uvicorn

    from api.main import create_app
    from pathway.db import migrate
    from pathway.settings import Settings

    settings = Settings()
    migrate(settings.database_url)
    print(f"pathway: API on http://{host}:{port}/docs (database {settings.database_url})", flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")
    return 0


def _packs() -> int:
    from rules.registry import PackRegistry

    for loaded in PackRegistry.from_directory().all():
        pack = loaded.pack
        counts = f"{len(pack.rules)} rules, {len(pack.schedules)} schedules"
        print(f"{pack.id}\t{pack.version}\teffective {pack.effective_from}\t{counts}\tsha256 {loaded.sha256}")
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
    if not check and len(paths) != 1:
        print("error: evaluate takes one CASE.json (use --check for several)", file=sys.stderr)
        return 2
    failed = 0
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
            print(f"error: {path}: {error}", file=sys.stderr)
            return 2
        result = evaluator.assess(history, case.as_of, pack)
        key = (pack.pack.id, pack.pack.version)
        used[key] = pack
        fired.setdefault(key, set()).update(r.rule_id for r in result.reasons)
        if not check:
            print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
            continue
        if case.expect is None:
            print(f"error: {path}: no expect block to check against", file=sys.stderr)
            return 2
        problems = differences(case.expect, result)
        label = case.name or path.stem
        if problems:
            failed += 1
            print(f"FAIL {path.name}: {label}: {'; '.join(problems)}")
        else:
            print(f"ok   {path.name}: {label}")
    if check:
        print(f"{len(paths) - failed} passed, {failed} failed")
    if check and coverage:
        for key, loaded in used.items():
            never = [rule.id for rule in loaded.pack.rules if rule.id not in fired[key]]
            total = len(loaded.pack.rules)
            print(f"rule coverage {key[0]} {key[1]}: {total - len(never)}/{total} rules fired by these cases")
            for rule_id in never:
                print(f"  never fired: {rule_id}")
            failed += len(never)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
