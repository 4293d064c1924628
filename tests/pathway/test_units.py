"""Unit conversion and plausibility (PATHWAY.md §1) with the default pack's tables.

Values are given as strings so every number is the exact Decimal a client would send.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from pathway.clinical.errors import FutureTimestamp, ImplausibleValue, InvalidInput, UnknownUnit
from pathway.clinical.history import Measurement, measure
from pathway.clinical.units import check_plausible, to_canonical
from pathway.clinical.vocabulary import ReadingKind, ReadingSource
from rules.registry import LoadedPack
from tests.builders import AS_OF

K = ReadingKind
PREFIX = "readings.0"


def _reading(
    pack: LoadedPack,
    kind: ReadingKind,
    *,
    value: str | None = None,
    systolic: str | None = None,
    diastolic: str | None = None,
    unit: str | None = None,
    at: datetime = AS_OF,
    received_at: datetime | None = AS_OF,
) -> Measurement:
    """``measure`` with the default pack's tables, as the first reading of a request."""
    return measure(
        kind=kind,
        source=ReadingSource.HOME,
        at=at,
        unit=unit,
        value=None if value is None else Decimal(value),
        systolic=None if systolic is None else Decimal(systolic),
        diastolic=None if diastolic is None else Decimal(diastolic),
        units=pack.pack.units,
        plausibility=pack.pack.plausibility,
        received_at=received_at,
        field_prefix=PREFIX,
    )


def _reading_of(pack: LoadedPack, kind: ReadingKind, values: dict[str, str]) -> Measurement:
    return _reading(
        pack,
        kind,
        value=values.get("value"),
        systolic=values.get("systolic"),
        diastolic=values.get("diastolic"),
    )


# --- Conversion --------------------------------------------------------------------------------

CONVERSIONS = [
    # The published pairs of PATHWAY.md §1: equal on both sides of the threshold.
    pytest.param(K.FPG, "69", "mg/dL", "3.8", id="glucose-69-mgdl-is-3.8-hypo"),
    pytest.param(K.FPG, "70", "mg/dL", "3.9", id="glucose-70-mgdl-is-3.9"),
    pytest.param(K.FPG, "71", "mg/dL", "3.9", id="glucose-71-mgdl-is-3.9"),
    pytest.param(K.RPG, "300", "mg/dL", "16.7", id="glucose-300-mgdl-is-16.7"),
    pytest.param(K.FPG, "126", "mg/dL", "7.0", id="glucose-126-mgdl-is-7.0"),
    pytest.param(K.PPG2H, "200", "mg/dL", "11.1", id="ppg2h-200-mgdl-is-11.1"),
    pytest.param(K.LDL_C, "190", "mg/dL", "4.9", id="ldl-190-mgdl-is-4.9"),
    pytest.param(K.TC, "278", "mg/dL", "7.2", id="tc-278-mgdl-is-7.2"),
    pytest.param(K.HDL_C, "39", "mg/dL", "1.0", id="hdl-39-mgdl-is-1.0"),
    pytest.param(K.TG, "500", "mg/dL", "5.6", id="tg-500-mgdl-is-5.6"),
    pytest.param(K.HBA1C, "53", "mmol/mol", "7.0", id="hba1c-53-mmolmol-is-7.0-percent"),
    pytest.param(K.BP, "24.0", "kPa", "180", id="bp-24.0-kpa-is-180-mmhg"),
    pytest.param(K.BP, "12.0", "kPa", "90", id="bp-12.0-kpa-is-90-mmhg"),
    pytest.param(K.BP, "23.93", "kPa", "179", id="bp-179.49-mmhg-rounds-down-to-179"),
    pytest.param(K.BP, "23.94", "kPa", "180", id="bp-179.56-mmhg-rounds-up-to-180"),
    # Half up, not half even: x.x5 always goes up.
    pytest.param(K.FPG, "69.3", "mg/dL", "3.9", id="glucose-3.85-rounds-half-up-to-3.9"),
    pytest.param(K.FPG, "40.5", "mg/dL", "2.3", id="glucose-2.25-rounds-half-up-to-2.3"),
    pytest.param(K.UACR, "1.25", "mg/mmol", "11.1", id="uacr-11.05-rounds-half-up-to-11.1"),
    # Canonical values are used exactly as received (no rounding).
    pytest.param(K.FPG, "3.85", "mmol/L", "3.85", id="canonical-glucose-3.85-stays-3.85"),
    pytest.param(K.FPG, "3.85", None, "3.85", id="no-unit-means-canonical-3.85-stays"),
    pytest.param(K.LDL_C, "4.85", "mmol/L", "4.85", id="canonical-ldl-4.85-stays-4.85"),
    pytest.param(K.HBA1C, "6.95", "%", "6.95", id="canonical-hba1c-6.95-stays-6.95"),
    pytest.param(K.BP, "179.5", "mmHg", "179.5", id="canonical-bp-179.5-stays-179.5"),
    pytest.param(K.EGFR, "59.5", "mL/min/1.73m2", "59.5", id="canonical-egfr-59.5-stays"),
]


