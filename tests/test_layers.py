"""Which layer may import which. The store saves and loads; it does not run the
engine: nothing under `core/store/` imports `core.engine` or `core.backends`
(judging lives in the application layer, `core.service`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "core" / "store"
NOT_IN_THE_STORE = ("core.engine", "core.backends")


def imported_modules(source: str, module: str) -> set[str]:
    """Every module that `source` (the text of module `module`) imports, absolute,
    each `from a import b` counted as both `a` and `a.b`."""
    package = module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join([*base, *([node.module] if node.module else [])])
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


def forbidden(imports: set[str]) -> set[str]:
    return {name for name in imports for banned in NOT_IN_THE_STORE
            if name == banned or name.startswith(banned + ".")}


def store_modules() -> list[Path]:
    return sorted(STORE.rglob("*.py"))


@pytest.mark.parametrize("path", store_modules(), ids=lambda p: str(p.relative_to(STORE)))
def test_the_store_imports_neither_the_engine_nor_a_backend(path):
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    assert forbidden(imported_modules(path.read_text(), module)) == set()


def test_the_check_finds_every_form_of_import():
    """So that the rule above cannot pass by not seeing an import."""
    module = "core.store.example"
    for line in ["import core.engine", "import core.backends.transformers as t",
                 "from core.engine import Judge", "from core import engine",
                 "from core import backends", "from ..engine import Judge",
                 "from .. import backends", "from core.backends.scripted import X",
                 "def f():\n    from core.engine import Judge"]:
        assert forbidden(imported_modules(line, module)), line
    for line in ["import core.types", "from core.store.batch import JudgeSetup",
                 "from . import batch", "from core import types", "from core.engines import x"]:
        assert not forbidden(imported_modules(line, module)), line
    assert store_modules(), "no store modules found"


FRONTS = [p for folder in ("webapp", "cli") for p in sorted((ROOT / folder).rglob("*.py"))]


@pytest.mark.parametrize("path", FRONTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_front_opens_a_database_session_itself(path):
    """The fronts call the application layer and the store's functions; a handler that
    opened a SQLAlchemy session would be the store's work done a second time."""
    names = imported_modules(path.read_text(), ".".join(
        path.relative_to(ROOT).with_suffix("").parts))
    assert not {"sqlalchemy.orm.Session", "sqlalchemy.orm.session.Session"} & names
