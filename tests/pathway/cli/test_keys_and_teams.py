"""`pathway keys create | list` and `pathway teams list`: the key id a gateway link needs is on stdout
with the key; the lists show every key and team, never a secret."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from pathway.cli import main
from pathway.store.db import make_engine, migrate
from pathway.store.work_tables import ApiKey
from tests.conftest import DIALECTS, database


@pytest.fixture(params=DIALECTS)
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    url = database(request, request.param)
    migrate(url)
    monkeypatch.setenv("PATHWAY_DATABASE_URL", url)
    return url


def _rows(out: str) -> list[list[str]]:
    return [line.split("\t") for line in out.splitlines()]


def test_a_new_keys_id_is_printed_on_stdout_with_the_key(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "--role", "gateway", "--name", "band gateway"]) == 0
    out = capsys.readouterr().out
    [[key_id, key]] = _rows(out)
    engine = make_engine(store)
    with Session(engine) as session:
        stored = session.get(ApiKey, int(key_id))
        assert stored is not None
        assert key.startswith(f"pw_{stored.prefix}_")
        assert stored.role == "gateway"
    engine.dispose()


def test_keys_list_shows_every_key_with_its_team_and_never_the_secret(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["teams", "create", "jimo-01", "--name", "即墨 家庭医生团队 1", "--level", "home"]) == 0
    assert main(["keys", "create", "--role", "team", "--team", "jimo-01", "--name", "团队 1"]) == 0
    assert main(["keys", "create", "--role", "ehr", "--name", "his"]) == 0
    created = [row for row in _rows(capsys.readouterr().out) if len(row) == 2]
    prefix = created[1][1].removeprefix("pw_").split("_")[0]
    assert main(["keys", "revoke", prefix]) == 0
    capsys.readouterr()
    assert main(["keys", "list"]) == 0
    out = capsys.readouterr().out
    header, team_key, ehr_key = _rows(out)
    assert header == ["id", "prefix", "role", "team", "name", "created", "revoked"]
    assert team_key[0] == created[0][0]
    assert team_key[2:5] == ["team", "jimo-01", "团队 1"]
    assert team_key[6] == "-"
    assert ehr_key[1:5] == [prefix, "ehr", "-", "his"]
    assert ehr_key[5].startswith("20")
    assert ehr_key[6].startswith("20")  # revoked, when
    for _key_id, key in created:
        assert key.split("_", 2)[2] not in out  # no secret


def test_teams_list_shows_every_team(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["teams", "list"]) == 0
    assert _rows(capsys.readouterr().out) == [["id", "code", "level", "timezone", "name"]]
    assert main(["teams", "create", "jimo-01", "--name", "即墨 家庭医生团队 1", "--level", "home"]) == 0
    assert main(["teams", "create", "jimo-c", "--name", "即墨 三高中心", "--level", "center"]) == 0
    capsys.readouterr()
    assert main(["teams", "list"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [row[1:] for row in rows[1:]] == [
        ["jimo-01", "home", "Asia/Shanghai", "即墨 家庭医生团队 1"],
        ["jimo-c", "center", "Asia/Shanghai", "即墨 三高中心"],
    ]
