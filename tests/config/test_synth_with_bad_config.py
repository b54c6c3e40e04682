"""Synth with a bad config: exit status 2, the report on stderr, and nothing half-written in the output folder.

These tests never reach cdktf: every config is validated before the jsii runtime starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailstrata import app, cli
from tests.config._support import MINIMAL_YAML

ROOT = Path(__file__).resolve().parents[2]
BAD_YAML = MINIMAL_YAML.replace("smtp_in: {}", "smtp_in: {count: 0}")


@pytest.fixture
def bad_config(write_config: Any) -> Path:
    path: Path = write_config(BAD_YAML, name="bad.yaml")
    return path


def _report(path: Path) -> str:
    return (
        "1 problem in the mailstrata configuration:\n"
        f"  - {path}:14:13: layers.smtp_in.count: must be at least 1, got 0; use a whole number from 1 to 500\n"
    )


@pytest.fixture
def synth_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """CDKTF_OUTDIR in tmp_path; no context from a surrounding cdktf run. Returns the output folder."""
    out = tmp_path / "cdktf.out"
    monkeypatch.setenv("CDKTF_OUTDIR", str(out))
    monkeypatch.delenv("CDKTF_CONTEXT_JSON", raising=False)
    return out


def test_given_a_bad_config_when_main_synthesizes_then_it_exits_2_and_reports_on_stderr(
    bad_config: Path, synth_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(app.ENV_VAR, str(bad_config))

    status = app.main()

    captured = capsys.readouterr()
    assert (status, captured.err, captured.out) == (2, _report(bad_config), "")


def test_given_a_bad_config_when_main_synthesizes_then_no_output_folder_is_left(
    bad_config: Path, synth_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(app.ENV_VAR, str(bad_config))

    app.main()

    assert sorted(p.name for p in synth_env.parent.iterdir()) == ["bad.yaml"]


def test_given_a_previous_output_when_a_bad_config_is_synthesized_then_it_is_left_untouched(
    bad_config: Path, synth_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (synth_env / "stacks" / "mail").mkdir(parents=True)
    (synth_env / "stacks" / "mail" / "cdk.tf.json").write_text('{"previous": true}\n')
    monkeypatch.setenv(app.ENV_VAR, str(bad_config))

    app.main()

    files = {p.relative_to(synth_env).as_posix(): p.read_text() for p in synth_env.rglob("*") if p.is_file()}
    assert files == {"stacks/mail/cdk.tf.json": '{"previous": true}\n'}


def test_given_a_good_and_a_bad_config_when_synthesized_then_neither_stack_is_written(
    bad_config: Path, write_config: Any, synth_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = write_config(MINIMAL_YAML.replace("domains:", "name: staging\ndomains:"), name="staging.yaml")
    monkeypatch.setenv(app.ENV_VAR, f"{good},{bad_config}")

    status = app.main()

    assert (status, synth_env.exists()) == (2, False)


def test_given_a_bad_config_when_the_cli_synthesizes_then_it_exits_2_and_writes_nothing(
    bad_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"

    status = cli.main(["synth", "--config", str(bad_config), "--outdir", str(out)])

    assert (status, capsys.readouterr().err, out.exists()) == (2, _report(bad_config), False)


def test_given_a_bad_config_when_main_py_runs_then_it_exits_2_without_starting_cdktf(
    bad_config: Path, tmp_path: Path
) -> None:
    # A fresh interpreter, as `cdktf synth` runs it; it also shows that a bad config never loads cdktf.
    code = "import runpy, sys; runpy.run_path('main.py', run_name='__main__')"
    probe = "import atexit, sys; atexit.register(lambda: sys.stdout.write(str('cdktf' in sys.modules)))"
    env = {"PATH": "/usr/bin:/bin", "MAILSTRATA_CONFIG": str(bad_config), "CDKTF_OUTDIR": str(tmp_path / "out")}

    result = subprocess.run([sys.executable, "-c", f"{probe}; {code}"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60, check=False)

    assert (result.returncode, result.stderr, result.stdout, (tmp_path / "out").exists()) == (
        2, _report(bad_config), "False", False
    )
