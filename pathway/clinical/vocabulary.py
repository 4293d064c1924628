"""The fixed vocabulary of PATHWAY.md §1, shared by the API, the case files and the rule packs."""

from __future__ import annotations

from enum import StrEnum


class Condition(StrEnum):
    HYPERTENSION = "hypertension"
    DIABETES = "diabetes"
    DYSLIPIDEMIA = "dyslipidemia"
    CKD = "ckd"


class Complication(StrEnum):
    """六病 complications."""

    CHD = "chd"
    STROKE = "stroke"
    NEPHROPATHY = "nephropathy"
    RETINOPATHY = "retinopathy"
    NEUROPATHY = "neuropathy"
    PVD = "pvd"


class ReadingKind(StrEnum):
    BP = "bp"
    FPG = "fpg"
    PPG2H = "ppg2h"
    RPG = "rpg"
    HBA1C = "hba1c"
    TC = "tc"
    LDL_C = "ldl_c"
    HDL_C = "hdl_c"
    TG = "tg"
    EGFR = "egfr"
    UACR = "uacr"


GLUCOSE_KINDS = frozenset({ReadingKind.FPG, ReadingKind.PPG2H, ReadingKind.RPG})
LAB_KINDS = (
    ReadingKind.HBA1C,
    ReadingKind.TC,
    ReadingKind.LDL_C,
    ReadingKind.HDL_C,
    ReadingKind.TG,
    ReadingKind.EGFR,
    ReadingKind.UACR,
)


class ReadingSource(StrEnum):
    CLINIC = "clinic"
    HOME = "home"
    WEARABLE = "wearable"
    CGM = "cgm"
    LAB = "lab"


def is_self_measured(source: str) -> bool:
    return source in (ReadingSource.HOME.value, ReadingSource.WEARABLE.value, ReadingSource.CGM.value)


class Symptom(StrEnum):
    ALTERED_CONSCIOUSNESS = "altered_consciousness"
    SEVERE_HEADACHE = "severe_headache"
    NAUSEA_VOMITING = "nausea_vomiting"
    BLURRED_VISION = "blurred_vision"
    CHEST_PAIN = "chest_pain"
    PALPITATIONS = "palpitations"
    DYSPNEA = "dyspnea"
    SPEECH_DISTURBANCE = "speech_disturbance"
    LIMB_WEAKNESS = "limb_weakness"
    SEVERE_BACK_PAIN = "severe_back_pain"
    LEG_EDEMA = "leg_edema"
    ACETONE_BREATH = "acetone_breath"
    DEEP_RAPID_BREATHING = "deep_rapid_breathing"
    ABDOMINAL_PAIN = "abdominal_pain"
    POLYURIA_POLYDIPSIA = "polyuria_polydipsia"
    HIGH_FEVER = "high_fever"


class CareCheck(StrEnum):
    """Scheduled examinations that are recorded as done (not as readings)."""

    ANNUAL_CHECK = "annual_check"
    FUNDUS = "fundus"
    UACR_EGFR = "uacr_egfr"
    FOOT = "foot"
    ECG = "ecg"


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"


class PatientStatus(StrEnum):
    """Whether the patient is still managed: a death or a move away ends management."""

    ACTIVE = "active"
    DECEASED = "deceased"
    MOVED = "moved"
