"""Dovecot's DH parameters: a DHE handshake with the rendered Dovecot gets a 2048-bit group.

The mailstore's dovecot.conf (Debian 12's Dovecot 2.3, whose profile paths are moved under a scratch root) runs
in a network namespace with only `lo`, without PROXY listeners; openssl s_client offers only a DHE suite.
Dovecot 2.3 has no DH group built in: without `ssl_dh` such a handshake fails. Dovecot 2.2 (CentOS 7) cannot
run here; its `ssl_dh_parameters_length` is checked by name in tests/userdata/test_centos7_settings.py.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from mailstrata import contract
from mailstrata.roles import Role
from mailstrata.twin.samba import private_netns
from mailstrata.userdata.profiles import load_profile
from mailstrata.userdata.render import render_layer
from tests.support.daemons import listening, scratch_dir, stop, wait_for, write_file
from tests.support.requires import requires
from tests.userdata import _sample


@dataclass(frozen=True)
class LiveDovecot:
    ns: str
    log: Path


@pytest.fixture(scope="module")
def live_dovecot() -> Iterator[LiveDovecot]:
    requires("dovecot", "openssl", "ip", root=True)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(scratch_dir("dovecot-dh"))
        root = tmp / "root"
        base = load_profile("debian12", Role.MAILSTORE).relocated(str(root))
        attrs = type(base.paths)
        profile = replace(base, paths=attrs("test.paths", {**base.paths, "dovecot_log": str(tmp / "dovecot.log")}))
        ctx = replace(_sample.context(Role.MAILSTORE), proxy_ports=frozenset())  # no PROXY header from s_client
        for f in render_layer(ctx, os=profile).files:
            if f.path.startswith(str(root)) and not f.b64:
                write_file(Path(f.path), f.content)
        tls = Path(profile.paths.tls_dir)
        tls.mkdir(parents=True, exist_ok=True)
        # An RSA certificate: the DHE suites of ssl_cipher_list are DHE-RSA.
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                        "/CN=mailstore", "-keyout", str(tls / "server.key"), "-out", str(tls / "server.crt")],
                       check=True, capture_output=True)
        for d in ("var/vmail", "var/lib/dovecot", "var/spool/postfix/private"):
            (root / d).mkdir(parents=True, exist_ok=True)
        ns = stack.enter_context(private_netns(f"mstest-dh-{uuid.uuid4().hex[:6]}"))
        conf = Path(profile.paths.dovecot_dir) / "dovecot.conf"
        dovecot = subprocess.Popen(["ip", "netns", "exec", ns, "dovecot", "-F", "-c", str(conf)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(stop, dovecot, 20)
        log = tmp / "dovecot.log"
        wait_for(lambda: listening(ns, f"0.0.0.0:{contract.IMAPS}"), "Dovecot listening on 993", timeout=30,
                 log=lambda: log.read_text() if log.exists() else "")
        yield LiveDovecot(ns=ns, log=log)


def s_client(ns: str, *args: str) -> str:
    proc = subprocess.run(["ip", "netns", "exec", ns, "openssl", "s_client", "-brief", "-tls1_2", *args],
                          input="", capture_output=True, text=True, timeout=30)
    return proc.stdout + proc.stderr


@pytest.mark.daemons
@pytest.mark.parametrize("cipher", contract.DHE_CIPHERS)
def test_given_dovecot_2_3_when_a_client_offers_only_dhe_on_imaps_then_the_group_has_2048_bits(
        live_dovecot: LiveDovecot, cipher: str) -> None:
    out = s_client(live_dovecot.ns, "-connect", f"127.0.0.1:{contract.IMAPS}", "-cipher", cipher)
    assert f"Ciphersuite: {cipher}" in out, out
    assert re.search(r"Server Temp Key: DH, 2048 bits", out), out


@pytest.mark.daemons
def test_given_dovecot_2_3_when_a_client_starts_tls_on_imap_with_dhe_then_the_group_has_2048_bits(
        live_dovecot: LiveDovecot) -> None:
    out = s_client(live_dovecot.ns, "-connect", f"127.0.0.1:{contract.IMAP}", "-starttls", "imap",
                   "-cipher", contract.DHE_CIPHERS[0])
    assert "Server Temp Key: DH, 2048 bits" in out, out
