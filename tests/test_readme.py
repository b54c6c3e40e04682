"""The README says what the tools do, and its Python runs as written (issue 7, parts 6 and 7).

Every ```python block of README.md runs in a fresh virtualenv that has only the built wheel (and its pinned
dependencies) installed, from a folder that holds a copy of `examples/`; each synthesized stack then passes
real `terraform init` (only the providers this machine cannot download may fail) and checkov with the flags
`make scan` uses.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PROVIDER_NOT_FOUND = re.compile(
    r"^Could not retrieve the list of available versions for provider [\w./-]+: provider (?P<addr>[\w./-]+) was "
    r"not found in any of the search locations")


def python_snippets() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", README, flags=re.S | re.M)


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end >= 0 else len(README)]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```\n(.*?)^```$", text, flags=re.S | re.M)


# ---- the snippets, from the wheel ---------------------------------------------------------------------


def _constraints(path: Path) -> Path:
    """Pipfile.lock's pins for the runtime dependencies, so the fresh virtualenv gets what CI tested."""
    lock = json.loads((ROOT / "Pipfile.lock").read_text())["default"]
    pins = [f"{name}{spec['version']}" for name, spec in sorted(lock.items())
            if name != "mailstrata" and "version" in spec]
    path.write_text("\n".join(pins) + "\n")
    return path


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, float]]]:
    """Build the wheel from a copy of the sources and install it into a new virtualenv; times each step."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "mailstrata", src / "mailstrata", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(src)],
                   env=env, check=True, capture_output=True, timeout=900)
    timings["wheel"] = time.monotonic() - t0
    [wheel] = (base / "dist").glob("mailstrata-*.whl")
    venv = base / "venv"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], env=env, check=True, timeout=300)
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel),
                    "-c", str(_constraints(base / "constraints.txt"))],
                   env=env, check=True, capture_output=True, timeout=1800)
    timings["venv_install"] = time.monotonic() - t0
    sys.stderr.write(f"\nwheel build {timings['wheel']:.1f} s, venv + install {timings['venv_install']:.1f} s\n")
    yield venv, timings


def _run_in(venv: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CDKTF_OUTDIR", "MAILSTRATA_CONFIG", "CDKTF_CONTEXT_JSON")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([*args], cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False)


def _checkov_flags() -> list[str]:
    """CHECKOV_FLAGS from the Makefile, continuation lines joined, `mailstrata/...` made absolute."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    [line] = [ln for ln in text.splitlines() if ln.startswith("CHECKOV_FLAGS :=")]
    flags = line.split(":=", 1)[1].split()
    return [str(ROOT / f) if f.startswith("mailstrata/") else f for f in flags]


def _init_errors(stack: Path, plugins: Path) -> tuple[set[str], list[str]]:
    """(providers `terraform init` could not find, every other error) for a synthesized stack folder."""
    env = {**os.environ, "CHECKPOINT_DISABLE": "1",
           "TF_CLI_CONFIG_FILE": os.environ.get("TF_CLI_CONFIG_FILE", str(ROOT / ".ci/terraformrc"))}
    proc = subprocess.run(["terraform", "init", "-backend=false", "-input=false", "-json", f"-plugin-dir={plugins}"],
                          cwd=stack, env=env, capture_output=True, text=True, timeout=300, check=False)
    missing, other = set(), []
    for line in proc.stdout.splitlines():
        msg: dict[str, Any] = json.loads(line)
        if msg.get("type") != "diagnostic" or msg["diagnostic"]["severity"] != "error":
            continue
        d = msg["diagnostic"]
        m = PROVIDER_NOT_FOUND.match(d.get("detail", ""))
        if d["summary"] == "Failed to query available provider packages" and m:
            missing.add(m.group("addr"))
        else:
            other.append(f"{d['summary']}: {d.get('detail', '')}")
    return missing, other


OPENSTACK = "registry.terraform.io/terraform-provider-openstack/openstack"


def test_given_the_readme_when_read_then_it_has_the_composition_and_the_whole_platform_snippets() -> None:
    snippets = python_snippets()
    assert len(snippets) == 2
    assert "class OrgStack(TerraformStack)" in snippets[0] and "MailPlatformStack(" in snippets[1]


def test_given_the_readme_s_org_stack_when_compared_then_examples_org_stack_py_has_the_same_class() -> None:
    def org_class(text: str) -> str:
        start = text.index("class OrgStack(TerraformStack):")
        return text[start:text.index("\n\n\n", start)]

    assert org_class(python_snippets()[0]) == org_class((ROOT / "examples/org_stack.py").read_text())


@pytest.mark.parametrize("index", range(len(python_snippets())))
def test_given_a_readme_snippet_when_run_from_the_wheel_then_terraform_init_and_checkov_accept_its_output(
        index: int, wheel_venv: tuple[Path, dict[str, float]], tmp_path: Path) -> None:
    venv, _ = wheel_venv
    project = tmp_path / "project"
    shutil.copytree(ROOT / "examples", project / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "snippet.py").write_text(python_snippets()[index])
    ran = _run_in(venv, project, str(venv / "bin/python"), "snippet.py")
    assert ran.returncode == 0, ran.stderr[-4000:]
    stacks = sorted(p for p in (project / "cdktf.out/stacks").iterdir() if p.is_dir())
    assert stacks
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for stack in stacks:
        missing, other = _init_errors(stack, plugins)
        assert other == [], f"{stack.name}: terraform init found problems besides missing providers"
        assert OPENSTACK in missing  # the provider is declared: init looked for it
        scan = subprocess.run([str(ROOT / ".venv/bin/checkov"), "-d", str(stack), *_checkov_flags()],
                              capture_output=True, text=True, timeout=900, check=False)
        assert scan.returncode == 0, scan.stdout[-4000:]
        assert re.search(r"Failed checks: 0\b", scan.stdout), scan.stdout[-4000:]


