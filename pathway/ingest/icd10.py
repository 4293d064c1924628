"""ICD-10 codes → the conditions and 六病 complications of the pathway: vocabulary, not thresholds.

The codes are the WHO ICD-10 (2019) categories; Chinese EHRs send GB/T 14396-2016 (疾病分类与代码),
the national extension of ICD-10 whose codes begin with the ICD-10 category (``I10.x00x002`` 高血压
3级 is under ``I10``), so both are read by the longest prefix of the code in this table.
"""

from __future__ import annotations

from pathway.clinical.vocabulary import Complication, Condition

ICD10_SYSTEMS = frozenset(
    {
        "http://hl7.org/fhir/sid/icd-10",  # WHO ICD-10, as FHIR names it
        "http://hl7.org/fhir/sid/icd-10-cn",  # GB/T 14396 (ICD-10 中国版), as a national edition
        "urn:oid:2.16.156.10011.2.3.3.11",  # GB/T 14396 as China's health data standards (WS 364) name it
    }
)

# ICD-10 category (or subcategory) → our condition or complication. A diabetic complication
# (E1x.2–E1x.5) is the complication; the diabetes itself is its own Condition (E10–E14).
ICD10_CODES: dict[str, Condition | Complication] = {
    "I10": Condition.HYPERTENSION,  # Essential (primary) hypertension
    "I11": Condition.HYPERTENSION,  # Hypertensive heart disease
    "I12": Condition.HYPERTENSION,  # Hypertensive renal disease
    "I13": Condition.HYPERTENSION,  # Hypertensive heart and renal disease
    "I15": Condition.HYPERTENSION,  # Secondary hypertension
    "E10": Condition.DIABETES,  # Type 1 diabetes mellitus
    "E11": Condition.DIABETES,  # Type 2 diabetes mellitus
    "E12": Condition.DIABETES,  # Malnutrition-related diabetes mellitus
    "E13": Condition.DIABETES,  # Other specified diabetes mellitus
    "E14": Condition.DIABETES,  # Unspecified diabetes mellitus
    "E78": Condition.DYSLIPIDEMIA,  # Disorders of lipoprotein metabolism and other lipidaemias
    "N18.3": Condition.CKD,  # Chronic kidney disease, stage 3
    "N18.4": Condition.CKD,  # Chronic kidney disease, stage 4
    "I20": Complication.CHD,  # Angina pectoris
    "I21": Complication.CHD,  # Acute myocardial infarction
    "I22": Complication.CHD,  # Subsequent myocardial infarction
    "I24": Complication.CHD,  # Other acute ischaemic heart diseases
    "I25": Complication.CHD,  # Chronic ischaemic heart disease
    "I60": Complication.STROKE,  # Subarachnoid haemorrhage
    "I61": Complication.STROKE,  # Intracerebral haemorrhage
    "I63": Complication.STROKE,  # Cerebral infarction
    "I64": Complication.STROKE,  # Stroke, not specified as haemorrhage or infarction
    "I69": Complication.STROKE,  # Sequelae of cerebrovascular disease
    **{f"E1{n}.2": Complication.NEPHROPATHY for n in range(5)},  # Diabetes with renal complications
    **{f"E1{n}.3": Complication.RETINOPATHY for n in range(5)},  # Diabetes with ophthalmic complications
    **{f"E1{n}.4": Complication.NEUROPATHY for n in range(5)},  # Diabetes with neurological complications
    **{f"E1{n}.5": Complication.PVD for n in range(5)},  # Diabetes with peripheral circulatory complications
    "I70.2": Complication.PVD,  # Atherosclerosis of arteries of extremities
    "I73.9": Complication.PVD,  # Peripheral vascular disease, unspecified
}


def condition_of(code: str) -> Condition | Complication | None:
    """What the code (an ICD-10 or GB/T 14396 code, any case) names for us, by its longest prefix."""
    spelled = code.strip().upper()
    for length in range(len(spelled), 2, -1):
        found = ICD10_CODES.get(spelled[:length])
        if found is not None:
            return found
    return None
