"""Authenticated keys are remembered for a bounded time; a wrong secret is never accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from pathway.access import permissions
from pathway.access.permissions import KeyCache, Role, Unauthenticated
from pathway.cli import main
from pathway.store.db import make_engine, migrate
from tests.builders import AS_OF


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrate(url)
    return url


def _key(session: Session, role: Role = Role.EHR) -> tuple[str, str]:
    key, plaintext = permissions.create_key(session, role, "his-1", AS_OF)
    session.commit()
    return key.prefix, plaintext


def test_a_revoked_key_is_refused_once_the_cache_time_has_passed(store: str) -> None:
    ticks = Ticks()
    cache = KeyCache(ttl=15, monotonic=ticks)
    with Session(make_engine(store)) as session:
        prefix, plaintext = _key(session)
        assert permissions.authenticate(session, plaintext, cache).role is Role.EHR
        permissions.revoke_key(session, prefix, AS_OF)
        session.commit()
        ticks.now = 14.9
        assert permissions.authenticate(session, plaintext, cache).prefix == prefix  # still trusted
        ticks.now = 15.1
        with pytest.raises(Unauthenticated):
            permissions.authenticate(session, plaintext, cache)


def test_a_cached_prefix_with_a_wrong_secret_is_refused(store: str) -> None:
    cache = KeyCache(ttl=15, monotonic=Ticks())
    with Session(make_engine(store)) as session:
        prefix, plaintext = _key(session)
        permissions.authenticate(session, plaintext, cache)
        with pytest.raises(Unauthenticated):
            permissions.authenticate(session, f"pw_{prefix}_not-the-secret", cache)


def test_without_a_cache_time_every_request_asks_the_database(store: str) -> None:
    cache = KeyCache(ttl=0)
    with Session(make_engine(store)) as session:
        prefix, plaintext = _key(session)
        permissions.authenticate(session, plaintext, cache)
        assert cache.key(prefix) is None
        permissions.revoke_key(session, prefix, AS_OF)
        session.commit()
        with pytest.raises(Unauthenticated):
            permissions.authenticate(session, plaintext, cache)


def test_pathway_keys_revoke_revokes_by_prefix(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATHWAY_DATABASE_URL", store)
    with Session(make_engine(store)) as session:
        prefix, plaintext = _key(session, Role.GATEWAY)
    assert main(["keys", "revoke", f"pw_{prefix}"]) == 0
    assert "revoked gateway key" in capsys.readouterr().out
    with Session(make_engine(store)) as session, pytest.raises(Unauthenticated):
        permissions.authenticate(session, plaintext)
    assert main(["keys", "revoke", "nosuchprefix"]) == 2