@pytest.mark.parametrize(("kind", "value", "unit", "expected"), CONVERSIONS)
def test_value_converts_to_the_canonical_unit_at_published_precision(
    default_pack: LoadedPack, kind: ReadingKind, value: str, unit: str | None, expected: str
) -> None:
    converted = to_canonical(kind, Decimal(value), unit, default_pack.pack.units, f"{PREFIX}.unit")

    assert str(converted) == expected


@pytest.mark.parametrize(
    ("kind", "value", "unit", "expected"),
    [
        pytest.param(K.FPG, "70", "mg/dL", "3.9", id="fpg-70-mgdl"),
        pytest.param(K.TG, "500", "mg/dL", "5.6", id="tg-500-mgdl"),
        pytest.param(K.HBA1C, "53", "mmol/mol", "7.0", id="hba1c-53-mmolmol"),
        pytest.param(K.FPG, "3.85", "mmol/L", "3.85", id="fpg-canonical"),
    ],
)
def test_measure_stores_the_canonical_value_and_the_unit_received(
    default_pack: LoadedPack, kind: ReadingKind, value: str, unit: str, expected: str
) -> None:
    reading = _reading(default_pack, kind, value=value, unit=unit)

    assert reading.value == Decimal(expected)
    assert str(reading.value) == expected
    assert reading.unit_received == unit
    assert reading.received == (Decimal(value),)


def test_measure_converts_both_bp_components_from_kpa(default_pack: LoadedPack) -> None:
    reading = _reading(default_pack, K.BP, systolic="24.0", diastolic="12.0", unit="kPa")

    assert (reading.systolic, reading.diastolic) == (Decimal(180), Decimal(90))
    assert reading.unit_received == "kPa"
    assert reading.received == (Decimal("24.0"), Decimal("12.0"))


@pytest.mark.parametrize(
    ("kind", "unit"),
    [
        pytest.param(K.FPG, "mg/L", id="glucose-mg-per-L"),
        pytest.param(K.HBA1C, "mg/dL", id="hba1c-mg-per-dL"),
        pytest.param(K.LDL_C, "mmol/mol", id="ldl-mmol-per-mol"),
        pytest.param(K.EGFR, "mL/min", id="egfr-has-no-alternative-unit"),
        pytest.param(K.FPG, "mmol", id="glucose-mmol-without-volume"),
    ],
)
def test_unknown_unit_is_rejected_naming_the_field(
    default_pack: LoadedPack, kind: ReadingKind, unit: str
) -> None:
    with pytest.raises(UnknownUnit) as raised:
        _reading(default_pack, kind, value="5.0", unit=unit)

    assert raised.value.field == f"{PREFIX}.unit"
    assert unit in raised.value.detail


def test_unknown_bp_unit_is_rejected_naming_the_field(default_pack: LoadedPack) -> None:
    with pytest.raises(UnknownUnit) as raised:
        _reading(default_pack, K.BP, systolic="18", diastolic="12", unit="cmHg")

    assert raised.value.field == f"{PREFIX}.unit"


