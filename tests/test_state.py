"""Terraform state and Terraform's own files survive every synth (issue 7, part 3).

The cdktf CLI runs Terraform inside `<outdir>/stacks/<name>/`. The local state lives beside the output folder
(`state/<name>.tfstate`), and a synth replaces only the files it writes itself.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailstrata.app import RECORD, synth
from mailstrata.errors import ConfigError
from tests.support.requires import requires, requires_terraform

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_YAML = ROOT / "mailstrata/config/default.yaml"
# A valid, empty Terraform state (format 4) with a lineage of its own, so a test can tell it from a new one.
PLANTED_STATE = json.dumps({"version": 4, "terraform_version": "1.11.0", "serial": 7,
                            "lineage": "0c0ffee0-7e57-4a1e-b00b-5ca1ab1e0007", "outputs": {}, "resources": [],
                            "check_results": None}) + "\n"


def _tf_env() -> dict[str, str]:
    return {**os.environ, "CHECKPOINT_DISABLE": "1",
            "TF_CLI_CONFIG_FILE": os.environ.get("TF_CLI_CONFIG_FILE", str(ROOT / ".ci/terraformrc"))}


def _config(tmp_path: Path, name: str, **changes: Any) -> str:
    cfg = yaml.safe_load(DEFAULT_YAML.read_text())
    cfg.update(name=name, **changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _plant(project: Path, stack: str = "mail") -> dict[Path, bytes]:
    """A state file where the backend keeps it, and Terraform's working files where `terraform init` puts them."""
    files = {
        project / "state" / f"{stack}.tfstate": PLANTED_STATE.encode(),
        project / "cdktf.out/stacks" / stack / ".terraform/providers/marker": b"provider binaries\n",
        project / "cdktf.out/stacks" / stack / ".terraform.lock.hcl": b"# planted lock file\n",
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def _intact(files: dict[Path, bytes]) -> dict[str, str]:
    """Each planted file that is gone or changed, and what happened to it (empty when all are intact)."""
    return {str(p): ("gone" if not p.exists() else "changed") for p, data in files.items()
            if not p.exists() or p.read_bytes() != data}


# ---- where the state is -----------------------------------------------------------------------------


def test_given_the_default_config_when_synthesized_then_local_state_is_beside_the_output_folder(
        tmp_path: Path) -> None:
    out = synth([None], str(tmp_path / "cdktf.out"))
    doc = json.loads((out / "stacks/mail/cdk.tf.json").read_text())
    assert doc["terraform"]["backend"] == {"local": {"path": "../../../state/mail.tfstate"}}


def test_given_a_planted_state_when_terraform_initializes_the_synthesized_backend_then_it_reads_that_state(
        tmp_path: Path) -> None:
    """Real Terraform resolves the backend path from the stack's folder, as `cdktf diff|deploy` run it."""
    out = synth([None], str(tmp_path / "cdktf.out"))
    backend = json.loads((out / "stacks/mail/cdk.tf.json").read_text())["terraform"]["backend"]
    _plant(tmp_path)
    probe = out / "stacks/probe"  # a folder at the stack's depth holding the backend block only
    probe.mkdir()
    (probe / "main.tf.json").write_text(json.dumps({"terraform": {"backend": backend}}))
    env = _tf_env()
    subprocess.run(["terraform", "init", "-input=false", "-no-color"], cwd=probe, env=env, check=True,
                   capture_output=True)
    pulled = subprocess.run(["terraform", "state", "pull"], cwd=probe, env=env, check=True, capture_output=True,
                            text=True).stdout
    assert json.loads(pulled)["lineage"] == json.loads(PLANTED_STATE)["lineage"]


def test_given_a_state_path_inside_the_output_folder_when_synthesized_then_it_is_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "mail", backend={"path": "cdktf.out/mail.tfstate"})
    with pytest.raises(ConfigError) as err:
        synth([cfg], str(tmp_path / "cdktf.out"))
    assert str(err.value).splitlines()[1:] == [
        f"  - {cfg}: backend.path: is inside the output folder {tmp_path / 'cdktf.out'}, which synth and "
        "`make clean` replace, got 'cdktf.out/mail.tfstate'; keep state outside it, e.g. state/mail.tfstate"
    ]
    assert not (tmp_path / "cdktf.out").exists()


def test_given_a_backend_path_when_synthesized_then_it_is_relative_to_the_project_folder(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "mail", backend={"path": "terraform-state/prod-mail.tfstate"})
    out = synth([cfg], str(tmp_path / "cdktf.out"))
    doc = json.loads((out / "stacks/mail/cdk.tf.json").read_text())
    assert doc["terraform"]["backend"]["local"]["path"] == "../../../terraform-state/prod-mail.tfstate"


