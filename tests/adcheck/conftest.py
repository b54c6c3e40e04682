"""Fixtures for check-ad: one real Samba AD DC per test session, in a network namespace with only ``lo``.

The namespace is what guarantees the rule for tests on this machine: nothing outside 127.0.0.0/8 is
reachable from where Samba and the checks run, so no test packet can leave the machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.support.samba_ad import SambaAD, private_netns


def _unavailable(reason: str) -> NoReturn:
    # In CI the daemons are installed on purpose: a missing one is a broken pipeline, not a skip.
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def samba_ad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaAD]:
    """A started Samba AD DC (see tests/support/samba_ad.py for its users and groups)."""
    missing = [tool for tool in ("samba-tool", "samba", "ip", "openssl") if shutil.which(tool) is None]
    if missing:
        packages = "samba samba-ad-dc samba-ad-provision iproute2 openssl"
        _unavailable(f"{', '.join(missing)} not installed (apt-get install {packages})")
    if os.geteuid() != 0:
        _unavailable("a Samba AD DC and a network namespace need root")
    with (
        private_netns(f"mstest-ad-{os.getpid()}") as netns,
        SambaAD(tmp_path_factory.mktemp("samba-ad"), netns=netns) as ad,
    ):
        yield ad
