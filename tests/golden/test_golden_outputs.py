"""Golden outputs: the synthesized `cdk.tf.json` of the default config and of every example config.

The snapshots live beside this file in `__snapshots__/`, one file per config, byte for byte what synth wrote.
A change to the output fails here until the snapshot is updated in the same commit
(`.venv/bin/python -m pytest tests/golden --snapshot-update`), so a reviewer sees the output change in the
diff of the pull request.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from mailstrata.app import synth
from mailstrata.config.loader import load_config
from mailstrata.userdata.limits import estimate_contexts
from mailstrata.userdata.render import render_layer

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [None, *sorted((ROOT / "examples").glob("*.yaml"))]


class CdkTfJson(SingleFileSnapshotExtension):
    """The file as synth wrote it: text, no re-serialization, so the snapshot is the output itself."""

    _write_mode = WriteMode.TEXT
    file_extension = "cdk.tf.json"


class UserDataText(SingleFileSnapshotExtension):
    _write_mode = WriteMode.TEXT
    file_extension = "yaml"


def _name(config: Path | None) -> str:
    return "default" if config is None else config.stem


@pytest.mark.parametrize("config", CONFIGS, ids=_name)
def test_given_a_config_when_synthesized_then_cdk_tf_json_matches_its_snapshot(
        config: Path | None, tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    synth([str(config) if config else None], str(tmp_path / "out"))
    written = sorted((tmp_path / "out" / "stacks").glob("*/cdk.tf.json"))
    assert len(written) == 1, written
    assert written[0].read_text(encoding="utf-8") == snapshot(extension_class=CdkTfJson)


def test_given_the_default_config_when_each_layer_is_rendered_for_debian12_then_it_matches_its_snapshot(
        snapshot: SnapshotAssertion) -> None:
    """The config model has only `os: centos7`; the twin and the daemon tests render the same layers for
    Debian 12, so those bodies are golden too (placeholder references, as `mailstrata validate` renders)."""
    cfg = load_config(None)
    bodies = [f"# ---- {where} ----\n{render_layer(ctx, 'debian12').body_text()}"
              for where, ctx in estimate_contexts(cfg)]
    assert "".join(bodies) == snapshot(extension_class=UserDataText)
