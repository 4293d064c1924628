"""A synthetic county for ``pathway demo``: GP teams, patients and ~18 months of their care.

Pure (no database, no clock of its own): :func:`county` yields, patient by patient, what an EHR, a
laboratory system and a wearable gateway would have sent — :class:`~pathway.ingest.inbound.PatientIn`,
:class:`~pathway.ingest.inbound.EncounterIn` and batches of :class:`~pathway.ingest.inbound.ReadingIn`
— and ``pathway demo`` stores them through :mod:`pathway.patients.service`, so everything is validated
and assessed exactly as the API would do it. Each patient is drawn by
:class:`~pathway.demo.patient_plan.PatientPlan`; every number of the county's distribution
(prevalences, value bands, intervals, shares) is data — ``county.yaml`` beside this module, read by
:mod:`pathway.demo.spec` — and none decides anything: the rule pack judges the values like any others.

Deterministic: patient ``i`` of seed ``s`` is the same whatever the county's size, and its ids are
fixed: loading a county twice stores nothing new. Times are relative to ``now`` (the demo's clock).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pathway.demo.patient_plan import DemoPatient, PatientPlan
from pathway.demo.spec import CountySpec


def county(spec: CountySpec, size: int, seed: int, now: datetime, tz: ZoneInfo) -> Iterator[DemoPatient]:
    """The county's patients 0 … size−1, one at a time (each drawn independently of the others)."""
    for index in range(size):
        yield PatientPlan(spec, seed, index, now, tz).build()


# --- What the load did, and where to look -----------------------------------------------------------


@dataclass
class LoadTally:
    """Counts of one load, for the summary ``pathway demo`` prints."""

    patients: int = 0
    created: int = 0
    encounters: int = 0
    readings: int = 0
    prescriptions: int = 0
    duplicates: int = 0
    rejected: list[str] = field(default_factory=list)
    assessments: int = 0
    tiers: Counter[str] = field(default_factory=Counter)
    scenarios: Counter[str] = field(default_factory=Counter)
    teams: Counter[str] = field(default_factory=Counter)  # patients by team code
    red_patient: dict[str, int] = field(default_factory=dict)  # team code -> a red patient's id

    def patient(self, plan: DemoPatient, patient_id: int, created: bool, tier: str | None) -> None:
        self.patients += 1
        self.created += created
        self.teams[plan.team_code] += 1
        if plan.scenario is not None:
            self.scenarios[plan.scenario.value] += 1
        if tier is not None:
            self.tiers[tier] += 1
            if tier == "red":
                self.red_patient.setdefault(plan.team_code, patient_id)


@dataclass(frozen=True)
class TeamKey:
    team_id: int
    code: str
    name: str
    level: str
    patients: int
    key: str


def where_to_look(
    *,
    base_url: str,
    database_url: str,
    today: date,
    teams: Sequence[TeamKey],
    ehr_key: str,
    red_patient: dict[str, int],
) -> list[str]:
    """The lines that tell a visitor how to serve the demo and what to open (keys included)."""
    since = today.replace(year=today.year - 1, day=1)  # the indicators of the last twelve months or so
    lines = [
        "Serve it (another terminal; same database):",
        f"  PATHWAY_DATABASE_URL={database_url} .venv/bin/pathway serve",
        f"  interactive docs: {base_url}/docs  (Authorize with one of the keys below)",
        "",
        "API keys (shown once; send as 'Authorization: Bearer <key>'):",
        f"  ehr (all patients)  {ehr_key}",
    ]
    lines += [f"  team {t.code:<14} {t.key}" for t in teams]
    for t in teams:
        lines += [
            "",
            f"{t.name} ({t.level}, team {t.team_id}, {t.patients:,} patients):",
            f"  daily list  {base_url}/v1/teams/{t.team_id}/tasks?date={today.isoformat()}",
            f"  indicators  {base_url}/v1/teams/{t.team_id}/indicators"
            f"?from={since.isoformat()}&to={today.isoformat()}",
        ]
        if t.code in red_patient:
            lines.append(f"  a red patient  {base_url}/v1/patients/{red_patient[t.code]}")
    if teams:
        first = teams[0]
        lines += [
            "",
            "For example:",
            f"  curl -H 'Authorization: Bearer {first.key}' "
            f"'{base_url}/v1/teams/{first.team_id}/tasks?date={today.isoformat()}'",
        ]
    return lines
