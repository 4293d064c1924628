"""API keys, roles and the audit trail.

Roles: ``admin`` (everything), ``ehr`` (register patients, post visits and readings, read all),
``team`` (read and act on its own team's patients only), ``gateway`` (post readings and symptoms
for the patients it is linked to, nothing else). A key is shown once when created; only its sha256
is stored. A refusal says nothing about the patient it concerns.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, select

from pathway import repository
from pathway.errors import InvalidInput, PathwayError
from pathway.models import ApiKey, AuditEvent, GatewayLink, Patient, Team

KEY_PREFIX = "pw_"


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


class UnknownTeam(PathwayError):
    code = "unknown-team"
    status = 422


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session, role: Role, name: str, now: datetime, team_code: str | None = None
) -> tuple[ApiKey, str]:
    """A new key and its plaintext (shown once). Team keys need a team."""
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
        team_id=team_id,
        name=name,
        created_at=now,
    )
    repository.add(session, key)
    return key, f"{KEY_PREFIX}{prefix}_{secret}"


def authenticate(session: Session, presented: str | None) -> ApiKey:
    """The active key behind ``presented`` (``pw_<prefix>_<secret>``), else 401."""
    if not presented or not presented.startswith(KEY_PREFIX):
        raise Unauthenticated("an API key is required (Authorization: Bearer pw_…)", "Authorization")
    prefix, _, secret = presented.removeprefix(KEY_PREFIX).partition("_")
    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if (
        key is None
        or key.revoked_at is not None
        or not hmac.compare_digest(key.secret_sha256, _digest(secret))
    ):
        raise Unauthenticated("unknown or revoked API key", "Authorization")
    return key


def require_role(key: ApiKey, *roles: Role) -> None:
    if Role(key.role) is not Role.ADMIN and Role(key.role) not in roles:
        raise Forbidden(f"a {key.role} key may not do this")


def require_patient(session: Session, key: ApiKey, patient: Patient, *roles: Role) -> None:
    """The key may act on this patient in one of ``roles`` (team: own team; gateway: linked)."""
    require_role(key, *roles)
    role = Role(key.role)
    if role is Role.TEAM and (key.team_id is None or patient.team_id != key.team_id):
        raise Forbidden("this patient is not in your team")
    if role is Role.GATEWAY and not _linked(session, key, patient):
        raise Forbidden("this gateway is not linked to the patient")


def _linked(session: Session, key: ApiKey, patient: Patient) -> bool:
    statement = select(GatewayLink.id).where(
        GatewayLink.api_key_id == key.id, GatewayLink.patient_id == patient.id
    )
    return session.exec(statement).first() is not None


def link_gateway(session: Session, key_id: int, patient: Patient, now: datetime) -> None:
    gateway = session.get(ApiKey, key_id)
    if gateway is None or gateway.role != Role.GATEWAY.value or gateway.revoked_at is not None:
        raise InvalidInput("no active gateway key with that id", "api_key_id")
    if not _linked(session, gateway, patient):
        assert patient.id is not None
        repository.add(session, GatewayLink(api_key_id=key_id, patient_id=patient.id, created_at=now))


def audit(session: Session, key: ApiKey, action: str, patient_id: int | None, now: datetime) -> None:
    assert key.id is not None
    session.add(AuditEvent(at=now, api_key_id=key.id, action=action, patient_id=patient_id))


def team_by_code(session: Session, code: str) -> Team:
    team = session.exec(select(Team).where(Team.code == code)).first()
    if team is None:
        raise UnknownTeam(f"no team with code {code!r}", "team_code")
    return team


def create_team(session: Session, code: str, name: str, level: str) -> Team:
    team = Team(code=code, name=name, institution_level=level)
    repository.add(session, team)
    return team


def has_any_key(session: Session) -> bool:
    return session.exec(select(ApiKey.id)).first() is not None
