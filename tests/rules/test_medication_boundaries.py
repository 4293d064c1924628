"""The §7 medication rules at their boundaries (PATHWAY.md §7), as in test_rule_boundaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from pathway.clinical.history import Encounter, PatientHistory
from pathway.clinical.medication import Adherence, MedicationClass, Prescription
from pathway.clinical.tiers import TaskKind
from pathway.clinical.vocabulary import Complication, Condition, ReadingKind
from tests.builders import AS_OF, bp, days_before, history, lab, patient, visit
from tests.conftest import Pathway
from tests.rules.test_rule_boundaries import _family

C = MedicationClass
HTN, DM, DYS = Condition.HYPERTENSION, Condition.DIABETES, Condition.DYSLIPIDEMIA
TODAY = AS_OF.date()
MED = _family(
    "med.adverse.persistent",
    "med.bp.resistant",
    "med.adverse",
    "med.adherence.poor",
    "med.bp.intensify",
    "med.glu.intensify",
    "med.statin.indicated",
    "med.lipid.intensify",
    "med.supply.lapsed",
)


def _rx(*classes: C, started: date = date(2026, 1, 1), days: int = 84, **extra: object) -> Prescription:
    return Prescription(classes=classes, drug="药", started_on=started, supply_days=days, **extra)  # type: ignore[arg-type]


def _case(
    *conditions: Condition,
    rx: tuple[Prescription, ...] = (),
    visits: tuple[Encounter, ...] | None = None,
    readings: tuple[object, ...] = (),
    **profile: object,
) -> PatientHistory:
    encounters = visits if visits is not None else (visit(days_before(4), bp(130, 80)),)
    base = history(patient(*conditions, age=55, **profile), encounters=encounters, readings=readings)  # type: ignore[arg-type]
    return replace(base, prescriptions=rx)


def _up(adherence: Adherence | None = None) -> tuple[Encounter, ...]:
    return (replace(visit(days_before(4), bp(150, 95)), adherence=adherence),)


def _ended(days_ago: int) -> Prescription:
    return _rx(C.CCB, started=TODAY - timedelta(days=60 + days_ago), days=60)


LDL_AT = {41: days_before(18), 42: days_before(17)}  # the statin run began 2026-01-01


CASES = [
    pytest.param(_case(HTN, visits=_up()), set(), id="unknown-medication-no-intensify"),
    pytest.param(_case(HTN, rx=(_rx(C.CCB), _rx(C.ARB)), visits=_up()), {"med.bp.intensify"}, id="2-classes"),
    pytest.param(
        _case(HTN, rx=(_rx(C.CCB), _rx(C.ARB), _rx(C.BETA_BLOCKER)), visits=_up()), set(), id="3-no-diuretic"
    ),
    pytest.param(
        _case(HTN, rx=(_rx(C.CCB), _rx(C.ARB, C.THIAZIDE)), visits=_up()),
        {"med.bp.resistant"},
        id="combination-makes-3-with-diuretic",
    ),
    pytest.param(
        _case(HTN, rx=(_rx(C.CCB),), visits=_up(adherence=Adherence.NONE)),
        {"med.adherence.poor"},
        id="adherence-none",
    ),
    pytest.param(
        _case(HTN, rx=(_rx(C.CCB),), visits=_up(adherence=Adherence.REGULAR)),
        {"med.bp.intensify"},
        id="adherence-regular",
    ),
    pytest.param(_case(HTN, rx=(_ended(30),)), {"med.supply.lapsed"}, id="lapsed-30"),
    pytest.param(_case(HTN, rx=(_ended(31),)), set(), id="lapsed-31"),
    pytest.param(_case(HTN, rx=(_ended(0),)), set(), id="ends-today-is-not-lapsed"),
    pytest.param(
        _case(
            HTN,
            rx=(_rx(C.CCB),),
            visits=(replace(visit(days_before(4), bp(130, 80)), adverse_reaction=True),),
        ),
        {"med.adverse"},
        id="adverse-1",
    ),
    pytest.param(
        _case(
            HTN,
            rx=(_rx(C.CCB),),
            visits=(
                replace(visit(days_before(40), bp(130, 80)), adverse_reaction=True),
                visit(days_before(20), bp(130, 80)),
                replace(visit(days_before(4), bp(130, 80)), adverse_reaction=True),
            ),
        ),
        {"med.adverse.persistent"},
        id="adverse-2-across-a-visit-that-did-not-ask",
    ),
    pytest.param(
        _case(HTN, rx=(_rx(C.CCB),), complications=((Complication.CHD, date(2020, 1, 1)),)),
        {"med.statin.indicated"},
        id="ascvd-no-statin",
    ),
    pytest.param(
        _case(HTN, DYS, rx=(_rx(C.STATIN, days=90),), readings=(lab(ReadingKind.LDL_C, 3.5, LDL_AT[42]),)),
        {"med.lipid.intensify"},
        id="ldl-42-days-into-statin",
    ),
    pytest.param(
        _case(HTN, DYS, rx=(_rx(C.STATIN, days=90),), readings=(lab(ReadingKind.LDL_C, 3.5, LDL_AT[41]),)),
        set(),
        id="ldl-41-days-into-statin",
    ),
    pytest.param(
        _case(
            DM,
            rx=(_rx(C.METFORMIN),),
            visits=(visit(days_before(4), *()),),
            readings=(lab(ReadingKind.HBA1C, 7.0, days_before(30)),),
        ),
        {"med.glu.intensify"},
        id="hba1c-7-0-on-1-class",
    ),
    pytest.param(
        _case(
            DM,
            rx=(_rx(C.METFORMIN), _rx(C.INSULIN)),
            readings=(lab(ReadingKind.HBA1C, 7.0, days_before(30)),),
        ),
        set(),
        id="hba1c-7-0-on-insulin",
    ),
]


@pytest.mark.parametrize(("case", "expected"), CASES)
def test_medication_rules_at_their_boundaries(
    pathway: Pathway, case: PatientHistory, expected: set[str]
) -> None:
    assert pathway.fired(case) & MED == expected


def test_refill_review_is_due_7_days_before_supply_end_one_per_prescription(pathway: Pathway) -> None:
    rx = (_rx(C.CCB, days=73, source_id="a"), _rx(C.ARB, days=80, source_id="b"), _rx(C.STATIN, days=71))
    tasks = [t for t in pathway.assess(_case(HTN, rx=rx)).tasks if t.kind is TaskKind.REFILL_REVIEW]
    assert [(t.subject, t.due.date()) for t in tasks] == [
        ("药@2026-01-01", date(2026, 3, 6)),
        ("a", date(2026, 3, 8)),
    ]
    assert all(t.priority == 4 and t.role.value == "health_manager" for t in tasks)
    assert tasks[1].evidence == ["refill:a"]


def test_medication_review_due_and_evidence_follow_the_rule(pathway: Pathway) -> None:
    assessment = pathway.assess(_case(HTN, rx=(_rx(C.CCB),), visits=_up()))
    [review] = [t for t in assessment.tasks if t.kind is TaskKind.MEDICATION_REVIEW]
    assert review.due == days_before(4) + timedelta(days=14)
    assert review.evidence == ["prescription:antihypertensive"]
    assert assessment.evidence["prescription:antihypertensive"].date() == date(2026, 1, 1)


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"classes": ["aspirin"]}, "prescriptions.0.classes.0"),
        ({"atc": "B01AC06"}, "prescriptions.0.atc"),
        ({"classes": ["ccb"], "supply_days": 0}, "prescriptions.0.supply_days"),
        ({"classes": ["ccb"], "supply_days": 366}, "prescriptions.0.supply_days"),
        ({"classes": ["ccb"], "stopped_on": "2025-12-31"}, "prescriptions.0.stopped_on"),
        ({"classes": ["ccb"], "started_on": "2026-03-02"}, "prescriptions.0.started_on"),
        ({}, "prescriptions.0.classes"),
    ],
)
def test_a_bad_prescription_in_a_case_names_its_field(
    tmp_path: object, default_pack: object, item: dict[str, object], field: str
) -> None:
    import json
    from pathlib import Path

    from pathway.clinical.errors import InvalidInput
    from pathway.ingest.cases import case_history, read_case

    data = {
        "as_of": "2026-03-01T09:00:00+08:00",
        "patient": {"sex": "male", "birth_date": "1970-01-01", "conditions": ["hypertension"]},
        "prescriptions": [{"drug": "药", "started_on": "2026-01-01", "supply_days": 30, **item}],
    }
    path = Path(str(tmp_path)) / "case.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    pack = default_pack.pack  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput) as error:
        case_history(read_case(path), pack.units, pack.plausibility, pack.medication)
    assert error.value.field == field
