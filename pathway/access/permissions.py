"""API keys, roles and the audit trail.

Roles: ``admin`` (everything), ``ehr`` (register patients, post visits and readings, read all),
``team`` (read and act on its own team's patients only), ``gateway`` (post readings and symptoms
for the patients it is linked to, nothing else). A key is shown once when created; only its sha256
is stored. A refusal says nothing about the patient it concerns: a patient outside the key's team or
link is answered like one that does not exist (404).

Each key posts for one registered source system (``--source-system``; by default its own,
``key-<prefix>``): readings and visits are stored under it, so a reading's identity is
(patient, the key's system, source id). The sources of reading a role may post are data here
(:data:`SOURCES_BY_ROLE`): a gateway posts what patients measure themselves (home, wearable, CGM),
never a clinic or lab result.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, insert
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel, col, select

from pathway.access import session_store
from pathway.clinical.errors import InvalidInput, PathwayError
from pathway.clinical.vocabulary import ReadingSource
from pathway.store import db
from pathway.store.tables import Patient, Team
from pathway.store.work_tables import ApiKey, AuditEvent, GatewayLink

KEY_PREFIX = "pw_"
SOURCE_SYSTEM_LENGTH = 64  # the column's (api_key, reading, encounter)


class Role(StrEnum):
    ADMIN = "admin"
    EHR = "ehr"
    TEAM = "team"
    GATEWAY = "gateway"


class Unauthenticated(PathwayError):
    code = "unauthenticated"
    status = 401


class Forbidden(PathwayError):
    code = "forbidden"
    status = 403


class SourceNotAllowed(Forbidden):
    code = "source-not-allowed"


# The sources of reading each role may post (a team key posts none). A gateway relays what patients
# measure themselves; clinic and lab results come from the clinic's own systems.
SOURCES_BY_ROLE: dict[Role, frozenset[ReadingSource]] = {
    Role.ADMIN: frozenset(ReadingSource),
    Role.EHR: frozenset(ReadingSource),
    Role.GATEWAY: frozenset({ReadingSource.HOME, ReadingSource.WEARABLE, ReadingSource.CGM}),
    Role.TEAM: frozenset(),
}
# The source of a FHIR Observation that says none (no ``source`` parameter, no laboratory category).
DEFAULT_FHIR_SOURCE: dict[Role, ReadingSource] = {
    Role.ADMIN: ReadingSource.CLINIC,
    Role.EHR: ReadingSource.CLINIC,
    Role.GATEWAY: ReadingSource.WEARABLE,
    Role.TEAM: ReadingSource.CLINIC,
}


class NotYours(PathwayError):
    """A patient outside the key's team or gateway link: answered exactly like an id that does not
    exist (404, the same body), so a key cannot learn which ids exist. Routes about a task, a
    referral or a team answer it as their own unknown id."""

    code = "unknown-patient"
    status = 404


class UnknownTeam(PathwayError):
    code = "unknown-team"
    status = 422


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session,
    role: Role,
    name: str,
    now: datetime,
    team_code: str | None = None,
    source_system: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its plaintext (shown once). Team keys need a team. ``source_system``: the
    system it posts for (give a rotated key its predecessor's), by default ``key-<prefix>``."""
    if source_system is not None and not 0 < len(source_system) <= SOURCE_SYSTEM_LENGTH:
        raise InvalidInput(f"a source system has 1 to {SOURCE_SYSTEM_LENGTH} characters", "source_system")
    team_id = None
    if role is Role.TEAM:
        if team_code is None:
            raise UnknownTeam("a team key needs --team", "team")
        team_id = team_by_code(session, team_code).id
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        prefix=prefix,
        secret_sha256=_digest(secret),
        role=role.value,
        source_system=source_system or f"key-{prefix}",
        team_id=team_id,
        name=name,
        created_at=now,
    )
    db.add(session, key)
    return key, f"{KEY_PREFIX}{prefix}_{secret}"


@dataclass(frozen=True)
class Caller:
    """Who is calling: an active key's identity and role (a plain value, safe outside any session)."""

    id: int
    prefix: str
    role: Role
    team_id: int | None
    name: str
    source_system: str

    def may_post(self, source: ReadingSource) -> bool:
        return source in SOURCES_BY_ROLE[self.role]


