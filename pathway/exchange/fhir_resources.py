"""Our values as FHIR R4 resources (JSON dicts): Patient, Observation, RiskAssessment,
ServiceRequest, Task, CarePlan, and the searchset Bundle and OperationOutcome around them.

Pure: the rows and plan a use-case read go in, JSON comes out. Codes of ours use the systems below;
readings use the LOINC codes the ingest side reads (:mod:`pathway.ingest.fhir`), so an Observation
read out and posted back is the same reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pathway.clinical.errors import PathwayError
from pathway.clinical.vocabulary import ReadingKind
from pathway.ingest.fhir import BP_PANEL, DIASTOLIC, LOINC, SYSTOLIC
from pathway.patients.care_plan import CarePlan
from pathway.store.tables import AssessmentRecord, Patient, Reading, Referral
from pathway.store.work_tables import CareTask

SYSTEM = "https://sangao.example/fhir"
TIER_SYSTEM = f"{SYSTEM}/tier"
LEVEL_SYSTEM = f"{SYSTEM}/management-level"
PACK_SYSTEM = f"{SYSTEM}/rule-pack"
RULE_SYSTEM = f"{SYSTEM}/rule"
TASK_KIND_SYSTEM = f"{SYSTEM}/task-kind"
ERROR_SYSTEM = f"{SYSTEM}/error"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
SNOMED = "http://snomed.info/sct"
REFERRAL_CODE = {"system": SNOMED, "code": "3457005", "display": "Patient referral"}

# Reading kind → the LOINC code it is read out as: one of the codes the ingest table maps back to
# the same kind, in the canonical unit's property ([Moles/volume] for mmol/L) where LOINC has one.
LOINC_OF_KIND: dict[ReadingKind, str] = {
    ReadingKind.BP: BP_PANEL,
    ReadingKind.FPG: "14771-0",
    ReadingKind.PPG2H: "1521-4",
    ReadingKind.RPG: "14749-6",
    ReadingKind.HBA1C: "4548-4",
    ReadingKind.TC: "14647-2",
    ReadingKind.LDL_C: "22748-8",
    ReadingKind.HDL_C: "14646-4",
    ReadingKind.TG: "14927-8",
    ReadingKind.EGFR: "98979-8",
    ReadingKind.UACR: "9318-7",
}
# The canonical units' names → their UCUM codes (each one the ingest side's UCUM_UNITS reads back).
UCUM_OF_UNIT = {"mmHg": "mm[Hg]", "mL/min/1.73m2": "mL/min/{1.73_m2}", "mg/g": "mg/g{creat}"}
RISK_OF_TIER = {"red": "high", "yellow": "moderate", "blue": "low"}
REFERRAL_STATUS = {
    "open": "active",
    "accepted": "active",
    "completed": "completed",
    "returned": "completed",
    "closed": "revoked",
}
REFERRAL_PRIORITY = {"emergency": "stat", "urgent": "urgent", "routine": "routine"}
TASK_STATUS = {
    "open": "ready",
    "done": "completed",
    "resolved": "completed",
    "unreachable": "failed",
    "refused": "rejected",
    "moved": "cancelled",
    "deceased": "cancelled",
    "cancelled": "cancelled",
}
PLAN_ACTIVITY_STATUS = {"done": "completed", "planned": "scheduled", "overdue": "not-started"}
ISSUE_TYPE = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 409: "conflict"}
ISSUE_TYPE |= {413: "too-long", 422: "invalid", 429: "throttled"}


def instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _coding(system: str, code: str, display: str | None = None, version: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if version is not None:
        coding["version"] = version
    if display is not None:
        coding["display"] = display
    return coding


def _patient_ref(patient_id: int) -> dict[str, str]:
    return {"reference": f"Patient/{patient_id}"}


def _rule(rule_id: str, pack_id: str | None, pack_version: str | None) -> dict[str, Any]:
    """A fired rule as a coding: the rule id in the system of its pack, with the pack's version."""
    system = f"{RULE_SYSTEM}/{pack_id}" if pack_id else RULE_SYSTEM
    return _coding(system, rule_id, version=pack_version)