# ---- what a synth replaces --------------------------------------------------------------------------


def test_given_terraform_files_when_synthesized_again_then_they_stay(tmp_path: Path) -> None:
    synth([None], str(tmp_path / "cdktf.out"))
    planted = _plant(tmp_path)
    user_file = tmp_path / "cdktf.out/notes.txt"
    user_file.write_text("mine\n")
    synth([None], str(tmp_path / "cdktf.out"))
    assert _intact(planted) == {}
    assert user_file.read_text() == "mine\n"


def test_given_a_removed_stack_when_synthesized_then_only_its_written_files_go(tmp_path: Path) -> None:
    out = tmp_path / "cdktf.out"
    staging, prod = _config(tmp_path, "staging"), _config(tmp_path, "prod")
    synth([staging, prod], str(out))
    (out / "stacks/prod/.terraform").mkdir()
    synth([staging], str(out))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        RECORD, "manifest.json", "stacks/staging/cdk.tf.json"]
    assert (out / "stacks/prod/.terraform").is_dir()  # Terraform's folder is never ours to delete
    assert list(json.loads((out / "manifest.json").read_text())["stacks"]) == ["staging"]


def test_given_output_of_a_version_without_a_record_when_synthesized_then_its_stale_stacks_go(tmp_path: Path) -> None:
    """Output written before the record existed: cdktf's manifest says which files were synthesized."""
    out = tmp_path / "cdktf.out"
    synth([_config(tmp_path, "old"), _config(tmp_path, "mail")], str(out))
    (out / RECORD).unlink()
    synth([None], str(out))
    assert not (out / "stacks/old").exists()
    assert (out / "stacks/mail/cdk.tf.json").is_file()


def test_given_a_record_naming_other_files_when_synthesized_then_terraform_and_outside_files_stay(
        tmp_path: Path) -> None:
    out = tmp_path / "cdktf.out"
    synth([None], str(out))
    planted = _plant(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    (out / RECORD).write_text(json.dumps({"files": [
        "../outside.txt", "../state/mail.tfstate", "stacks/mail/.terraform.lock.hcl",
        "stacks/mail/.terraform/providers/marker", str(outside)]}))
    synth([None], str(out))
    assert _intact(planted) == {}
    assert outside.read_text() == "keep\n"


def test_given_a_bad_config_when_synthesized_then_the_previous_output_is_untouched(tmp_path: Path) -> None:
    out = synth([None], str(tmp_path / "cdktf.out"))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Mail\n")
    with pytest.raises(ConfigError):
        synth([str(bad)], str(out))
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cdktf.out.")] == []


# ---- the three commands a user runs -----------------------------------------------------------------


def _cli_env(outdir: Path) -> dict[str, str]:
    env = _tf_env()
    env.pop("MAILSTRATA_CONFIG", None)
    # cdktf.json runs `pipenv run python main.py`; the Makefile bootstraps pipenv into .tools/.
    env.update(CDKTF_OUTDIR=str(outdir), PIPENV_VENV_IN_PROJECT="1", PIPENV_NOSPIN="1", PIPENV_YES="1",
               PATH=f"{ROOT / '.tools/bin'}{os.pathsep}{env.get('PATH', '')}")
    return env


def test_given_state_and_terraform_files_when_make_synth_cdktf_synth_and_cdktf_diff_run_then_all_are_intact(
        tmp_path: Path) -> None:
    """The commands of the README, as a user runs them (outdir under tmp_path so the shared tree is left alone).
    `cdktf diff` stops at provider download on this machine; the files must survive it all the same."""
    requires("node_modules/.bin/cdktf", ".tools/bin/pipenv", why="to run the README's commands", install="make install")
    requires_terraform("for cdktf diff")
    out = tmp_path / "cdktf.out"
    env = _cli_env(out)
    subprocess.run(["make", "--no-print-directory", "synth"], cwd=ROOT, env=env, check=True, capture_output=True)
    planted = _plant(tmp_path)
    ran = []
    for args in (["make", "--no-print-directory", "synth"],
                 ["npx", "cdktf", "synth", "--output", str(out)],
                 ["npx", "cdktf", "diff", "--output", str(out)]):
        proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        ran.append((" ".join(args[:3]), proc.returncode))
        assert _intact(planted) == {}, f"after {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        if args[1] == "cdktf" and args[2] == "diff":
            # Only the provider download may fail here; a broken backend or state would fail before it.
            assert proc.returncode == 0 or "Failed to query available provider packages" in proc.stdout + proc.stderr
            assert "Successfully configured the backend \"local\"" in proc.stdout + proc.stderr
        else:
            assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "stacks/mail/cdk.tf.json").is_file()