def test_to_canonical_names_the_field_it_is_given(default_pack: LoadedPack) -> None:
    with pytest.raises(UnknownUnit) as raised:
        to_canonical(K.TG, Decimal("150"), "mg/L", default_pack.pack.units, "encounters.2.readings.1.unit")

    assert raised.value.field == "encounters.2.readings.1.unit"


# --- Plausibility ------------------------------------------------------------------------------

# (kind, values, field): every bound of PATHWAY.md §1 at its edge and one published step outside
# (1 mmHg / 1 eGFR unit, 0.1 for glucose, HbA1c and lipids). BP pairs keep SBP > DBP.
BOUNDS_INSIDE = [
    pytest.param(K.BP, {"systolic": "50", "diastolic": "40"}, id="sbp-50"),
    pytest.param(K.BP, {"systolic": "300", "diastolic": "100"}, id="sbp-300"),
    pytest.param(K.BP, {"systolic": "100", "diastolic": "30"}, id="dbp-30"),
    pytest.param(K.BP, {"systolic": "250", "diastolic": "200"}, id="dbp-200"),
    *(
        pytest.param(kind, {"value": edge}, id=f"{kind.value}-{edge}")
        for kind in (K.FPG, K.PPG2H, K.RPG)
        for edge in ("1.0", "55.5")
    ),
    pytest.param(K.HBA1C, {"value": "3"}, id="hba1c-3"),
    pytest.param(K.HBA1C, {"value": "20"}, id="hba1c-20"),
    pytest.param(K.TC, {"value": "1"}, id="tc-1"),
    pytest.param(K.TC, {"value": "25"}, id="tc-25"),
    pytest.param(K.LDL_C, {"value": "0.1"}, id="ldl-0.1"),
    pytest.param(K.LDL_C, {"value": "20"}, id="ldl-20"),
    pytest.param(K.HDL_C, {"value": "0.1"}, id="hdl-0.1"),
    pytest.param(K.HDL_C, {"value": "5"}, id="hdl-5"),
    pytest.param(K.TG, {"value": "0.1"}, id="tg-0.1"),
    pytest.param(K.TG, {"value": "60"}, id="tg-60"),
    pytest.param(K.EGFR, {"value": "1"}, id="egfr-1"),
    pytest.param(K.EGFR, {"value": "200"}, id="egfr-200"),
]

BOUNDS_OUTSIDE = [
    pytest.param(K.BP, {"systolic": "49", "diastolic": "40"}, "systolic", id="sbp-49"),
    pytest.param(K.BP, {"systolic": "301", "diastolic": "100"}, "systolic", id="sbp-301"),
    pytest.param(K.BP, {"systolic": "300.5", "diastolic": "100"}, "systolic", id="sbp-300.5-not-rounded"),
    pytest.param(K.BP, {"systolic": "100", "diastolic": "29"}, "diastolic", id="dbp-29"),
    pytest.param(K.BP, {"systolic": "250", "diastolic": "201"}, "diastolic", id="dbp-201"),
    *(
        pytest.param(kind, {"value": edge}, "value", id=f"{kind.value}-{edge}")
        for kind in (K.FPG, K.PPG2H, K.RPG)
        for edge in ("0.9", "55.6")
    ),
    pytest.param(K.FPG, {"value": "55.51"}, "value", id="fpg-55.51-not-rounded"),
    pytest.param(K.HBA1C, {"value": "2.9"}, "value", id="hba1c-2.9"),
    pytest.param(K.HBA1C, {"value": "20.1"}, "value", id="hba1c-20.1"),
    pytest.param(K.TC, {"value": "0.9"}, "value", id="tc-0.9"),
    pytest.param(K.TC, {"value": "25.1"}, "value", id="tc-25.1"),
    pytest.param(K.LDL_C, {"value": "0.0"}, "value", id="ldl-0.0"),
    pytest.param(K.LDL_C, {"value": "20.1"}, "value", id="ldl-20.1"),
    pytest.param(K.HDL_C, {"value": "0.0"}, "value", id="hdl-0.0"),
    pytest.param(K.HDL_C, {"value": "5.1"}, "value", id="hdl-5.1"),
    pytest.param(K.TG, {"value": "0.0"}, "value", id="tg-0.0"),
    pytest.param(K.TG, {"value": "60.1"}, "value", id="tg-60.1"),
    pytest.param(K.EGFR, {"value": "0"}, "value", id="egfr-0"),
    pytest.param(K.EGFR, {"value": "201"}, "value", id="egfr-201"),
    pytest.param(K.FPG, {"value": "-5"}, "value", id="negative-glucose"),
]