def patient(row: Patient) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(row.id),
        "identifier": [{"system": row.source_system, "value": row.external_id}],
        "active": row.status == "active",
        "gender": row.sex if row.sex in ("male", "female") else "unknown",
        "birthDate": row.birth_date.isoformat(),
    }
    if row.name:
        resource["name"] = [{"text": row.name}]
    if row.phone:
        resource["telecom"] = [{"system": "phone", "value": row.phone}]
    if row.status == "deceased":
        resource["deceasedBoolean"] = True
    return resource


def observation(row: Reading, unit: str) -> dict[str, Any]:
    """A reading in force (``unit``: its kind's canonical unit); a BP is one panel with systolic
    and diastolic components."""
    kind = ReadingKind(row.kind)
    category = "vital-signs" if kind is ReadingKind.BP else "laboratory"
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(row.id),
        "status": "final",
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY, category)]}],
        "code": {"coding": [_coding(LOINC, LOINC_OF_KIND[kind])], "text": kind.value},
        "subject": _patient_ref(row.patient_id),
        "effectiveDateTime": instant(row.measured_at),
        "issued": instant(row.received_at),
        "method": {"text": row.source},
    }
    if row.source_reading_id:
        resource["identifier"] = [{"system": row.source_system, "value": row.source_reading_id}]
    if row.device_id:
        resource["device"] = {"display": row.device_id}
    if kind is ReadingKind.BP:
        resource["component"] = [
            {"code": {"coding": [_coding(LOINC, code)]}, "valueQuantity": _quantity(value, unit)}
            for code, value in ((SYSTOLIC, row.systolic), (DIASTOLIC, row.diastolic))
            if value is not None
        ]
    elif row.value is not None:
        resource["valueQuantity"] = _quantity(row.value, unit)
    return resource


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": UCUM_OF_UNIT.get(unit, unit)}


def risk_assessment(record: AssessmentRecord) -> dict[str, Any]:
    """The tier and management level as predictions; every fired rule a basis (its id in the
    pack's rule system, with the pack's version), its message and source the display."""
    reasons: list[dict[str, Any]] = record.result.get("reasons", [])
    return {
        "resourceType": "RiskAssessment",
        "id": str(record.id),
        "status": "final",
        "subject": _patient_ref(record.patient_id),
        "occurrenceDateTime": instant(record.evaluated_at),
        "method": {
            "coding": [_coding(PACK_SYSTEM, record.pack_id, version=record.pack_version)],
            "text": f"{record.pack_id} {record.pack_version} (sha256 {record.pack_sha256})",
        },
        "prediction": [
            {
                "outcome": {"coding": [_coding(TIER_SYSTEM, record.tier)], "text": f"tier {record.tier}"},
                "qualitativeRisk": {"coding": [_coding(RISK_PROBABILITY, RISK_OF_TIER[record.tier])]},
            },
            {"outcome": {"coding": [_coding(LEVEL_SYSTEM, record.level)], "text": f"level {record.level}"}},
        ],
        "basis": [
            {
                "identifier": {
                    "system": f"{RULE_SYSTEM}/{record.pack_id}/{record.pack_version}",
                    "value": reason["rule_id"],
                },
                "display": f"{reason['rule_id']}: {reason.get('message_en') or reason['message']} "
                f"(source: {reason['source']})",
            }
            for reason in reasons
        ],
    }


