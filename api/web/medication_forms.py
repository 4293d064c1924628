"""The team's medication forms read as the JSON API's inputs (PATHWAY.md §7): a visit's medication
answers as an :class:`~pathway.ingest.inbound.EncounterIn`, a prescription as a
:class:`~pathway.ingest.medication_in.PrescriptionIn`, validated by the same models, so a bad field
is the same error, naming the form's field (``supply_days``, not ``prescriptions.0.supply_days``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from pathway.clinical.errors import InvalidInput, PathwayError, from_validation
from pathway.ingest.inbound import EncounterIn, ItemError
from pathway.ingest.medication_in import PrescriptionIn, PrescriptionItemResult, StopIn

_BATCH_FIELD = "prescriptions.0."


def validated(model: type[BaseModel], values: dict[str, Any]) -> Any:
    """``values`` as ``model``, or the first validation error naming its field."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise from_validation(first, field) from None


def blank(form: dict[str, str], name: str) -> str | None:
    value = (form.get(name) or "").strip()
    return value or None


def visit_in(form: dict[str, str], zone: ZoneInfo) -> EncounterIn:
    text = blank(form, "at")
    try:
        at = datetime.fromisoformat(text or "")
    except ValueError:
        raise InvalidInput("at must be a date and time", "at") from None
    adverse = {"yes": True, "no": False}.get(form.get("adverse_reaction") or "")
    values = {
        "at": at if at.tzinfo is not None else at.replace(tzinfo=zone),
        "source_encounter_id": blank(form, "source_encounter_id"),
        "medications_reviewed": form.get("medications_reviewed") == "on",
        "adherence": blank(form, "adherence"),
        "adverse_reaction": adverse,
        "adverse_reaction_text": blank(form, "adverse_reaction_text"),
    }
    visit: EncounterIn = validated(EncounterIn, values)
    if not visit.medications_reviewed and visit.adherence is None and visit.adverse_reaction is None:
        raise InvalidInput("record the medication reviewed, an adherence or an adverse reaction", "adherence")
    return visit


def prescription_in(form: dict[str, str], source_id: str) -> PrescriptionIn:
    chosen = blank(form, "classes")
    values = {
        "source_prescription_id": source_id,
        "classes": [chosen] if chosen else [],
        "atc": blank(form, "atc"),
        "drug": blank(form, "drug") or "",
        "dose": blank(form, "dose"),
        "started_on": blank(form, "started_on") or "",
        "supply_days": blank(form, "supply_days") or "",
    }
    prescription: PrescriptionIn = validated(PrescriptionIn, values)
    return prescription


class _ItemRejected(PathwayError):
    """A prescription item the use-case rejected, raised as its own error."""

    status = 422

    def __init__(self, code: str, detail: str, field: str | None) -> None:
        super().__init__(detail, field)
        self.code = code


def stored(result: PrescriptionItemResult) -> bool:
    """Whether a prescription item was stored (a rejected one raises its error, field unprefixed)."""
    if result.status == "rejected":
        error: ItemError | None = result.error
        assert error is not None
        field = error.field.removeprefix(_BATCH_FIELD) if error.field else None
        raise _ItemRejected(error.code, error.message, field)
    return bool(result.status in ("created", "updated"))


def stop_in(form: dict[str, str]) -> StopIn:
    stop: StopIn = validated(StopIn, {"stopped_on": blank(form, "stopped_on") or ""})
    return stop
