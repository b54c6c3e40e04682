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
