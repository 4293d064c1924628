"""``pathway packs impact``: every stored patient under the edition in force (or ``--against``) and
under a candidate pack file, compared; a report on stdout (text or JSON), the changed patients as
CSV, a progress bar on stderr. Nothing is stored."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from pathway.clinical.errors import CandidatePackInvalid, InvalidRulePack
from pathway.editions.replay import Editions


def _editions(raw: bytes, name: str, against: str | None, as_of: datetime, tz_key: str) -> Editions:
    """The run's editions, built in the process that calls it (the CLI's, or a worker's)."""
    from zoneinfo import ZoneInfo

    from api.editions import impact_editions
    from pathway.clinical.clock import clinic_date
    from rules.registry import PackRegistry, parse_pack

    tz = ZoneInfo(tz_key)
    try:
        candidate = parse_pack(raw, Path(name))
    except InvalidRulePack as error:
        raise CandidatePackInvalid(error.detail, "pack") from None
    return impact_editions(PackRegistry.from_directory(), candidate, against, clinic_date(as_of, tz), tz)


def _impact(
    pack_file: Path,
    against: str | None,
    as_of: str | None,
    *,
    form: str = "text",
    csv_path: Path | None = None,
    workers: int | None = None,
    quiet: bool = False,
) -> int:
    from sqlmodel import Session

    from pathway.cli.progress import ProgressBar
    from pathway.cli.serve import _settings
    from pathway.clinical.clock import SystemClock
    from pathway.editions.replay import measure_impact, measure_impact_in_workers
    from pathway.store.db import make_engine

    settings = _settings()
    now = SystemClock(settings.tz).now()
    if as_of is not None:
        try:
            at = datetime.fromisoformat(as_of)
        except ValueError:
            print(f"error: --as-of: not an ISO 8601 time: {as_of!r}", file=sys.stderr)
            return 2
        now = at if at.tzinfo else at.replace(tzinfo=settings.tz)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    if workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    try:
        raw = pack_file.read_bytes()
    except OSError as error:
        print(f"error: --pack: cannot read {pack_file}: {error.strerror}", file=sys.stderr)
        return 2
    factory = partial(_editions, raw, pack_file.name, against, now, settings.tz.key)
    editions = factory()  # validates the pack and the baseline before any patient is read
    progress = ProgressBar(sys.stderr, "patients", quiet=quiet)
    if workers == 1:
        engine = make_engine(settings.database_url)
        try:
            with Session(engine) as session:
                report = measure_impact(session, editions, now, progress=progress)
                session.rollback()
        finally:
            engine.dispose()
    else:
        report = measure_impact_in_workers(settings.database_url, factory, now, workers, progress=progress)
    if csv_path is not None:
        csv_path.write_text(report.csv(), encoding="utf-8")
    data = report.to_json()
    if form == "json":
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(text(data))
    return 0


def text(data: dict[str, Any]) -> str:
    """The report in words: the editions, then overall and per team the counts and matrices."""
    base, cand = data["baseline"], data["candidate"]
    lines = [
        f"impact of {cand['id']} {cand['version']} (sha256 {cand['sha256'][:12]})"
        f" against {base['id']} {base['version']} (sha256 {base['sha256'][:12]}) as of {data['as_of']}",
    ]
    if data["not_yet_born"]:
        lines.append(f"not evaluated (born after as_of): {data['not_yet_born']}")
    lines += _scope("overall", data["overall"])
    for team, tally in data["teams"].items():
        lines += _scope(f"team {team}", tally)
    return "\n".join(lines) + "\n"


def _scope(title: str, tally: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"== {title}: {tally['patients']} patients, {tally['changed']} changed",
        f"   tier {tally['tier_changed']}, level {tally['level_changed']},"
        f" referral {tally['referral_changed']}, follow-up interval {tally['follow_up_changed']}",
    ]
    for part, label in (
        ("tier", "tier"),
        ("level", "level"),
        ("referral", "referral"),
        ("follow_up_days", "follow-up days"),
    ):
        moves = [
            f"{before} → {after}: {n}"
            for before, row in tally[part].items()
            for after, n in row.items()
            if before != after
        ]
        if moves:
            lines.append(f"   {label}: " + ", ".join(moves))
    rules = tally["rules"]
    for heading, names in (("fire more", tally["rules_fire_more"]), ("fire less", tally["rules_fire_less"])):
        if names:
            shown = ", ".join(
                f"{r} {rules[r]['before']}→{rules[r]['after']} ({rules[r]['delta']:+d})" for r in names
            )
            lines.append(f"   rules that {heading}: {shown}")
    for heading, kinds in (("gained", tally["tasks_gained"]), ("lost", tally["tasks_lost"])):
        if kinds:
            lines.append(f"   task kinds {heading}: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    return lines