def test_given_the_wheel_when_installed_then_it_has_the_version_the_license_and_py_typed(
        wheel_venv: tuple[Path, dict[str, float]], tmp_path: Path) -> None:
    venv, _ = wheel_venv
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    ran = _run_in(venv, tmp_path, str(venv / "bin/mailstrata"), "--version")
    assert (ran.returncode, ran.stdout) == (0, f"mailstrata {version}\n")
    probe = ("import importlib.metadata as m, pathlib, mailstrata; d = m.distribution('mailstrata'); "
             "print(pathlib.Path(mailstrata.__file__).parent.joinpath('py.typed').is_file(), "
             "d.metadata['License-Expression'], any(f.name == 'LICENSE' for f in d.files), mailstrata.__file__)")
    ran = _run_in(venv, tmp_path, str(venv / "bin/python"), "-c", probe)
    typed, spdx, has_license, where = ran.stdout.split()
    assert (typed, spdx, has_license) == ("True", "Apache-2.0", "True")
    assert where.startswith(str(venv))  # the installed wheel, not the source tree


# ---- what the README says about the tools -------------------------------------------------------------


def test_given_the_deploy_snippet_when_read_then_it_sets_every_variable_the_default_stack_needs() -> None:
    from tests.support.synth import default_platform

    needed = {name for name, v in default_platform()["variable"].items() if "default" not in v}
    [block] = [b for b in shell_blocks(section("Deploying")) if "cdktf deploy" in b]
    assert {f"TF_VAR_{n}" for n in needed} <= set(re.findall(r"\bTF_VAR_\w+", block))
    assert "webmail_db_password" in needed  # the default config's external SOGo database
    assert "CHECKPOINT_DISABLE=1" in block


def test_given_the_deploy_snippet_when_read_then_its_stack_is_the_default_config_s_name() -> None:
    default_name = yaml.safe_load((ROOT / "mailstrata/config/default.yaml").read_text())["name"]
    [block] = [b for b in shell_blocks(section("Deploying")) if "cdktf deploy" in b]
    assert re.findall(r"cdktf deploy (\S+)", block) == [default_name]
    assert "The stack name is the config's `name`" in section("Deploying")


def test_given_the_cdktf_cli_path_when_described_then_it_sets_checkpoint_disable() -> None:
    cli_paragraph = README[README.index("The cdktf CLI works too"):]
    assert "`CHECKPOINT_DISABLE=1`" in cli_paragraph[:cli_paragraph.index("\n\n")]


def test_given_the_rollout_text_when_read_then_it_promises_neither_line_diffs_nor_deploy_target() -> None:
    text = " ".join(README.split())
    assert "shows exactly which config lines changed" not in text
    assert not re.search(r"cdktf deploy`? with `?-target", text)
    assert "`cdktf diff` cannot show which of those lines changed" in text
    day2 = " ".join(section("Day 2: rollouts, diffs in pull requests, password rotation").split())
    assert "`mailstrata rollout` replaces them, one slot at a time" in day2 and "rollout --resume" in day2


def test_given_the_state_text_when_read_then_it_names_the_folder_and_the_migration() -> None:
    text = " ".join(section("Deploying").split())
    assert "`state/<name>.tfstate`" in text
    assert "terraform init -migrate-state" in text


def test_given_a_config_change_when_synthesized_before_and_after_then_diff_shows_the_changed_config_line(
        tmp_path: Path) -> None:
    """The review recipe the README gives instead of `cdktf diff`: two synths and `diff -u`."""
    cfg = yaml.safe_load((ROOT / "mailstrata/config/default.yaml").read_text())
    before, after = tmp_path / "before.yaml", tmp_path / "after.yaml"
    before.write_text(yaml.safe_dump(cfg))
    cfg.setdefault("mail", {})["message_size_limit"] = 31457280
    after.write_text(yaml.safe_dump(cfg))
    docs = []
    for name, path in (("before", before), ("after", after)):
        proc = subprocess.run([sys.executable, "-m", "mailstrata.cli", "synth", "--config", str(path), "--outdir",
                               str(tmp_path / name)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        docs.append((tmp_path / name / "stacks/mail/cdk.tf.json").read_text())
    old, new = (json.loads(d) for d in docs)
    assert {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)} == {"locals"}  # servers refer to them
    changed_in_locals = sum(
        1 for name in old["locals"]
        for ln in difflib.unified_diff(old["locals"][name], new["locals"][name], lineterm="", n=0)
        if ln[:1] in "+-" and not ln.startswith(("+++", "---")))
    changed = [ln for ln in difflib.unified_diff(docs[0].splitlines(), docs[1].splitlines(), lineterm="", n=0)
               if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    assert len(changed) == changed_in_locals  # one line of `diff -u` per changed config line
    assert '+      "      message_size_limit = 31457280",' in changed
