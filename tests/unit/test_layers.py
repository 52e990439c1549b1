"""The package structure the README describes, checked on the source: layers point one
way, routers are HTTP only, one cursor decoder, no module too long to read."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
DOMAINS = {
    path.name
    for path in APP.iterdir()
    if path.is_dir() and (path / "__init__.py").exists() and path.name != "core"
}


def _modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(APP.parent)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(APP.rglob("*.py"))
    }


def _imports(tree: ast.Module) -> set[str]:
    """Every module a file imports from (``from a.b import c`` also counts ``a.b.c``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _domain(path: str) -> str:
    return path.split("/")[1]


def test_no_module_over_600_lines() -> None:
    long = {
        str(path.relative_to(APP.parent)): n
        for path in APP.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert long == {}


def test_no_router_imports_another_domains_router() -> None:
    crossing = {
        (path, name)
        for path, tree in _modules().items()
        for name in _imports(tree)
        if name.startswith("app.")
        and name.split(".")[-1].endswith("router")
        and name.split(".")[1] in DOMAINS
        and name.split(".")[1] != _domain(path)
        and path != "app/api.py"
    }
    assert crossing == set()


def test_identity_is_authentication_only() -> None:
    """identity uses no other domain's service or repository (the audit log's ``record``,
    which every domain writes through, aside); /me is composed in app/me."""
    allowed = {"app.audit.service.record"}
    others = DOMAINS - {"identity"}
    crossing = {
        (path, name)
        for path, tree in _modules().items()
        if _domain(path) == "identity"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for name in (f"{node.module}.{alias.name}" for alias in node.names)
        if name.split(".")[1] in others
        and {"service", "repository"} & set(name.split(".")[2:])
        and name not in allowed
    }
    assert crossing == set()


def test_organization_knows_no_member() -> None:
    crossing = {
        (path, name)
        for path, tree in _modules().items()
        if _domain(path) == "organization"
        for name in _imports(tree)
        if name.startswith("app.members")
    }
    assert crossing == set()


def test_routers_run_no_queries() -> None:
    """A router parses, calls its service and shapes the answer: it calls no repository
    function and runs no statement (types such as a filter it fills in may come from one)."""
    offending = set()
    for path, tree in _modules().items():
        if not path.endswith("router.py"):
            continue
        repositories = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
            if alias.name == "repository" or alias.name.endswith("_repository")
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in repositories:
                offending.add((path, f"{owner.id}.{node.func.attr}"))
            if node.func.attr in ("execute", "scalars", "scalar", "stream"):
                offending.add((path, node.func.attr))
    assert offending == set()


def test_one_cursor_decoder() -> None:
    """Cursors are decoded only by app.core.pagination.decode_cursor: no other module
    defines a function about cursors."""
    defining = {
        (path, node.name)
        for path, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "cursor" in node.name
    }
    assert {path for path, _ in defining} == {"app/core/pagination.py"}


def test_console_runs_no_queries() -> None:
    """The console is a second face of the services: no SQL, no repository function, no
    statement of its own (app/console/); what it reads comes through the services and
    the one scope module. A filter type it fills in may come from a repository module."""
    offending = set()
    for path, tree in _modules().items():
        if not path.startswith("app/console/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                offending.update(
                    (path, a.name)
                    for a in node.names
                    if a.name.startswith(("sqlalchemy", "asyncpg"))
                )
            elif isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith(("sqlalchemy", "asyncpg")):
                    offending.add((path, node.module))
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    from_repository = node.module.endswith("repository")
                    if alias.name.endswith("repository") or (
                        from_repository and not alias.name[:1].isupper()
                    ):
                        offending.add((path, name))
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "scalars", "scalar", "stream", "fetch")
            ):
                offending.add((path, node.func.attr))
    assert offending == set()
