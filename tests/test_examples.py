"""examples/: every config loads with `mailstrata validate`; every script synthesizes into the folder it is given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mailstrata.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "examples").glob("*.yaml"))
SCRIPTS = sorted((ROOT / "examples").glob("*.py"))


def test_given_the_examples_folder_when_listed_then_it_has_configs_and_scripts() -> None:
    assert [p.name for p in CONFIGS] == [
        "existing-nas.yaml", "manila.yaml", "minimal.yaml", "provided-tls.yaml", "team-s3.yaml"]
    assert [p.name for p in SCRIPTS] == ["org_stack.py", "whole_platform.py"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_given_an_example_config_when_validated_then_it_is_valid(config: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(config)]) == 0
    assert capsys.readouterr().out.endswith(": valid (stack 'mail')\n") or config.name == "team-s3.yaml"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_given_an_example_script_when_run_with_an_outdir_then_it_synthesizes_there(script: Path,
                                                                                     tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stacks"]
    assert all((out / s["synthesizedStackPath"]).is_file() for s in manifest["stacks"].values())


def test_given_the_team_example_when_synthesized_then_state_is_in_s3_and_the_db_password_is_a_variable(
        tmp_path: Path) -> None:
    out = tmp_path / "out"
    subprocess.run([sys.executable, str(ROOT / "examples/whole_platform.py"), str(out),
                    str(ROOT / "examples/team-s3.yaml")], cwd=tmp_path, capture_output=True, check=True, timeout=300)
    doc = json.loads((out / "stacks/mail-prod/cdk.tf.json").read_text())
    assert doc["terraform"]["backend"]["s3"]["key"] == "mailstrata/mail-prod.tfstate"
    assert doc["variable"]["sogo_db_password"]["sensitive"] is True