def of_key(key: ApiKey) -> Caller:
    assert key.id is not None
    return Caller(
        id=key.id,
        prefix=key.prefix,
        role=Role(key.role),
        team_id=key.team_id,
        name=key.name,
        source_system=key.source_system,
    )


def require_source(caller: Caller, source: ReadingSource, field: str | None) -> None:
    """A key posts only the sources of reading its role may (:data:`SOURCES_BY_ROLE`), else 403."""
    if not caller.may_post(source):
        allowed = ", ".join(sorted(s.value for s in SOURCES_BY_ROLE[caller.role])) or "none"
        raise SourceNotAllowed(
            f"a {caller.role.value} key may not post {source.value} readings (only: {allowed})", field
        )


def posting_system(caller: Caller, named: str | None) -> str:
    """The source system a key's data is stored under: its registered one. An ehr or admin key may
    name another (it relays several systems); a gateway may not (403 naming ``source_system``)."""
    if named is None or named == caller.source_system:
        return caller.source_system
    if caller.role in (Role.ADMIN, Role.EHR):
        return named
    raise Forbidden(f"a {caller.role.value} key posts as its registered source system only", "source_system")


class KeyCache:
    """Authenticated keys and gateway links remembered for ``ttl`` seconds, per process.

    Saves a SELECT on every request. The price is bounded staleness: a key revoked (or a link
    removed) in the database stops working here within ``ttl``. ``ttl=0`` turns the cache off.
    Entries hold the stored digest, never the secret; a wrong secret is always refused.
    """

    def __init__(self, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, str, Caller]] = {}
        self._links: dict[tuple[int, int], float] = {}

    def key(self, prefix: str) -> tuple[str, Caller] | None:
        with self._lock:
            entry = self._keys.get(prefix)
        if entry is None or entry[0] < self._monotonic():
            return None
        return entry[1], entry[2]

    def remember_key(self, digest: str, caller: Caller) -> None:
        if self.ttl > 0:
            with self._lock:
                self._keys[caller.prefix] = (self._monotonic() + self.ttl, digest, caller)

    def linked(self, key_id: int, patient_id: int) -> bool:
        with self._lock:
            expiry = self._links.get((key_id, patient_id))
        return expiry is not None and expiry >= self._monotonic()

    def remember_link(self, key_id: int, patient_id: int) -> None:
        if self.ttl > 0:
            with self._lock:
                self._links[(key_id, patient_id)] = self._monotonic() + self.ttl

    def forget(self) -> None:
        with self._lock:
            self._keys.clear()
            self._links.clear()


NO_CACHE = KeyCache(ttl=0)


def authenticate(session: Session, presented: str | None, cache: KeyCache = NO_CACHE) -> Caller:
    """The active key behind ``presented`` (``pw_<prefix>_<secret>``), else 401."""
    if not presented or not presented.startswith(KEY_PREFIX):
        raise Unauthenticated("an API key is required (Authorization: Bearer pw_…)", "Authorization")
    prefix, _, secret = presented.removeprefix(KEY_PREFIX).partition("_")
    digest = _digest(secret)
    cached = cache.key(prefix)
    if cached is not None:
        stored, caller = cached
        if hmac.compare_digest(stored, digest):
            return caller
        raise Unauthenticated("unknown or revoked API key", "Authorization")
    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.secret_sha256, digest):
        raise Unauthenticated("unknown or revoked API key", "Authorization")
    caller = of_key(key)
    cache.remember_key(key.secret_sha256, caller)
    return caller


def require_role(caller: Caller, *roles: Role) -> None:
    if caller.role is not Role.ADMIN and caller.role not in roles:
        raise Forbidden(f"a {caller.role.value} key may not do this")


def require_patient(
    session: Session, caller: Caller, patient: Patient, *roles: Role, cache: KeyCache = NO_CACHE
) -> None:
    """The key may act on this patient in one of ``roles`` (team: own team; gateway: linked)."""
    require_role(caller, *roles)
    if (caller.role is Role.TEAM and (caller.team_id is None or patient.team_id != caller.team_id)) or (
        caller.role is Role.GATEWAY and not _linked(session, caller.id, patient, cache)
    ):
        raise NotYours(f"no patient with id {patient.id}", "patient_id")