@pytest.mark.parametrize(("kind", "values"), BOUNDS_INSIDE)
def test_value_at_a_plausibility_edge_is_accepted(
    default_pack: LoadedPack, kind: ReadingKind, values: dict[str, str]
) -> None:
    reading = _reading_of(default_pack, kind, values)

    if kind is K.BP:
        assert (reading.systolic, reading.diastolic) == (
            Decimal(values["systolic"]),
            Decimal(values["diastolic"]),
        )
    else:
        assert reading.value == Decimal(values["value"])


@pytest.mark.parametrize(("kind", "values", "name"), BOUNDS_OUTSIDE)
def test_value_just_outside_a_plausibility_edge_is_rejected_naming_the_field(
    default_pack: LoadedPack, kind: ReadingKind, values: dict[str, str], name: str
) -> None:
    with pytest.raises(ImplausibleValue) as raised:
        _reading_of(default_pack, kind, values)

    assert raised.value.field == f"{PREFIX}.{name}"
    assert raised.value.code == "implausible-value"


@pytest.mark.parametrize(("kind", "values"), BOUNDS_INSIDE)
def test_check_plausible_accepts_every_edge(
    default_pack: LoadedPack, kind: ReadingKind, values: dict[str, str]
) -> None:
    check_plausible(
        kind,
        {k: Decimal(v) for k, v in values.items()},
        default_pack.pack.plausibility,
        "encounters.0.readings.3",
    )


@pytest.mark.parametrize(("kind", "values", "name"), BOUNDS_OUTSIDE)
def test_check_plausible_names_the_field_under_its_prefix(
    default_pack: LoadedPack, kind: ReadingKind, values: dict[str, str], name: str
) -> None:
    with pytest.raises(ImplausibleValue) as raised:
        check_plausible(
            kind,
            {k: Decimal(v) for k, v in values.items()},
            default_pack.pack.plausibility,
            "encounters.0.readings.3",
        )

    assert raised.value.field == f"encounters.0.readings.3.{name}"


@pytest.mark.parametrize(
    ("value", "unit", "accepted"),
    [
        pytest.param("18", "mg/dL", True, id="18-mgdl-is-1.0-accepted"),
        pytest.param("17", "mg/dL", False, id="17-mgdl-is-0.9-rejected"),
        pytest.param("999", "mg/dL", True, id="999-mgdl-is-55.5-accepted"),
        pytest.param("1000", "mg/dL", False, id="1000-mgdl-is-55.6-rejected"),
    ],
)
def test_plausibility_is_judged_on_the_converted_value(
    default_pack: LoadedPack, value: str, unit: str, accepted: bool
) -> None:
    if accepted:
        assert _reading(default_pack, K.FPG, value=value, unit=unit).value is not None
    else:
        with pytest.raises(ImplausibleValue) as raised:
            _reading(default_pack, K.FPG, value=value, unit=unit)
        assert raised.value.field == f"{PREFIX}.value"


@pytest.mark.parametrize(
    ("systolic", "diastolic", "unit"),
    [
        pytest.param("120", "120", None, id="sbp-equal-to-dbp"),
        pytest.param("120", "121", None, id="sbp-below-dbp"),
        pytest.param("16.0", "16.0", "kPa", id="sbp-equal-to-dbp-in-kpa"),
    ],
)
def test_systolic_not_above_diastolic_is_rejected(
    default_pack: LoadedPack, systolic: str, diastolic: str, unit: str | None
) -> None:
    with pytest.raises(ImplausibleValue) as raised:
        _reading(default_pack, K.BP, systolic=systolic, diastolic=diastolic, unit=unit)

    assert raised.value.field == f"{PREFIX}.systolic"


