"""Which readings each snapshot fact is derived from: the evidence keys (``reading:<kind>``, as
:func:`pathway.clinical.assessment.evidence_of` records them) whose newer values can change the fact.

A referral returned (下转) keeps its rule quiet until such evidence, measured after the return,
arrives (:func:`pathway.referrals.quiet_after_return`): the facts the rule read can then have
changed. Facts of the patient's record (age, conditions, complications, targets derived from
them) and of reported symptoms come from no reading and map to nothing. Every fact of
:data:`pathway.clinical.snapshot.FACT_TYPES` is listed (a test holds the two together), so a new fact must
say where it comes from.
"""

from __future__ import annotations

from collections.abc import Iterable

from pathway.clinical.medication_facts import MEDICATION_FACT_TYPES
from pathway.clinical.policy import reading_evidence
from pathway.clinical.vocabulary import GLUCOSE_KINDS, LAB_KINDS, Condition, ReadingKind

_BP = (ReadingKind.BP,)
_GLUCOSE = tuple(sorted(GLUCOSE_KINDS))
_STRATUM = (ReadingKind.LDL_C, ReadingKind.TC, ReadingKind.HDL_C)
_NONE: tuple[ReadingKind, ...] = ()

FACT_READINGS: dict[str, tuple[ReadingKind, ...]] = {
    **dict.fromkeys(
        (
            "age",
            "sex",
            "smoker",
            "pregnant",
            *(f"has_{c.value}" for c in Condition),
            "has_ascvd",
            "ascvd_risk_condition_count",
            "bp_target_sbp",
            "bp_target_dbp",
            "home_bp_target_sbp",
            "home_bp_target_dbp",
            "hba1c_target",
            "bp_danger_symptom",
            "hyperglycaemic_sign",
            "complication_count",
            "newest_complication_age_days",
            "oldest_complication_age_days",
        ),
        _NONE,
    ),
    **dict.fromkeys(
        (
            "office_sbp",
            "office_dbp",
            "office_bp_age_days",
            "home_sbp_mean",
            "home_dbp_mean",
            "home_bp_reading_count",
            "days_since_last_bp",
            "bp_crisis_confirmed",
            "bp_crisis_unconfirmed",
            "bp_crisis_recent",
            "consecutive_uncontrolled_hypertension",
        ),
        _BP,
    ),
    **dict.fromkeys(
        (
            "acute_glucose_max",
            "acute_encounter_glucose_min",
            "self_monitored_glucose_min",
            "latest_encounter_glucose",
            "latest_encounter_glucose_target",
            "latest_encounter_glucose_fasting",
            "recent_fpg_max",
            "recent_nonfasting_glucose_max",
            "consecutive_uncontrolled_diabetes",
        ),
        _GLUCOSE,
    ),
    "days_since_last_glycaemic": (*_GLUCOSE, ReadingKind.HBA1C),
    **{kind.value: (kind,) for kind in LAB_KINDS},
    **{f"{kind.value}_age_days": (kind,) for kind in LAB_KINDS},
    "lipid_stratum": _STRATUM,
    "lipid_risk_factor_count": (ReadingKind.HDL_C,),
    "ldl_target": _STRATUM,
    # PATHWAY.md §7: from prescriptions and what visits recorded, not from readings (but the LDL-C's).
    **dict.fromkeys(MEDICATION_FACT_TYPES, ()),
    "ldl_c_statin_days": (ReadingKind.LDL_C,),
}


def evidence_keys(facts: Iterable[str]) -> set[str]:
    """The evidence keys whose newer values can change any of ``facts`` (unknown facts: none)."""
    return {reading_evidence(kind) for name in facts for kind in FACT_READINGS.get(name, ())}
