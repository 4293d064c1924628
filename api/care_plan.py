"""The patient's annual care plan (年度医防融合一体化照护计划): a thin route over
pathway.patients.care_plan."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from api.deps import ClockDep, CurrentKey, PathwayDep, PatientId, SessionDep, patient_for
from api.errors import error_responses
from pathway.access.permissions import Role
from pathway.patients import care_plan, reassessment

router = APIRouter(prefix="/v1/patients", tags=["patients"])


class PlanItemRead(BaseModel):
    kind: str
    subject: str | None
    status: str
    on: date
    rule_id: str | None
    detail: str | None


class CarePlanRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "patient_id": 42,
                    "year": 2026,
                    "tier": "yellow",
                    "level": "base",
                    "follow_up_interval_days": 30,
                    "pack_version": "2020.4",
                    "items": [
                        {"kind": "follow_up_visit", "subject": None, "status": "done", "on": "2026-01-12",
                         "rule_id": None, "detail": "encounter"},
                        {"kind": "complication_screening", "subject": "fundus", "status": "planned",
                         "on": "2026-04-02", "rule_id": "schedule.screening.fundus", "detail": None},
                    ],
                }
            ]
        }
    )  # fmt: skip
    patient_id: int
    year: int
    tier: str
    level: str
    follow_up_interval_days: int
    pack_version: str
    items: list[PlanItemRead]


@router.get(
    "/{patient_id}/care-plan",
    response_model=CarePlanRead,
    responses=error_responses(401, 403, 404, 422, 429, 503),
    operation_id="care-plan",
)
def read_care_plan(
    patient_id: PatientId,
    session: SessionDep,
    clock: ClockDep,
    pathway: PathwayDep,
    key: CurrentKey,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="default: this year")] = None,
) -> CarePlanRead:
    """Every follow-up, screening, lipid check and annual check planned for the year, and what is done."""
    now = clock.now()
    patient = patient_for(session, key, patient_id, "care_plan.read", now, Role.EHR, Role.TEAM)
    record = reassessment.current_assessment(session, patient, pathway, clock)
    today = now.astimezone(pathway.tz).date()
    year = year or today.year
    history = care_plan.history_shown(session, patient, year, pathway.tz)
    plan = care_plan.plan_year(session, record, history, year, today, pathway.tz)
    session.commit()
    return CarePlanRead.model_validate(asdict(plan))
