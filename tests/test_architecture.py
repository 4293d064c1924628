"""Import rules of the design card: the domain stays free of the engine, the API and the scheduler."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


DOMAIN = [p for p in sorted((ROOT / "pathway").glob("*.py")) if p.name not in ("cli.py", "__main__.py")]


PERSISTENCE = {
    "models.py",
    "db.py",
    "repository.py",
    "history_store.py",
    "task_store.py",
    "issuing_store.py",
    "contact_flag_store.py",
    "workbench_session_store.py",
    "patient_store.py",
    "run_claims.py",
    "tasks.py",
    "team_store.py",
    "team_views.py",
    "care_plan.py",
    "history_reads.py",
    "issuing.py",
    "service.py",
    "recording.py",
    "referrals.py",
    "access.py",
    "retention.py",
}


@pytest.mark.parametrize("path", DOMAIN, ids=[p.name for p in DOMAIN])
def test_the_domain_does_not_import_the_engine_api_or_scheduler(path: Path) -> None:
    forbidden = {"rules", "api", "scheduler", "durable", "durable_rules_engine", "fastapi"}
    if path.name not in PERSISTENCE:  # only the persistence modules know about the database
        forbidden |= {"sqlmodel", "sqlalchemy", "alembic", "psycopg"}
    assert _imports(path) & forbidden == set()


def test_only_the_engine_module_touches_durable_rules() -> None:
    users = [
        p.relative_to(ROOT).as_posix()
        for folder in ("pathway", "rules", "api", "scheduler", "bench")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if _imports(p) & {"durable", "durable_rules_engine"}
    ]
    assert users == ["rules/engine.py"]


def test_no_clinical_numbers_in_rule_conditions_code() -> None:
    """Thresholds live in the pack: the snapshot and assessment code holds no threshold literals."""
    suspicious = {
        180,
        110,
        140,
        90,
        130,
        80,
        150,
        16.7,
        33.3,
        3.9,
        3.0,
        7.0,
        10.0,
        4.9,
        5.6,
        11.3,
        2.6,
        1.8,
        1.4,
    }
    for path in DOMAIN:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        numbers = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        }
        assert numbers & suspicious == set(), path.name
