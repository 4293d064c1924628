"""``pathway demo``: load the synthetic county (:mod:`pathway.demo`) and run a day of scheduling."""

from __future__ import annotations

import sys

from pathway.cli.serve import _migrate, _settings


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
    from pathway.access import permissions
    from pathway.clinical.clock import Clock, FixedClock, SystemClock
    from pathway.demo.county import LoadTally, TeamKey, county, where_to_look
    from pathway.demo.patient_plan import DemoPatient
    from pathway.demo.spec import load_county
    from pathway.ingest import prescribing, recording
    from pathway.patients import patient_store, reassessment, registration
    from pathway.store.db import make_engine
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
    now, spec, registry = clock.now(), load_county(), PackRegistry.from_directory()
    config = pathway_config(Evaluator(registry), settings)
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    if if_empty:
        with Session(engine) as session:
            if patient_store.has_patients(session):
                print("pathway demo: the store already holds patients; nothing loaded (--if-empty)")
                engine.dispose()
                return 0
    tally = LoadTally()

    def load(session: Session, plan: DemoPatient) -> None:
        patient, created = registration.upsert_patient(session, plan.patient, now)
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
        for posted, prescriptions in plan.prescriptions:  # as the EHR posted them, renewal by renewal
            results = prescribing.record_prescriptions(
                session, patient, prescriptions, source_system=plan.source_system, config=config, now=posted
            )
            for result in results:
                stored = result.status in ("created", "updated")
                new += stored
                tally.prescriptions += stored
                if result.error is not None:
                    tally.rejected.append(f"{plan.patient.external_id} rx #{result.index}: {result.error}")
        record = None
        if created or new:  # assessed as the API did: when the last visit was posted, and now
            for moment in plan.assessed_at:
                record = reassessment.reassess(session, patient, config, moment)
                tally.assessments += 1
        else:
            record = patient_store.latest_assessment(session, patient.id)
        tally.patient(plan, patient.id, created, record.tier if record else None)

    started = time.perf_counter()
    with Session(engine) as session:
        teams = {}
        for team in spec.teams:
            try:
                row = permissions.team_by_code(session, team.code)
            except permissions.UnknownTeam:
                row = permissions.create_team(session, team.code, team.name, team.level)
            assert row.id is not None
            teams[team.code] = (row.id, row.name, row.institution_level)
        session.commit()
    plans = county(spec, patients, seed, now, settings.tz)
    while chunk := list(itertools.islice(plans, 200)):
        with Session(engine) as session:
            for plan in chunk:
                load(session, plan)
            session.commit()
    loaded = time.perf_counter() - started
    print(
        f"pathway demo: {tally.patients:,} patients ({tally.created:,} new) in {len(teams)} teams loaded in "
        f"{loaded:.1f} s: {tally.encounters:,} new visits, {tally.readings:,} new readings, "
        f"{tally.prescriptions:,} new prescriptions "
        f"({tally.duplicates:,} readings already stored, {len(tally.rejected)} rejected), "
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
        ehr_key = permissions.create_key(session, permissions.Role.EHR, "demo ehr", now)[1]
        keys = []
        for code, (team_id, name, level) in teams.items():
            key = permissions.create_key(session, permissions.Role.TEAM, f"demo {code}", now, team_code=code)[
                1
            ]
            keys.append(TeamKey(team_id, code, name, level, tally.teams[code], key))
        session.commit()
    engine.dispose()
    print()
    for line in where_to_look(
        base_url=base_url.rstrip("/"),
        database_url=make_url(settings.database_url).render_as_string(hide_password=True),
        today=now.astimezone(settings.tz).date(),
        teams=keys,
        ehr_key=ehr_key,
        red_patient=tally.red_patient,
    ):
        print(line)
    return 1 if tally.rejected else 0
