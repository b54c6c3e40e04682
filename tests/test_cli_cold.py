"""The README's cdktf CLI path, cold: a fresh `git clone`, `npm ci`, then `npx cdktf synth`, nothing else.

`cdktf.json` once ran `pipenv run python main.py`; in a fresh clone pipenv made an empty environment and
the synth died with `ModuleNotFoundError: No module named 'annotated_types'`. Its app is now
`scripts/cdktf-app.sh`, which installs the pinned environment first. The clone goes under the clone's own
`.cache/` (ignored by git), never a folder shared with anything else. It takes a `pipenv sync` and an
`npm ci`: about 3.5 minutes here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.requires import requires, unavailable

CLONE = Path(__file__).resolve().parents[1]


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_cdktf_json_app_installs_before_it_synthesizes() -> None:
    app = json.loads((CLONE / "cdktf.json").read_text())["app"]
    assert app == "./scripts/cdktf-app.sh"
    script = (CLONE / "scripts" / "cdktf-app.sh").read_text()
    assert 'make -s .venv/.installed >"$log" 2>&1' in script
    assert script.rstrip().endswith('exec .venv/bin/python main.py "$@"')


@pytest.mark.daemons  # needs git, make, Node.js and npm (make test installs them); under CI a skip fails
def test_npm_ci_then_cdktf_synth_works_in_a_fresh_clone() -> None:
    requires("git", "make", "npm", "npx", "python3", why="to clone and run the CLI",
             install="make deps-node installs Node.js and npm")
    if not (CLONE / ".git").exists():
        unavailable("not a git clone", why="to clone the project from", install="run the tests in a git clone")
    dest = CLONE / ".cache" / "cli-clone" / str(os.getpid())
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The CLI reads no variable of ours: drop the ones make and a virtualenv would have set.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPENV_", "VIRTUAL_ENV", "PYTHON", "MAILSTRATA"))}
    env |= {"CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": str(dest / ".ci" / "terraformrc"), "CI": "true"}

    clone = _run(["git", "clone", "-q", str(CLONE), str(dest)], CLONE, env, 120)
    assert clone.returncode == 0, clone.stderr
    npm = _run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], dest, env, 900)
    assert npm.returncode == 0, npm.stdout[-2000:] + npm.stderr[-3000:]
    synth = _run(["npx", "cdktf", "synth"], dest, env, 1200)
    assert synth.returncode == 0, synth.stdout[-3000:] + synth.stderr[-3000:]
    assert "Generated Terraform code for the stacks: mail" in synth.stdout
    stack = json.loads((dest / "cdktf.out" / "stacks" / "mail" / "cdk.tf.json").read_text())
    assert "openstack" in stack["provider"]
    shutil.rmtree(dest, ignore_errors=True)
