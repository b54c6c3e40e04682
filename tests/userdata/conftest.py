"""Fixtures for the user-data tests: every layer's files, exactly as a server receives them.

`layer_files(role)` returns {destination path: content} after Terraform would have substituted the
references (VIP addresses, secrets) with the sample values below, and after cloud-init would have
decoded base64 files.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mailstrata.roles import Role
from tests.userdata import _sample

SAMPLE_VALUES = _sample.SAMPLE_VALUES


@pytest.fixture(scope="session")
def layer_cloud_config() -> Callable[[Role], dict]:
    """The parsed cloud-config document of a role's first server."""
    cache: dict[Role, dict] = {}

    def get(role: Role) -> dict:
        if role not in cache:
            cache[role] = yaml.safe_load(_sample.cloud_config_text(role))
        return cache[role]

    return get


@pytest.fixture(scope="session")
def layer_files(layer_cloud_config: Callable[[Role], dict]) -> Callable[[Role], dict[str, str]]:
    def get(role: Role) -> dict[str, str]:
        out: dict[str, str] = {}
        for f in layer_cloud_config(role).get("write_files", []):
            content = f.get("content", "")
            if f.get("encoding") == "b64":
                content = base64.b64decode(content).decode()
            out[f["path"]] = content
        return out

    return get


@pytest.fixture
def write_layer(layer_files: Callable[[Role], dict[str, str]], tmp_path: Path) -> Callable[[Role], Path]:
    """Write a role's files under tmp_path (keeping their absolute paths below it); returns the root."""

    def write(role: Role) -> Path:
        root = tmp_path / role.value
        for path, content in layer_files(role).items():
            dest = root / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(content)
        return root

    return write
