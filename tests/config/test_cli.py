"""The `mailstrata` command: validate, schema, synth's wiring, check-ad's wiring, exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailstrata import app, cli
from mailstrata.config.model import json_schema
from tests.config._support import MINIMAL_YAML

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_env_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(app.ENV_VAR, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_given_no_config_when_validating_then_the_embedded_default_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate") == (0, "the embedded default config: valid (stack 'mail')\n", "")


def test_given_a_good_file_when_validating_then_it_exits_0_and_names_the_stack(
    write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(MINIMAL_YAML)

    assert run(capsys, "validate", "--config", str(path)) == (0, f"{path}: valid (stack 'mail')\n", "")


def test_given_the_env_var_when_validating_then_its_files_are_used(
    write_config: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write_config(MINIMAL_YAML.replace("domains:", "name: staging\ndomains:"), name="staging.yaml")
    b = write_config(MINIMAL_YAML.replace("domains:", "name: prod\ndomains:"), name="prod.yaml")
    monkeypatch.setenv(app.ENV_VAR, f"{a},{b}")

    assert run(capsys, "validate") == (0, f"{a}: valid (stack 'staging')\n{b}: valid (stack 'prod')\n", "")


def test_given_a_bad_file_when_validating_then_it_exits_2_with_the_report_on_stderr(
    write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(MINIMAL_YAML.replace("smtp_in: {}", "smtp_in: {count: 0}"))

    assert run(capsys, "validate", "--config", str(path)) == (
        2,
        "",
        "1 problem in the mailstrata configuration:\n"
        f"  - {path}:14:13: layers.smtp_in.count: must be at least 1, got 0; use a whole number from 1 to 500\n",
    )


def test_given_two_files_with_one_stack_name_when_validating_then_it_asks_for_distinct_names(
    write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = write_config(MINIMAL_YAML, name="a.yaml"), write_config(MINIMAL_YAML, name="b.yaml")

    assert run(capsys, "validate", "--config", str(a), "--config", str(b)) == (
        2,
        "",
        "1 problem in the mailstrata configuration:\n"
        f"  - {b}: name: repeats the stack name of {a}, got 'mail'; give each config its own name\n",
    )


def test_given_the_schema_command_when_run_then_it_prints_sorted_json_with_2_space_indent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(capsys, "schema")

    assert (status, err, out) == (0, "", json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")


def test_given_the_schema_command_when_run_twice_then_the_output_is_identical(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, "schema") == run(capsys, "schema")


def test_given_no_command_when_run_then_it_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys)

    assert (status, out, err.splitlines()[-1]) == (
        2, "", "mailstrata: error: the following arguments are required: COMMAND"
    )


def test_given_check_ad_without_a_password_when_run_then_it_is_wired_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TF_VAR_ad_bind_password", raising=False)

    assert run(capsys, "check-ad", "--url", "ldaps://dc1.domain01.dom", "--base-dn", "dc=domain01,dc=dom",
               "--bind-dn", "cn=correoapp,dc=domain01,dc=dom", "--domain", "domain01.dom") == (
        2, "", "check-ad: no bind password: give --password-file FILE or set TF_VAR_ad_bind_password\n"
    )


def test_given_python_dash_m_when_asked_for_help_then_every_command_is_listed() -> None:
    result = subprocess.run([sys.executable, "-m", "mailstrata.cli", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)

    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ")]
    assert (result.returncode, listed) == (0, ["synth", "validate", "schema", "check-ad", "twin", "diff",
                                                 "rollout"])


def test_given_more_domains_than_user_data_holds_when_validating_then_it_names_domains_and_the_count_that_fits(
    write_config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.many_domains import domains

    path = write_config(MINIMAL_YAML.replace("domains: [domain01.dom]", f"domains: [{', '.join(domains(1500))}]"))

    status, out, err = run(capsys, "validate", "--config", str(path))

    assert (status, out) == (2, "")
    assert err.startswith("1 problem in the mailstrata configuration:\n"
                          f"  - {path}:1:1: domains: must keep every server's user data within Nova's limit of "
                          "65535 bytes (layers.smtp_out's would be ")
    assert "mail domains; at most " in err and "serve the others from a second platform" in err