# A Core statement built once (a gateway's post checks its link whenever the cache has no entry).
_link = SQLModel.metadata.tables[GatewayLink.__tablename__].c
_LINK = (
    select_columns(_link.id)
    .where(_link.api_key_id == bindparam("key_id"), _link.patient_id == bindparam("patient_id"))
    .limit(1)
)


def _linked(session: Session, key_id: int, patient: Patient, cache: KeyCache = NO_CACHE) -> bool:
    assert patient.id is not None
    if cache.linked(key_id, patient.id):
        return True
    parameters = {"key_id": key_id, "patient_id": patient.id}
    found = session.execute(_LINK, parameters).first() is not None
    if found:
        cache.remember_link(key_id, patient.id)
    return found


def link_gateway(session: Session, key_id: int, patient: Patient, now: datetime) -> None:
    gateway = session.get(ApiKey, key_id)
    if gateway is None or gateway.role != Role.GATEWAY.value or gateway.revoked_at is not None:
        raise InvalidInput("no active gateway key with that id", "api_key_id")
    if not _linked(session, key_id, patient):
        assert patient.id is not None
        db.add(session, GatewayLink(api_key_id=key_id, patient_id=patient.id, created_at=now))


# The table, not the ORM class: an ORM insert goes through bulk persistence and asks for RETURNING id.
_AUDIT = insert(SQLModel.metadata.tables[AuditEvent.__tablename__])


def audit(session: Session, caller: Caller, action: str, patient_id: int | None, now: datetime) -> None:
    """One audit row in the request's transaction (a cached Core INSERT: no ORM object)."""
    session.execute(_AUDIT, {"at": now, "api_key_id": caller.id, "action": action, "patient_id": patient_id})


def audit_new_versions(
    session: Session, caller: Caller, statuses: Iterable[str], patient_id: int, now: datetime
) -> None:
    """One audit row (``reading.amend`` / ``reading.retract``) per reading amended or retracted."""
    for status in statuses:
        if status in ("amended", "retracted"):
            action = "reading.amend" if status == "amended" else "reading.retract"
            audit(session, caller, action, patient_id, now)


def revoke_key(session: Session, prefix: str, now: datetime) -> ApiKey:
    """Revoke the key with this prefix (servers honour it within their key-cache time; its workbench
    sessions end at once)."""
    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if key is None:
        raise InvalidInput(f"no API key with prefix {prefix!r}", "prefix")
    if key.revoked_at is None:
        key.revoked_at = now
        db.add(session, key)
        assert key.id is not None
        session_store.end_sessions_of_key(session, key.id, now)
    return key


def team_by_code(session: Session, code: str) -> Team:
    team = session.exec(select(Team).where(Team.code == code)).first()
    if team is None:
        raise UnknownTeam(f"no team with code {code!r}", "team_code")
    return team


def create_team(session: Session, code: str, name: str, level: str) -> Team:
    team = Team(code=code, name=name, institution_level=level)
    db.add(session, team)
    return team


@dataclass(frozen=True)
class KeyListing:
    """What ``pathway keys list`` shows of a key: never the secret, nor its digest."""

    id: int
    prefix: str
    role: str
    team_code: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None


def list_keys(session: Session) -> list[KeyListing]:
    """Every API key, revoked ones too, oldest first, with its team's code."""
    keys = SQLModel.metadata.tables[ApiKey.__tablename__]
    teams = SQLModel.metadata.tables[Team.__tablename__]
    k, t = keys.c, teams.c
    statement = (
        select_columns(k.id, k.prefix, k.role, t.code, k.name, k.created_at, k.revoked_at)
        .select_from(keys.outerjoin(teams, t.id == k.team_id))
        .order_by(k.id)
    )
    return [KeyListing(*row) for row in session.execute(statement).all()]


def list_teams(session: Session) -> list[Team]:
    """Every GP team, in order of registration."""
    return list(session.exec(select(Team).order_by(col(Team.id))).all())


def has_any_key(session: Session) -> bool:
    return session.exec(select(ApiKey.id).limit(1)).first() is not None