def test_systolic_one_above_diastolic_is_accepted(default_pack: LoadedPack) -> None:
    reading = _reading(default_pack, K.BP, systolic="121", diastolic="120")

    assert (reading.systolic, reading.diastolic) == (Decimal(121), Decimal(120))


# --- Timestamps and shape ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ahead", "accepted"),
    [
        pytest.param(timedelta(minutes=-30), True, id="in-the-past"),
        pytest.param(timedelta(0), True, id="at-receipt"),
        pytest.param(timedelta(minutes=10), True, id="exactly-10-min-ahead"),
        pytest.param(timedelta(minutes=10, seconds=1), False, id="10-min-1-s-ahead"),
        pytest.param(timedelta(hours=2), False, id="2-h-ahead"),
    ],
)
def test_measured_at_more_than_10_minutes_after_receipt_is_rejected(
    default_pack: LoadedPack, ahead: timedelta, accepted: bool
) -> None:
    at = AS_OF + ahead
    if accepted:
        assert _reading(default_pack, K.FPG, value="6.0", at=at, received_at=AS_OF).at == at
    else:
        with pytest.raises(FutureTimestamp) as raised:
            _reading(default_pack, K.FPG, value="6.0", at=at, received_at=AS_OF)
        assert raised.value.field == f"{PREFIX}.measured_at"


def test_replay_without_received_at_accepts_a_later_timestamp(default_pack: LoadedPack) -> None:
    at = AS_OF + timedelta(days=3)

    assert _reading(default_pack, K.FPG, value="6.0", at=at, received_at=None).at == at


@pytest.mark.parametrize(
    "received_at",
    [pytest.param(AS_OF, id="live"), pytest.param(None, id="replay")],
)
def test_naive_timestamp_is_rejected(default_pack: LoadedPack, received_at: datetime | None) -> None:
    with pytest.raises(InvalidInput) as raised:
        _reading(default_pack, K.FPG, value="6.0", at=datetime(2026, 3, 1, 9, 0), received_at=received_at)

    assert raised.value.field == f"{PREFIX}.measured_at"
    assert raised.value.code == "invalid-input"


@pytest.mark.parametrize(
    ("systolic", "diastolic", "missing"),
    [
        pytest.param("130", None, "diastolic", id="no-diastolic"),
        pytest.param(None, "80", "systolic", id="no-systolic"),
    ],
)
def test_bp_without_both_components_is_rejected(
    default_pack: LoadedPack, systolic: str | None, diastolic: str | None, missing: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        _reading(default_pack, K.BP, systolic=systolic, diastolic=diastolic)

    assert raised.value.field == f"{PREFIX}.{missing}"


def test_bp_with_a_single_value_is_rejected(default_pack: LoadedPack) -> None:
    with pytest.raises(InvalidInput) as raised:
        _reading(default_pack, K.BP, value="130", systolic="130", diastolic="80")

    assert raised.value.field == f"{PREFIX}.value"


def test_glucose_without_a_value_is_rejected(default_pack: LoadedPack) -> None:
    with pytest.raises(InvalidInput) as raised:
        _reading(default_pack, K.FPG)

    assert raised.value.field == f"{PREFIX}.value"


@pytest.mark.parametrize(
    ("kind", "value", "unit", "expected"),
    [
        pytest.param(K.FPG, "126", "mg/dl", "7.0", id="lower-case-mg-per-dl"),
        pytest.param(K.FPG, "7.04", " MMOL/L ", "7.04", id="canonical-any-case-kept-exactly"),
        pytest.param(K.EGFR, "59.5", "mL/min/1.73m²", "59.5", id="egfr-alias-kept-exactly"),
    ],
)
def test_unit_names_match_regardless_of_case_and_aliases_are_canonical(
    default_pack: LoadedPack, kind: ReadingKind, value: str, unit: str, expected: str
) -> None:
    units = default_pack.pack.units
    assert str(to_canonical(kind, Decimal(value), unit, units, "readings.0.unit")) == expected


def test_the_ucum_spelling_of_mmhg_is_canonical(default_pack: LoadedPack) -> None:
    units = default_pack.pack.units
    assert to_canonical(K.BP, Decimal("179.5"), "mm[Hg]", units, "readings.0.unit") == Decimal("179.5")
