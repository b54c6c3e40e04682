"""main.py / mailstrata.app: which configs are synthesized."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cdktf_context_key_chooses_the_config(tmp_path: Path) -> None:
    """The cdktf CLI hands cdktf.json's `context` to the app as CDKTF_CONTEXT_JSON."""
    bad = tmp_path / "ctx.yaml"
    bad.write_text("name: Mail\n")
    env = {**os.environ, "CDKTF_CONTEXT_JSON": json.dumps({"mailstrataConfig": str(bad)}),
           "CDKTF_OUTDIR": str(tmp_path / "out")}
    env.pop("MAILSTRATA_CONFIG", None)
    proc = subprocess.run([sys.executable, str(ROOT / "main.py")], env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{bad}:1:1: name: is not a stack name" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_environment_variable_wins_over_the_context(tmp_path: Path) -> None:
    from mailstrata.app import config_paths

    os.environ["MAILSTRATA_CONFIG"] = "a.yaml,b.yaml"
    try:
        assert config_paths("ctx.yaml") == ["a.yaml", "b.yaml"]
    finally:
        del os.environ["MAILSTRATA_CONFIG"]
    assert config_paths("ctx.yaml") == ["ctx.yaml"]
    assert config_paths(None) == [None]


# ---- what the package says about itself (issue 7, part 7) -------------------------------------------


def test_given_the_cli_when_asked_for_its_version_then_it_prints_pyproject_s_version() -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    proc = subprocess.run([sys.executable, "-m", "mailstrata.cli", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"mailstrata {version}\n", "")


def test_given_pyproject_s_license_when_the_license_file_is_read_then_they_match() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (project["license"], project["license-files"]) == ("Apache-2.0", ["LICENSE"])
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text


def test_given_the_package_when_listed_then_it_carries_a_py_typed_marker() -> None:
    import tomllib

    assert (ROOT / "mailstrata/py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["mailstrata"]  # tests/test_readme.py finds it in the built wheel


# ---- one password variable for check-ad and deploy --------------------------------------------------


def _check_ad(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TF_VAR_")}
    return subprocess.run([sys.executable, "-m", "mailstrata.cli", "check-ad", *argv], cwd=ROOT,
                          env={**clean, **env}, capture_output=True, text=True, timeout=120, check=False)


CLOSED = ["--url", "ldap://127.0.0.1:1", "--tls", "plain", "--base-dn", "dc=domain01,dc=dom",
          "--bind-dn", "cn=correoapp,dc=domain01,dc=dom", "--domain", "domain01.dom", "--timeout", "2"]


def test_given_the_default_config_when_synthesized_then_check_ad_reads_the_variable_deploy_needs() -> None:
    from mailstrata.cli_check_ad import PASSWORD_ENV
    from tests.support.synth import default_platform

    assert PASSWORD_ENV == "TF_VAR_ad_bind_password"
    assert PASSWORD_ENV.removeprefix("TF_VAR_") in default_platform()["variable"]


def test_given_tf_var_ad_bind_password_when_check_ad_runs_then_it_uses_that_password() -> None:
    missing = _check_ad(CLOSED, {})
    assert (missing.returncode, missing.stderr) == (
        2, "check-ad: no bind password: give --password-file FILE or set TF_VAR_ad_bind_password\n")
    given = _check_ad(CLOSED, {"TF_VAR_ad_bind_password": "s3cret"})
    assert given.returncode == 1  # past the usage checks: the directory itself is unreachable here
    assert "problem: cannot reach ldap://127.0.0.1:1: connection refused" in given.stdout


def test_given_a_config_naming_another_variable_when_check_ad_runs_then_it_reads_tf_var_of_that_name(
        tmp_path: Path) -> None:
    import yaml

    cfg = yaml.safe_load((ROOT / "mailstrata/config/default.yaml").read_text())
    cfg["directory"]["bind_password"] = {"variable": "corp_ldap_password"}
    path = tmp_path / "corp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    argv = ["--config", str(path), "--url", "ldap://127.0.0.1:1", "--tls", "plain", "--timeout", "2"]
    assert _check_ad(argv, {"TF_VAR_ad_bind_password": "s3cret"}).stderr == (
        "check-ad: no bind password: give --password-file FILE or set TF_VAR_corp_ldap_password\n")
    given = _check_ad(argv, {"TF_VAR_corp_ldap_password": "s3cret"})
    assert given.returncode == 1
    assert "problem: cannot reach ldap://127.0.0.1:1: connection refused" in given.stdout


# ---- the output folder ------------------------------------------------------------------------------


def test_given_an_outdir_that_is_a_file_when_synthesizing_then_it_is_refused_without_a_traceback(
    tmp_path: Path,
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder\n")

    proc = subprocess.run([sys.executable, "-m", "mailstrata.cli", "synth", "--outdir", str(taken)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == ("1 problem in the mailstrata configuration:\n"
                           f"  - outdir: is not a folder, got {str(taken)!r}; give a folder you can write, "
                           "e.g. cdktf.out\n")
    assert taken.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_given_an_outdir_that_cannot_be_created_when_synthesizing_then_it_is_refused_naming_why(
    tmp_path: Path,
) -> None:
    below_a_file = tmp_path / "file" / "out"
    (tmp_path / "file").write_text("")

    proc = subprocess.run([sys.executable, "-m", "mailstrata.cli", "synth", "--outdir", str(below_a_file)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert proc.returncode == 2
    file = str(tmp_path / "file")
    assert f"  - outdir: is below {file!r}, which is a file, got {str(below_a_file)!r};" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_given_an_outdir_on_a_read_only_filesystem_when_synthesizing_then_it_is_refused_naming_why() -> None:
    proc = subprocess.run([sys.executable, "-m", "mailstrata.cli", "synth", "--outdir", "/proc/mailstrata-out"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert proc.returncode == 2
    assert "  - outdir: cannot be written (" in proc.stderr and "'/proc/mailstrata-out'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_given_state_inside_the_output_folder_when_validating_then_validate_refuses_as_synth_does(
    tmp_path: Path,
) -> None:
    from tests.config._support import MINIMAL_YAML

    config = tmp_path / "in-out.yaml"
    config.write_text(MINIMAL_YAML + "backend: {path: cdktf.out/mail.tfstate}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CDKTF_OUTDIR", "MAILSTRATA_CONFIG")}

    results = [subprocess.run([sys.executable, "-m", "mailstrata.cli", command, "--config", str(config)],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
               for command in ("validate", "synth")]

    assert [r.returncode for r in results] == [2, 2]
    assert [r.stderr for r in results] == [results[1].stderr] * 2
    assert f"  - {config}: backend.path: is inside the output folder cdktf.out" in results[0].stderr
    assert not (tmp_path / "cdktf.out").exists()
