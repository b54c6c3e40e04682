"""The local twin, once for the tests/twin package: the default platform running in a namespace with only `lo`.

`twin` brings it up (about 30 s) unless one is already up (`mailstrata twin up`, or `mailstrata twin test`,
which sets MAILSTRATA_TWIN_KEEP), and takes it down when the package's tests are done if it started it. Where the
twin cannot run (no root, no namespaces, a daemon missing) its tests skip with the reason; under
CI=true the suite-wide hook in tests/conftest.py turns such a skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstrata.twin import netns
from mailstrata.twin.twin import Twin, TwinError, TwinInfo
from tests.support.requires import DEBIAN, requires, unavailable
from tests.twin.helpers import Platform

REQUIRED = ("postfix", "dovecot", "amavisd", "clamd", "clamav-milter", "opendkim", "saslauthd", "haproxy", "samba",
            "samba-tool", "dnsmasq", "sogod", "mariadbd", "memcached", "nginx", "policyd-spf", "gcc", "openssl",
            "iptables-restore")
# sogo-activesync installs no program, only SOGo's bundle; the webmail role script refuses a server without it.
ACTIVESYNC_BUNDLE = Path("/usr/lib/GNUstep/SOGo/ActiveSync.SOGo")


# Package scope: the twin (about 1.1 GB, 270 processes) is taken down as soon as tests/twin is done, so it
# never loads the machine under the other suites.
@pytest.fixture(scope="package")
def twin_info() -> Iterator[TwinInfo]:
    why = netns.unavailable()
    if why:
        unavailable(why, why="for the local twin")
    requires(*REQUIRED, why="for the local twin")
    if not ACTIVESYNC_BUNDLE.is_dir():
        unavailable(f"not installed: sogo-activesync ({ACTIVESYNC_BUNDLE})", why="for the local twin", install=DEBIAN)
    twin = Twin()
    already = twin.info() is not None and not twin.healthy()
    try:
        info = twin.up()
    except TwinError as exc:
        twin.down()
        pytest.fail(f"the twin did not come up: {exc}")
    yield info
    if not already and not os.environ.get("MAILSTRATA_TWIN_KEEP"):
        twin.down()


@pytest.fixture(scope="package")
def platform(twin_info: TwinInfo) -> Platform:
    return Platform(twin_info, Twin(root=None))
