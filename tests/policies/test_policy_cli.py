"""The checks through checkov's CLI, as `make scan` runs them: `-d <stack dir>` and `-f <file>`.

These also prove that checkov, loading the checks by path, can import `mailstrata.policies` (the package
is installed editable in the venv): the runs start outside the repository.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mailstrata.policies import CHECK_IDS, CHECKS_DIR

if TYPE_CHECKING:
    from tests.policies.conftest import CliRun

CliFn = Callable[[list[str], Path], "CliRun"]
FixtureFn = Callable[[str, str], Path]
REPO = Path(__file__).resolve().parents[2]
BASE_ARGS = ["--framework", "terraform_json", "--skip-download"]


def _stack_dir(tmp_path: Path, fixture: Path) -> Path:
    """Lay a fixture out as cdktf does: cdktf.out/stacks/<stack>/cdk.tf.json."""
    stack = tmp_path / "cdktf.out" / "stacks" / "mail"
    stack.mkdir(parents=True)
    shutil.copy(fixture, stack / "cdk.tf.json")
    return stack


def _assert_checks_loaded(run: CliRun) -> None:
    assert "Cannot load external check" not in run.stderr, run.stderr
    assert "ModuleNotFoundError" not in run.stderr, run.stderr


def test_directory_scan_finds_secret_in_locals(cli: CliFn, fixture_file: FixtureFn, tmp_path: Path) -> None:
    stack = _stack_dir(tmp_path, fixture_file("CKV_MAILSTRATA_4", "fail"))
    run = cli(
        ["-d", str(stack), *BASE_ARGS, "--external-checks-dir", str(CHECKS_DIR), "--check", "CKV_MAILSTRATA_4"],
        tmp_path,
    )
    _assert_checks_loaded(run)
    assert run.counts == (1, 9)
    assert run.returncode == 1
    failed = {r["resource"]: r["details"] for r in run.report["results"]["failed_checks"]}
    assert failed["resource.smtp_in_01"][0].startswith(
        "user_data via local.user_data_smtp_in[5]: `bind_pw` set to a literal value"
    )


def test_file_scan_with_relative_paths_from_repo_root(cli: CliFn, fixture_file: FixtureFn) -> None:
    fixture = fixture_file("CKV_MAILSTRATA_4", "fail").relative_to(REPO)
    run = cli(
        [
            "-f",
            str(fixture),
            *BASE_ARGS,
            "--external-checks-dir",
            "mailstrata/policies/checks",
            "--check",
            "CKV_MAILSTRATA_4",
        ],
        REPO,
    )
    _assert_checks_loaded(run)
    assert run.counts == (1, 9)


def test_all_checks_on_a_clean_stack_pass(cli: CliFn, fixture_file: FixtureFn, tmp_path: Path) -> None:
    stack = _stack_dir(tmp_path, fixture_file("CKV_MAILSTRATA_1", "pass"))
    run = cli(
        ["-d", str(stack), *BASE_ARGS, "--external-checks-dir", str(CHECKS_DIR), "--check", ",".join(CHECK_IDS)],
        tmp_path,
    )
    _assert_checks_loaded(run)
    # GIVEN CKV_MAILSTRATA_1's pass fixture (7 rules) WHEN all six checks run THEN nothing fails: 5 rules
    # pass check 1 (2 are not applicable), the one SSH rule passes check 2, all 7 pass check 4
    by_check: dict[str, int] = {}
    for record in run.report["results"]["passed_checks"]:
        by_check[record["check_id"]] = by_check.get(record["check_id"], 0) + 1
    assert run.report["summary"]["failed"] == 0
    assert by_check == {"CKV_MAILSTRATA_1": 5, "CKV_MAILSTRATA_2": 1, "CKV_MAILSTRATA_4": 7}


def test_skip_check_suppresses_a_check(cli: CliFn, fixture_file: FixtureFn, tmp_path: Path) -> None:
    # GIVEN a stack whose smtp_in pools fail CKV_MAILSTRATA_3, WHEN the scan skips that check (as the
    # Makefile does, with its reason next to it) THEN nothing fails and no CKV_MAILSTRATA_3 result is left
    stack = _stack_dir(tmp_path, fixture_file("CKV_MAILSTRATA_3", "fail"))
    run = cli(
        ["-d", str(stack), *BASE_ARGS, "--external-checks-dir", str(CHECKS_DIR), "--skip-check", "CKV_MAILSTRATA_3"],
        tmp_path,
    )
    _assert_checks_loaded(run)
    records = run.report["results"]["passed_checks"] + run.report["results"]["failed_checks"]
    assert "CKV_MAILSTRATA_3" not in {r["check_id"] for r in records}
    assert run.report["summary"]["failed"] == 0
    assert run.returncode == 0
