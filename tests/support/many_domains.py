"""Platforms with many mail domains, for the size tests and the benchmark.

Domain names are made-up but realistic (6-14 random letters and a common TLD, 10-20 characters):
random, so gzip finds in them no more repetition than in real customers' names. Deterministic (one seed).
"""

from __future__ import annotations

import random
from functools import cache
from importlib import resources
from typing import Any

import yaml

from mailstrata.config.loader import parse_config
from mailstrata.config.model import PlatformConfig

_TLDS = ("com", "org", "net", "es", "de", "co.uk", "example")


@cache
def domains(count: int, seed: int = 7) -> tuple[str, ...]:
    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < count:
        letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(6, 14)))
        out[f"{letters}.{rng.choice(_TLDS)}"] = None
    return tuple(out)


def default_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(resources.files("mailstrata.config").joinpath("default.yaml").read_text())
    return data


def config_with_domains(count: int, **changes: Any) -> PlatformConfig:
    """The default platform serving `count` mail domains (`changes`: top-level keys replaced)."""
    data = default_data()
    data["domains"] = list(domains(count))
    data.update(changes)
    return parse_config(data, source=f"default config with {count} domains")
