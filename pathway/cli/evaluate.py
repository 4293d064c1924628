"""``pathway evaluate``: case files through the rule engine (no database); ``--check`` compares each
with its expect block, ``--coverage`` lists the rules no case fired."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pathway.clinical.errors import PathwayError


def pack_choice(value: str | None) -> tuple[Path | None, str | None]:
    """``--pack``: a rule-pack file (``*.yaml``, or any existing file) or a built-in pack id."""
    if value is None:
        return None, None
    path = Path(value)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return path, None
    return None, value


def _evaluate(
    paths: list[Path],
    *,
    check: bool,
    pack_file: Path | None,
    version: str | None,
    coverage: bool = False,
    pack_id: str | None = None,
) -> int:
    from pathway.clinical.clock import clinic_date
    from pathway.ingest.cases import case_history, differences, read_case
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
            # The pack: a file given, else the id given, else the one the case names, else the default.
            chosen = pack_id or case.pack or DEFAULT_PACK_ID
            if pack_file is not None:
                pack = registry.all()[0]
            elif version is not None:
                pack = registry.get(chosen, version)
            else:
                pack = registry.in_force(chosen, on=clinic_date(case.as_of))
            history = case_history(case, pack.pack.units, pack.pack.plausibility, pack.pack.medication)
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
