"""The repository documents itself: the error table is the code's, and no link in the
README or docs/ leaves the repository or points at nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scripts import error_codes

ROOT = Path(__file__).resolve().parent.parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# A literal that names a code where errors are built: "outflow.already_active".
ERRORS_PY_CODE = re.compile(r"\"([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)\"")


def test_the_error_table_is_generated_from_the_code() -> None:
    document = error_codes.TARGET.read_text(encoding="utf-8")
    wanted = error_codes.updated(document, error_codes.render(error_codes.collect()))
    assert document == wanted, "docs/errors.md is stale: run `python -m scripts.error_codes`"


def test_every_code_of_an_errors_module_is_documented() -> None:
    """Independent of the generator: any code literal in app/**/errors.py is in the table."""
    documented = set(re.findall(r"^\| `([^`]+)` \|", error_codes.TARGET.read_text(), re.M))
    modules = sorted((ROOT / "app").rglob("errors.py"))
    assert len(modules) >= 10
    literals = {code for path in modules for code in ERRORS_PY_CODE.findall(path.read_text())}
    assert literals, "no codes found: has the errors.py convention changed?"
    assert literals <= documented, sorted(literals - documented)


def test_the_collector_reads_every_way_a_problem_is_built() -> None:
    codes = error_codes.collect()
    assert codes["outflow.already_active"].statuses == {409}  # AppError(code, status, detail)
    assert codes["order.not_found"].statuses == {404}  # not_found(code, detail)
    assert codes["auth.admin_required"].statuses == {403}  # forbidden(...)
    assert codes["auth.token_expired"].statuses == {401}  # unauthorized(detail, code)
    assert codes["outflow.invalid_transition"].statuses == {409}  # InvalidTransition
    assert codes["validation.failed"].statuses == {422}  # problem_response(...)
    assert codes["http.not_found"].statuses == {404}  # {status: (code, detail)}
    assert codes["import.unreadable"].details == ["文件无法读取，请确认文件未损坏"]
    assert codes["id_number.checksum"].kind == "field"
    assert codes["study.future_time"].kind == "result"
    assert codes["study.future_time"].details == ["打卡时间晚于服务器当前时间"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_links_stay_inside_the_repository(document: Path) -> None:
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        assert "://" not in target and not target.startswith("mailto:"), (
            f"{document.name} links outside the repository: {target}"
        )
        path = target.split("#", 1)[0]
        if not path:
            continue  # an anchor in the same page
        resolved = (document.parent / path).resolve()
        assert resolved.is_relative_to(ROOT), f"{document.name}: {target} leaves the repository"
        assert resolved.exists(), f"{document.name}: {target} does not exist"


def test_the_readme_leads_to_every_document() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for document in DOCUMENTS[1:]:
        assert f"](docs/{document.name})" in readme, f"README does not link {document.name}"


def test_every_scheduled_job_is_in_the_operations_guide() -> None:
    from app.notify.scheduler import REGISTRY

    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = [job.name for job in REGISTRY if f"`{job.name}`" not in guide]
    assert missing == [], f"add these jobs to the table in docs/operations.md: {missing}"
