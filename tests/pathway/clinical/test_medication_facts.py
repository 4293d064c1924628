"""The §7 derived facts (pathway/clinical/medication_facts.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from pathway.clinical.clock import CLINIC_TZ
from pathway.clinical.history import Encounter
from pathway.clinical.medication import Adherence, MedicationClass, Prescription
from pathway.clinical.medication_facts import medication_facts
from pathway.clinical.vocabulary import Condition
from rules.registry import LoadedPack
from tests.builders import AS_OF

C = MedicationClass
TODAY = AS_OF.astimezone(CLINIC_TZ).date()


def _rx(*classes: C, started: date, days: int, **extra: object) -> Prescription:
    return Prescription(classes=classes, drug="药", started_on=started, supply_days=days, **extra)  # type: ignore[arg-type]


def _facts(
    default_pack: LoadedPack, rx: tuple[Prescription, ...], visits: tuple[Encounter, ...] = ()
) -> dict[str, object]:
    table = default_pack.pack.medication
    assert table is not None
    return dict(
        medication_facts(rx, visits, table, frozenset({Condition.HYPERTENSION}), None, AS_OF, CLINIC_TZ).facts
    )


def test_no_medication_data_is_unknown_and_has_no_class_facts(default_pack: LoadedPack) -> None:
    assert _facts(default_pack, ()) == {"medication_known": False}


def test_a_review_in_365_days_makes_it_known_with_zero_classes(default_pack: LoadedPack) -> None:
    reviewed = Encounter(at=AS_OF - timedelta(days=365), medications_reviewed=True)
    facts = _facts(default_pack, (), (reviewed,))
    assert facts["medication_known"] is True
    assert facts["antihypertensive_classes"] == 0
    older = Encounter(at=AS_OF - timedelta(days=366), medications_reviewed=True)
    assert _facts(default_pack, (), (older,))["medication_known"] is False


def test_a_prescription_recorded_after_as_of_is_not_seen(default_pack: LoadedPack) -> None:
    later = _rx(C.CCB, started=TODAY, days=30, recorded_at=AS_OF + timedelta(minutes=1))
    assert _facts(default_pack, (later,)) == {"medication_known": False}


@pytest.mark.parametrize(("gap", "days"), [(30, 120), (31, 59)])
def test_a_gap_over_30_days_breaks_the_statin_run(default_pack: LoadedPack, gap: int, days: int) -> None:
    first = _rx(C.STATIN, started=TODAY - timedelta(days=120), days=120 - 59 - gap)
    second = _rx(C.STATIN, started=TODAY - timedelta(days=59), days=90)
    facts = _facts(default_pack, (first, second))
    assert facts["on_statin"] is True
    assert facts["statin_days"] == days


def test_adherence_and_adverse_run(default_pack: LoadedPack) -> None:
    visits = (
        Encounter(at=AS_OF - timedelta(days=50), adverse_reaction=True, adherence=Adherence.NONE),
        Encounter(at=AS_OF - timedelta(days=20)),
        Encounter(at=AS_OF - timedelta(days=5), adverse_reaction=True),
    )
    facts = _facts(default_pack, (), visits)
    assert facts["adverse_reaction_run"] == 2
    assert facts["latest_adherence"] == "none"
    assert "latest_adherence" not in _facts(
        default_pack, (), (Encounter(at=AS_OF - timedelta(days=91), adherence=Adherence.NONE),)
    )


def test_combination_counts_each_class_and_diuretic(default_pack: LoadedPack) -> None:
    facts = _facts(default_pack, (_rx(C.ARB, C.THIAZIDE, started=TODAY - timedelta(days=10), days=30),))
    assert facts["antihypertensive_classes"] == 2
    assert facts["on_diuretic"] is True


def test_now_is_after_the_clinic_day_start() -> None:
    assert datetime.combine(TODAY, datetime.min.time(), tzinfo=CLINIC_TZ) <= AS_OF
