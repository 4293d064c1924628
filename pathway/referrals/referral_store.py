"""SQL of referrals: a patient's active one, the latest returned (下转) from a rule, by id, all.

Part of the repository layer: functions take a Session and never commit: the request, job or
command owns the transaction (:mod:`pathway.referrals.referral_flow` is its use-case).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from pathway.store.sql import among
from pathway.store.tables import Referral


def active_referral(session: Session, patient_id: int, statuses: Sequence[str]) -> Referral | None:
    statement = (
        select(Referral)
        .where(Referral.patient_id == patient_id, col(Referral.status).in_(statuses))
        .order_by(col(Referral.created_at).desc())
        .limit(1)
    )
    return session.exec(statement).first()


def active_referrals(
    session: Session, patient_ids: Sequence[int], statuses: Sequence[str]
) -> dict[int, Referral]:
    """:func:`active_referral` of each of ``patient_ids`` that has one, in one statement."""
    statement = (
        select(Referral)
        .where(among(session, col(Referral.patient_id), patient_ids), col(Referral.status).in_(statuses))
        .order_by(col(Referral.created_at), col(Referral.id))
    )
    return {referral.patient_id: referral for referral in session.exec(statement)}  # the newest wins


def latest_returned_referral(session: Session, patient_id: int, rule_id: str) -> Referral | None:
    """The patient's referral from ``rule_id`` returned (下转) most recently, if any."""
    statement = (
        select(Referral)
        .where(
            Referral.patient_id == patient_id,
            Referral.rule_id == rule_id,
            col(Referral.returned_at).is_not(None),
        )
        .order_by(col(Referral.returned_at).desc())
        .limit(1)
    )
    return session.exec(statement).first()


def referral_by_id(session: Session, referral_id: int) -> Referral | None:
    return session.get(Referral, referral_id)


def referrals_of(session: Session, patient_id: int) -> Sequence[Referral]:
    statement = (
        select(Referral).where(Referral.patient_id == patient_id).order_by(col(Referral.created_at).desc())
    )
    return session.exec(statement).all()
