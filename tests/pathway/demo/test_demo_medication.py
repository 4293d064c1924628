"""`pathway demo` with medication (PATHWAY.md §7): a small county stores prescriptions, every med.*
rule of the pack fires for some patient, the four medication task kinds reach a team's daily list,
and loading it again stores nothing new."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from pathway.cli import main
from pathway.clinical.clock import CLINIC_TZ
from pathway.demo.county import county
from pathway.demo.spec import load_county
from pathway.store.db import make_engine
from pathway.store.tables import AssessmentRecord, PrescriptionRecord
from pathway.store.work_tables import CareTask
from rules.registry import PackRegistry
from tests.builders import AS_OF

PATIENTS = 160
ARGS = ["demo", "--patients", str(PATIENTS), "--seed", "7", "--as-of", AS_OF.isoformat()]
MEDICATION_TASKS = {"medication_review", "adherence_support", "statin_start", "refill_review"}


def _pack_medication_rules() -> set[str]:
    pack = PackRegistry.from_directory().get().pack
    return {rule.id for rule in pack.rules if rule.id.startswith("med.")}


def test_a_small_county_fires_every_medication_rule_and_reloads_as_a_no_op(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATHWAY_DATABASE_URL", sqlite_url)
    assert main(ARGS) == 0
    assert "0 rejected" in capsys.readouterr().out

    engine = make_engine(sqlite_url)
    with Session(engine) as session:
        newest = select(func.max(col(AssessmentRecord.id))).group_by(col(AssessmentRecord.patient_id))
        fired: Counter[str] = Counter()
        for record in session.scalars(select(AssessmentRecord).where(col(AssessmentRecord.id).in_(newest))):
            fired.update(r["rule_id"] for r in record.result["reasons"])
        prescriptions = session.scalars(select(PrescriptionRecord)).all()
        listed = {
            task.kind
            for task in session.scalars(
                select(CareTask).where(col(CareTask.status) == "open", col(CareTask.due_date) <= AS_OF.date())
            )
        }
    engine.dispose()
    medication_rules = _pack_medication_rules()
    assert len(medication_rules) == 9
    assert {rule for rule in fired if rule in medication_rules} == medication_rules
    assert prescriptions
    assert any(len(p.classes) > 1 for p in prescriptions)  # a single-pill combination
    assert any(p.supply_days >= 60 for p in prescriptions)  # 长处方
    assert listed >= MEDICATION_TASKS  # after the daily run, on the day's list

    assert main(ARGS) == 0
    again = capsys.readouterr().out
    assert "0 new visits, 0 new readings, 0 new prescriptions" in again
    engine = make_engine(sqlite_url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(PrescriptionRecord)) == len(prescriptions)
    engine.dispose()


def test_medication_is_drawn_per_patient_and_renewals_are_new_prescriptions() -> None:
    spec = load_county()
    small = list(county(spec, 20, 7, AS_OF, CLINIC_TZ))
    assert small == list(county(spec, 30, 7, AS_OF, CLINIC_TZ))[:20]
    today = AS_OF.astimezone(CLINIC_TZ).date()
    answers = set()
    for plan in small:
        ids = [p.source_prescription_id for _, batch in plan.prescriptions for p in batch]
        assert len(ids) == len(set(ids))  # a renewal is a new prescription, not a new version of one
        for posted, batch in plan.prescriptions:
            assert posted <= AS_OF
            assert all(p.started_on == posted.astimezone(CLINIC_TZ).date() <= today for p in batch)
        answers |= {e.adherence for e in plan.encounters}
        assert all(e.at <= AS_OF for e in plan.encounters)
    assert {"regular", "intermittent", None} <= answers
