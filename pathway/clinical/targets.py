"""Targets of PATHWAY.md §3: the BP band and the 血脂2023 lipid stratum, chosen by pack data."""

from __future__ import annotations

from decimal import Decimal

from pathway.clinical.conditions import Facts, holds
from pathway.clinical.parameters import BloodPressureBand, LipidStratification
from pathway.clinical.vocabulary import Sex


def blood_pressure_band(bands: list[BloodPressureBand], patient: Facts) -> BloodPressureBand | None:
    """The first band whose condition holds for the patient (``None`` if no band applies)."""
    return next((band for band in bands if holds(band.when, patient)), None)


def lipid_risk_factor_count(
    stratification: LipidStratification, *, sex: Sex, age: int, smoker: bool, hdl_c: Decimal | None
) -> int:
    """Risk factors of the 10-year chart: smoking, low HDL-C, age (a missing HDL-C is not one)."""
    factors = stratification.risk_factors
    count = 0
    if factors.smoker and smoker:
        count += 1
    if hdl_c is not None and hdl_c < factors.hdl_c_below:
        count += 1
    age_from = factors.age_male_from if sex is Sex.MALE else factors.age_female_from
    if age >= age_from:
        count += 1
    return count


def lipid_stratum(
    stratification: LipidStratification,
    facts: Facts,
    *,
    hypertension: bool,
    risk_factors: int,
    ldl_c: Decimal | None,
    tc: Decimal | None,
) -> str | None:
    """The patient's stratum: the first pre-chart stratum that holds, else the chart cell.

    The chart uses LDL-C when present, else TC; a value below the first column is the
    ``below_chart`` stratum. Without LDL-C or TC the chart cannot be read: ``None``.
    """
    for stratum in stratification.strata:
        if holds(stratum.when, facts):
            return stratum.stratum
    bands = stratification.chart_bands
    if ldl_c is not None:
        column = _column([(b.ldl_from, b.ldl_below) for b in bands], ldl_c)
    elif tc is not None:
        column = _column([(b.tc_from, b.tc_below) for b in bands], tc)
    else:
        return None
    if column is None:
        return stratification.below_chart
    row = next(
        (
            r
            for r in stratification.chart_rows
            if r.hypertension is hypertension and r.risk_factors_from <= risk_factors <= r.risk_factors_to
        ),
        None,
    )
    return row.strata[column] if row is not None else None


def _column(bounds: list[tuple[Decimal, Decimal]], value: Decimal) -> int | None:
    """Index of the band holding ``value``; values above the last band fall in the last column."""
    if value < bounds[0][0]:
        return None
    for index, (low, high) in enumerate(bounds):
        if low <= value < high:
            return index
    return len(bounds) - 1
