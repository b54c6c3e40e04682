"""Helpers for the config tests (fixtures are in conftest.py)."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import pytest
import yaml

from mailstrata.config import parse_config
from mailstrata.errors import ConfigError

DEFAULT_TEXT = (resources.files("mailstrata.config") / "default.yaml").read_text(encoding="utf-8")
_DEFAULT_DATA = yaml.safe_load(DEFAULT_TEXT)


def default_data() -> dict[str, Any]:
    """A fresh deep copy of the embedded default config's data: mutate it freely."""
    return copy.deepcopy(_DEFAULT_DATA)


def problems_of(data: Any) -> list[str]:
    """Every problem `parse_config` reports for `data`, as printed (fails when the data is valid)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return [str(p) for p in caught.value.problems]


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)


# The smallest valid config: only the keys without a default. Line numbers in file tests refer to it.
MINIMAL_YAML = """\
domains: [domain01.dom]
network:
  network_id: 6f1c1c3e-0000-4000-8000-00000000a001
  subnet_id: 6f1c1c3e-0000-4000-8000-00000000a002
  subnet_cidr: 10.10.0.0/24
  vip_subnet_id: 6f1c1c3e-0000-4000-8000-00000000a003
  vip_subnet_cidr: 10.20.0.0/24
  admin_cidrs: [10.99.0.0/24]
directory:
  urls: [ldaps://dc1.domain01.dom:636]
  base_dn: dc=domain01,dc=dom
  bind_dn: cn=correoapp,ou=mailapps,dc=domain01,dc=dom
layers:
  smtp_in: {}
  smtp_out: {}
  mailstore: {}
"""
