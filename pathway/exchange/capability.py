"""The CapabilityStatement of the read-out: exactly the resources, interactions and search
parameters served, given by the routes that serve them (so the statement cannot drift from them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pathway.exchange.fhir_resources import instant


@dataclass(frozen=True)
class SearchParameter:
    name: str
    type: str  # FHIR search parameter type: reference | token | date | number | string
    documentation: str


@dataclass(frozen=True)
class Served:
    """One resource type and what is served of it: ``read`` and/or ``search-type``."""

    resource_type: str
    interactions: tuple[str, ...]
    search_parameters: tuple[SearchParameter, ...] = ()


COUNT = SearchParameter("_count", "number", "entries a page (at most 200)")


def capability_statement(served: Sequence[Served], version: str, published: datetime) -> dict[str, Any]:
    """A server's CapabilityStatement (FHIR 4.0.1, JSON) listing ``served`` and nothing more."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(published),
        "kind": "instance",
        "software": {"name": "三高共管 care-pathway engine", "version": version},
        "implementation": {"description": "三高共管 pathway: FHIR R4 read-out"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "An API key of the JSON API (Authorization: Bearer pw_…, or X-API-Key); "
                    "roles ehr and team (a team key sees its own team's patients only)"
                },
                "resource": [
                    {
                        "type": item.resource_type,
                        "interaction": [{"code": code} for code in item.interactions],
                        **(
                            {
                                "searchParam": [
                                    {"name": p.name, "type": p.type, "documentation": p.documentation}
                                    for p in (*item.search_parameters, COUNT)
                                ]
                            }
                            if "search-type" in item.interactions
                            else {}
                        ),
                    }
                    for item in sorted(served, key=lambda s: s.resource_type)
                ],
            }
        ],
    }
