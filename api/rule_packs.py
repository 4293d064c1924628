"""The rule packs and versions this server holds."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from pydantic import BaseModel

from api.deps import CurrentKey
from pathway.patients.reassessment import PathwayConfig
from rules.registry import PackRegistry

router = APIRouter(prefix="/v1/rule-packs", tags=["rule-packs"])


class RulePackRead(BaseModel):
    id: str
    version: str
    effective_from: date
    sha256: str
    rules: int
    schedules: int
    title_zh: str
    title_en: str


@router.get("", response_model=list[RulePackRead], operation_id="rule-packs-list")
def list_rule_packs(request: Request, _key: CurrentKey) -> list[RulePackRead]:
    """Every edition of the pack this server assesses with (`PATHWAY_PACK_ID`), oldest first; the
    newest effective edition is the one in force."""
    registry: PackRegistry = request.app.state.registry
    config: PathwayConfig = request.app.state.pathway
    return [
        RulePackRead(
            id=p.pack.id,
            version=p.pack.version,
            effective_from=p.pack.effective_from,
            sha256=p.sha256,
            rules=len(p.pack.rules),
            schedules=len(p.pack.schedules),
            title_zh=p.pack.title.zh,
            title_en=p.pack.title.en,
        )
        for p in registry.all()
        if p.pack.id == config.pack.id
    ]
