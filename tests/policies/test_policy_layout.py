"""The checks folder follows the conventions: one check per file, named by its ID, documented, fixtured."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mailstrata.policies import CHECK_IDS, CHECKS_DIR

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
CHECK_FILES = sorted(p for p in CHECKS_DIR.glob("*.py") if p.name != "__init__.py")


def _check_id(path: Path) -> str:
    ids = set(re.findall(r'\bid=(?:"(CKV_MAILSTRATA_\d+)"|CHECK_ID)', path.read_text()))
    constant = re.search(r'^CHECK_ID = "(CKV_MAILSTRATA_\d+)"$', path.read_text(), re.MULTILINE)
    found = {i for i in ids if i} | ({constant[1]} if constant else set())
    assert len(found) == 1, f"{path.name}: expected one check ID, found {sorted(found)}"
    return found.pop()


def test_checks_dir_is_a_package_for_checkovs_loader() -> None:
    assert (CHECKS_DIR / "__init__.py").is_file()


def test_one_file_per_check_id() -> None:
    assert sorted(_check_id(p) for p in CHECK_FILES) == sorted(CHECK_IDS)


@pytest.mark.parametrize("path", CHECK_FILES, ids=lambda p: p.name)
def test_file_named_by_id(path: Path) -> None:
    assert path.name.startswith(_check_id(path).lower() + "_")


@pytest.mark.parametrize("path", CHECK_FILES, ids=lambda p: p.name)
def test_docstring_states_outcomes(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert docstring.startswith(_check_id(path) + ": ")
    for outcome in ("- PASS:", "- FAIL:", "- Not applicable (UNKNOWN):"):
        assert outcome in docstring, f"{path.name}: docstring lacks {outcome!r}"


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_each_check_has_pass_and_fail_fixture(check_id: str) -> None:
    assert (FIXTURES / check_id / "pass.tf.json").is_file()
    assert (FIXTURES / check_id / "fail.tf.json").is_file()


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_each_check_is_in_the_docs_table(check_id: str) -> None:
    docs = (REPO / "docs" / "policies.md").read_text()
    anchor = f'<a id="{check_id.lower()}"></a>'  # the target of the check's guideline link
    row = rf"^\| {re.escape(anchor)}`{check_id}` \|"
    assert re.search(row, docs, re.MULTILINE), f"{check_id} has no row (with anchor) in docs/policies.md"