def service_request(row: Referral) -> dict[str, Any]:
    """A referral (上转) with its urgency as priority; ``returned`` (下转) and ``completed`` are both
    FHIR ``completed``, our status kept in the note."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(row.id),
        "status": REFERRAL_STATUS.get(row.status, "unknown"),
        "intent": "order",
        "priority": REFERRAL_PRIORITY.get(row.urgency, "routine"),
        "code": {"coding": [REFERRAL_CODE], "text": f"{row.urgency} referral"},
        "subject": _patient_ref(row.patient_id),
        "authoredOn": instant(row.created_at),
        "note": [{"text": f"status: {row.status}" + (f"; {row.return_note}" if row.return_note else "")}],
    }
    if row.reason or row.rule_id:
        concept: dict[str, Any] = {"text": row.reason or row.rule_id}
        if row.rule_id:
            concept["coding"] = [_rule(row.rule_id, None, row.pack_version)]
        resource["reasonCode"] = [concept]
    if row.receiving_institution:
        resource["performer"] = [{"display": row.receiving_institution}]
    return resource


TASK_PRIORITY = ("stat", "asap", "urgent")


def task(row: CareTask) -> dict[str, Any]:
    """A care task: its kind as code, the team as owner, due and time limit as the execution period,
    our status (open, done, unreachable…) as businessStatus, the rule that called for it as reason."""
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(row.id),
        "status": TASK_STATUS.get(row.status, "ready"),
        "businessStatus": {"text": row.status},
        "intent": "order",
        "priority": TASK_PRIORITY[row.priority - 1] if 1 <= row.priority <= len(TASK_PRIORITY) else "routine",
        "code": {
            "coding": [_coding(TASK_KIND_SYSTEM, row.kind)],
            "text": f"{row.kind} {row.subject}".strip(),
        },
        "for": _patient_ref(row.patient_id),
        "authoredOn": instant(row.created_at),
        "lastModified": instant(row.updated_at),
        "executionPeriod": {"start": instant(row.due_at), "end": instant(row.time_limit_at)},
        "reasonCode": {"coding": [_rule(row.rule_id, row.pack_id, row.pack_version)]},
    }
    if row.team_id is not None:
        resource["owner"] = {"reference": f"CareTeam/{row.team_id}"}
    if row.outcome or row.note:
        resource["statusReason"] = {"text": "; ".join(t for t in (row.outcome, row.note) if t)}
    return resource


def care_plan(plan: CarePlan) -> dict[str, Any]:
    """年度照护计划: every item planned or done in the year as an activity."""
    return {
        "resourceType": "CarePlan",
        "id": f"{plan.patient_id}-{plan.year}",
        "status": "active",
        "intent": "plan",
        "title": f"年度照护计划 {plan.year}",
        "description": f"tier {plan.tier}, level {plan.level}, follow-up every "
        f"{plan.follow_up_interval_days} days (pack version {plan.pack_version})",
        "subject": _patient_ref(plan.patient_id),
        "period": {"start": date(plan.year, 1, 1).isoformat(), "end": date(plan.year, 12, 31).isoformat()},
        "activity": [
            {
                "detail": {
                    "kind": "Task",
                    "code": {
                        "coding": [_coding(TASK_KIND_SYSTEM, item.kind)],
                        "text": f"{item.kind} {item.subject or ''}".strip(),
                    },
                    "status": PLAN_ACTIVITY_STATUS.get(item.status, "unknown"),
                    "scheduledString": item.on.isoformat(),
                    **({"description": item.detail} if item.detail else {}),
                }
            }
            for item in plan.items
        ],
    }


@dataclass(frozen=True)
class Links:
    """A searchset page's own address and the next page's, if there is one."""

    self_url: str
    next_url: str | None = None


def searchset(resources: Sequence[dict[str, Any]], base: str, links: Links) -> dict[str, Any]:
    link = [{"relation": "self", "url": links.self_url}]
    if links.next_url is not None:
        link.append({"relation": "next", "url": links.next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": link,
        "entry": [
            {
                "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in resources
        ],
    }


def operation_outcome(error: PathwayError) -> dict[str, Any]:
    """An error as FHIR says it: the issue type by status, our stable code in details."""
    issue: dict[str, Any] = {
        "severity": "error",
        "code": ISSUE_TYPE.get(error.status, "exception" if error.status >= 500 else "processing"),
        "details": {"coding": [_coding(ERROR_SYSTEM, error.code)], "text": error.code},
        "diagnostics": error.detail,
    }
    if error.field:
        issue["expression"] = [error.field]
    return {"resourceType": "OperationOutcome", "issue": [issue]}
