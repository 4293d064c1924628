"""The layout's import contract (docs/adr/0004-layout.md): the folder tree is the architecture.

- ``pathway.clinical`` is pure: it imports nothing of ours outside itself, no database, web or engine.
- ``rules`` imports of the domain only ``pathway.clinical``; only ``rules/engine.py`` touches durable_rules.
- ``pathway.store`` (tables, engine, migrations, shared SQL pieces) imports only itself, the clinical
  core and the settings.
- A store module (``<what>_store.py``) is imported only by its own package, by ``pathway.store`` and by
  the composition roots; the routes that read one directly are listed below, and a new one fails.
- The domain (``pathway``) never imports ``api`` or ``scheduler``, and only the CLI imports ``rules``.
- No module of the product passes 400 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PRODUCT = ("pathway", "rules", "api", "scheduler")
MAX_LINES = 400

# Composition roots: they wire the packages together and may import anything.
COMPOSITION_ROOTS = ("pathway.cli", "api.main")

# Routes that read a store module of a package directly (thin read-only screens and their
# actions). Listed so that each is a decision; a new one fails the test. Shrink, never grow.
STORE_READS_BY_ROUTES = {
    # The patient's summary (newest assessment, active referral, shown flags), read by the API and
    # the patient page alike: a patients.summary use-case would remove these eight.
    ("api.patients", "pathway.patients.patient_store"),
    ("api.patients", "pathway.referrals.referral_store"),
    ("api.patients", "pathway.tasks.flag_store"),
    ("api.web.patient", "pathway.patients.patient_store"),
    ("api.web.patient", "pathway.referrals.referral_store"),
    ("api.web.patient", "pathway.tasks.flag_store"),
    ("api.web.patient", "pathway.patients.display_store"),
    ("api.web.patient", "pathway.teams.team_store"),
    ("api.referrals", "pathway.referrals.referral_store"),  # a referral by id, a patient's referrals
    ("api.web.actions", "pathway.teams.team_store"),  # the team of a form's task (team_by_id)
    ("api.web.pages", "pathway.teams.team_store"),  # the team of a page (team_by_id)
    ("api.web.pages", "pathway.tasks.issuing_store"),  # the teams an admin may pick (teams)
    ("api.web.dashboard", "pathway.teams.indicator_store"),  # the dashboard's counts, computed off
    ("api.web.dashboard", "pathway.teams.team_store"),  # the request and cached
    ("api.web.dashboard_page", "pathway.teams.indicator_store"),
    ("api.web.session", "pathway.access.session_store"),  # the workbench's sessions: cookies are web
    ("scheduler.jobs", "pathway.tasks.issuing_store"),  # the time zones the runs are scheduled in
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _product_modules() -> Iterator[Path]:
    for folder in PRODUCT:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


MODULES = {_module_name(path): path for path in _product_modules()}


def _imports(path: Path) -> set[str]:
    """Every module path this file imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _ours(names: set[str]) -> set[str]:
    """The imported names that are modules of ours (a name imported from a module drops out)."""
    return {name for name in names if name in MODULES}


def _roots(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _in(prefix: str) -> list[str]:
    return sorted(name for name in MODULES if _under(name, prefix))


def _is_store(name: str) -> bool:
    return name.rsplit(".", 1)[-1].endswith("_store")


def _package(name: str) -> str:
    return name.rsplit(".", 1)[0]


@pytest.mark.parametrize("module", _in("pathway.clinical"))
def test_the_clinical_core_imports_nothing_of_ours_but_itself(module: str) -> None:
    imported = _imports(MODULES[module])
    ours = {name for name in imported if _roots({name}) & set(PRODUCT)}
    assert {name for name in ours if not _under(name, "pathway.clinical")} == set()
    foreign = {"sqlmodel", "sqlalchemy", "alembic", "psycopg", "fastapi", "starlette", "durable"}
    assert _roots(imported) & foreign == set()


@pytest.mark.parametrize("module", _in("rules"))
def test_rules_read_the_domain_only_through_the_clinical_core(module: str) -> None:
    ours = _ours(_imports(MODULES[module]))
    outside = {name for name in ours if not (_under(name, "rules") or _under(name, "pathway.clinical"))}
    assert outside == set()


@pytest.mark.parametrize("module", _in("pathway.store"))
def test_the_store_imports_only_itself_the_clinical_core_and_settings(module: str) -> None:
    ours = _ours(_imports(MODULES[module]))
    allowed = ("pathway.store", "pathway.clinical", "pathway.settings")
    assert {name for name in ours if not any(_under(name, a) for a in allowed)} == set()


def _store_imports() -> set[tuple[str, str]]:
    found = set()
    for module, path in MODULES.items():
        if any(_under(module, root) for root in COMPOSITION_ROOTS) or _under(module, "pathway.store"):
            continue
        for name in _ours(_imports(path)):
            if _is_store(name) and not _under(module, _package(name)):
                found.add((module, name))
    return found


def test_a_store_is_imported_only_by_its_own_package() -> None:
    found = _store_imports()
    in_domain = {(module, store) for module, store in found if _under(module, "pathway")}
    assert in_domain == set(), "a use-case reads another package's SQL: call that package's use-case"
    assert found - STORE_READS_BY_ROUTES == set(), "a new route reads a store directly"
    assert STORE_READS_BY_ROUTES - found == set(), "an allowed route no longer does: shrink the list"


@pytest.mark.parametrize("module", _in("pathway"))
def test_the_domain_never_imports_the_api_or_the_scheduler(module: str) -> None:
    if _under(module, "pathway.cli"):
        return  # the composition root wires the API, the scheduler and the engine together
    assert _roots(_imports(MODULES[module])) & {"api", "scheduler", "rules"} == set()


def test_only_the_engine_module_touches_durable_rules() -> None:
    users = [
        p.relative_to(ROOT).as_posix()
        for folder in (*PRODUCT, "bench")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if _roots(_imports(p)) & {"durable", "durable_rules_engine"}
    ]
    assert users == ["rules/engine.py"]


def test_no_module_passes_400_lines() -> None:
    long = {
        name: count
        for name, path in MODULES.items()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_package_of_the_domain_says_what_it_holds() -> None:
    for path in sorted((ROOT / "pathway").glob("*/__init__.py")):
        if "migrations" in path.parts:
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert docstring is not None, path.parent.name
        assert len(docstring) > 40, path.parent.name


DOMAIN = [
    path for name, path in MODULES.items() if _under(name, "pathway") and not _under(name, "pathway.cli")
]


def test_no_clinical_numbers_in_rule_conditions_code() -> None:
    """Thresholds live in the pack: the domain's code holds no threshold literals."""
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
