"""``pathway keys`` and ``pathway teams``: API keys (create, revoke, list) and GP teams (create, list)."""

from __future__ import annotations

import sys
from datetime import datetime

from pathway.cli.serve import _migrate, _settings


def _create_key(role: str, name: str, team: str | None, source_system: str | None = None) -> int:
    from sqlmodel import Session

    from pathway.access import permissions
    from pathway.clinical.clock import SystemClock
    from pathway.store.db import make_engine

    settings = _settings()
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        key, plaintext = permissions.create_key(
            session,
            permissions.Role(role),
            name,
            SystemClock(settings.tz).now(),
            team_code=team,
            source_system=source_system,
        )
        session.commit()
        print(
            f"created {role} key #{key.id} ({key.prefix}, source system {key.source_system}) for {name};"
            " store it now, it is not shown again (stdout: the key id, a tab, the key):",
            file=sys.stderr,
        )
    engine.dispose()
    print(f"{key.id}\t{plaintext}")
    return 0


def _list_keys() -> int:
    """``pathway keys list``: one tab-separated line a key, with a header; the secret is never stored."""
    from sqlmodel import Session

    from pathway.access import permissions
    from pathway.store.db import make_engine

    settings = _settings()
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        keys = permissions.list_keys(session)
    engine.dispose()

    def when(at: datetime | None) -> str:
        return at.astimezone(settings.tz).isoformat(timespec="minutes") if at else "-"

    print("id\tprefix\trole\tteam\tname\tcreated\trevoked")
    for key in keys:
        fields = (key.id, key.prefix, key.role, key.team_code or "-", key.name)
        print("\t".join(str(f) for f in fields) + f"\t{when(key.created_at)}\t{when(key.revoked_at)}")
    return 0


def _list_teams() -> int:
    """``pathway teams list``: one tab-separated line a team, with a header."""
    from sqlmodel import Session

    from pathway.access import permissions
    from pathway.store.db import make_engine

    settings = _settings()
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        teams = permissions.list_teams(session)
    engine.dispose()
    print("id\tcode\tlevel\ttimezone\tname")
    for team in teams:
        print(f"{team.id}\t{team.code}\t{team.institution_level}\t{team.timezone}\t{team.name}")
    return 0


def _revoke_key(prefix: str) -> int:
    from sqlmodel import Session

    from pathway.access import permissions
    from pathway.clinical.clock import SystemClock
    from pathway.store.db import make_engine

    settings = _settings()
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        key = permissions.revoke_key(
            session, prefix.removeprefix(permissions.KEY_PREFIX), SystemClock(settings.tz).now()
        )
        session.commit()
        print(f"revoked {key.role} key #{key.id} ({key.prefix}) of {key.name}")
    engine.dispose()
    return 0


def _create_team(code: str, name: str, level: str) -> int:
    from sqlmodel import Session

    from pathway.access import permissions
    from pathway.store.db import make_engine

    settings = _settings()
    _migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        team = permissions.create_team(session, code, name, level)
        session.commit()
        print(f"team #{team.id} {code} ({level})")
    engine.dispose()
    return 0
