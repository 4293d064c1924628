"""``POST /v1/packs/impact``: the impact of a rule-pack change on the stored patients (admin only).

Synchronous: the run evaluates every stored patient twice inside the request (about 1,000 patients a
second in one process), so it suits a store of some thousands of patients; larger stores use
``pathway packs impact --workers N``, which spreads the run over processes and shows its progress.
On SQLite the run holds the process's turn at the store for its whole length. Nothing is stored, and
the answer holds counts only (no patient's data): ``pathway packs impact --csv`` lists who changes.
A candidate sent as YAML is compiled into a rule engine of its own for the request (durable_rules
keeps a compiled ruleset in memory, some hundreds of KB, until the server restarts).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from api.deps import ClockDep, CurrentKey, SessionDep
from api.editions import impact_editions
from api.errors import error_responses
from pathway.access.permissions import require_role
from pathway.clinical.clock import clinic_date
from pathway.clinical.errors import CandidatePackInvalid, InvalidRulePack
from pathway.editions.replay import measure_impact
from pathway.ingest.inbound import Text
from rules.evaluation import Evaluator
from rules.registry import DEFAULT_PACK_ID, PackRegistry, parse_pack

router = APIRouter(prefix="/v1/packs", tags=["rule-packs"])


class PackImpactRequest(BaseModel):
    """The candidate edition (its YAML text, or a registered version), the edition to compare it
    with (default: the one in force at ``as_of``) and the moment both evaluate (default: now)."""

    pack_yaml: Text | None = Field(default=None, description="the candidate pack, as a pack file's YAML text")
    pack_id: Text = Field(default=DEFAULT_PACK_ID, max_length=64, description="with pack_version")
    pack_version: Text | None = Field(default=None, max_length=64, description="a registered edition")
    against: Text | None = Field(default=None, max_length=64, description="the baseline edition's version")
    as_of: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_candidate(self) -> PackImpactRequest:
        if (self.pack_yaml is None) == (self.pack_version is None):
            raise ValueError("give either pack_yaml or pack_version")
        return self


class PackEditionRead(BaseModel):
    id: str
    version: str
    sha256: str


class RuleCountRead(BaseModel):
    before: int
    after: int
    delta: int


class ImpactTallyRead(BaseModel):
    patients: int
    changed: int
    tier_changed: int
    level_changed: int
    referral_changed: int
    follow_up_changed: int
    tier: dict[str, dict[str, int]] = Field(description="from → to → patients")
    level: dict[str, dict[str, int]]
    referral: dict[str, dict[str, int]] = Field(description="urgency (or none) from → to → patients")
    follow_up_days: dict[str, dict[str, int]]
    rules: dict[str, RuleCountRead] = Field(description="patients each rule fires for, before and after")
    rules_fire_more: list[str]
    rules_fire_less: list[str]
    tasks_gained: dict[str, int] = Field(description="patients gaining a task kind")
    tasks_lost: dict[str, int]


class PackImpactRead(BaseModel):
    baseline: PackEditionRead
    candidate: PackEditionRead
    as_of: datetime
    not_yet_born: int
    overall: ImpactTallyRead
    teams: dict[str, ImpactTallyRead] = Field(description="by team code")


@router.post(
    "/impact",
    response_model=PackImpactRead,
    operation_id="packs-impact",
    responses=error_responses(401, 403, 404, 413, 422, 429, 503),
)
def pack_impact(
    body: PackImpactRequest, request: Request, key: CurrentKey, session: SessionDep, clock: ClockDep
) -> PackImpactRead:
    """Every stored patient evaluated under the baseline and the candidate edition at ``as_of``:
    per team and overall, who changes tier, level, referral and follow-up interval (from → to), the
    rules that fire more or less and the task kinds gained and lost. Nothing is stored."""
    require_role(key)
    registry: PackRegistry = request.app.state.registry
    evaluator: Evaluator = request.app.state.evaluator
    tz = request.app.state.pathway.tz
    as_of = body.as_of or clock.now()
    if body.pack_yaml is not None:
        try:
            candidate = parse_pack(body.pack_yaml.encode(), Path("pack_yaml"))
        except InvalidRulePack as error:
            raise CandidatePackInvalid(error.detail, "pack_yaml") from None
    else:
        candidate = registry.get(body.pack_id, body.pack_version)
    editions = impact_editions(registry, candidate, body.against, clinic_date(as_of, tz), tz, evaluator)
    report = measure_impact(session, editions, as_of)
    return PackImpactRead.model_validate(report.to_json())
