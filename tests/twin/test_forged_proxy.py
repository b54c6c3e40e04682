"""Forged PROXY headers straight to the members (issue 9, "Trust and identity").

Postfix and Dovecot check only a PROXY header's syntax (Dovecot also where it comes from:
`haproxy_trusted_networks`). Anything that reaches a member's port directly, not through the load balancer,
can name any client: loopback, a platform server, the load balancer itself. Here every such claim is sent to
every member port whose pool speaks PROXY, from the layer's amphora address (the only source the security
groups admit there, and where the members accept PROXY headers from), and none of them relays mail or logs
in without the password.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import smtplib
import subprocess
from pathlib import Path

import pytest

from mailstrata.twin import clients as c
from mailstrata.twin.process import wrap
from mailstrata.twin.twin import EXTERNAL_DOMAIN
from tests.twin.helpers import Platform, message

pytestmark = pytest.mark.twin

# (role, port) of every member listener behind a PROXY pool that speaks SMTP.
SMTP_PROXY_PORTS = (("smtp_in", 25), ("smtp_out", 587), ("mailstore", 25))
OUTSIDE = f"victim@{EXTERNAL_DOMAIN}"


def claims(platform: Platform) -> dict[str, str]:
    """What a forged header names: loopback, one server of each layer, the VIP subnet and an amphora."""
    out = {"loopback": "127.0.0.1", "the VIP subnet": "127.20.0.200", "an amphora": platform.amphora("smtp_in")}
    for role in ("smtp_in", "smtp_out", "mailstore", "webmail"):
        out[f"a {role} server"] = platform.info.servers_of(role)[0].address
    return out


def _relay_attempt(ep: c.Endpoint, starttls: bool) -> tuple[int, str]:
    s = c.SMTP(ep)
    try:
        s.ehlo("forger.example")
        if starttls:
            s.starttls(context=c.insecure_tls())
            s.ehlo("forger.example")
        code, text = s.mail("usuario01@domain01.dom")
        if code >= 400:
            return code, text.decode()
        code, text = s.rcpt(OUTSIDE)
        return code, text.decode()
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            s.quit()


@pytest.mark.parametrize(("role", "port"), SMTP_PROXY_PORTS)
def test_forged_proxy_headers_relay_nothing(platform: Platform, role: str, port: int) -> None:
    got = {}
    for server in platform.info.servers_of(role):
        for what, claim in claims(platform).items():
            ep = c.Endpoint(server.address, port, platform.amphora(role), proxy_as=claim)
            got[(server.name, what)] = platform.run(_relay_attempt, ep, port == 587)
    accepted = {k: v for k, v in got.items() if v[0] // 100 != 5}
    assert accepted == {}, accepted


def _imap_login(ep: c.Endpoint, login: str, password: str) -> str:
    conn = c.IMAP(ep)
    try:
        conn.starttls(ssl_context=c.insecure_tls())
        try:
            typ, _ = conn.login(login, password)
        except imaplib.IMAP4.error as exc:
            return f"refused: {exc}"
        return f"logged in: {typ}"
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()


def test_forged_proxy_headers_log_in_as_nobody(platform: Platform) -> None:
    got = {}
    for server in platform.info.servers_of("mailstore"):
        for what, claim in claims(platform).items():
            for password in ("", "wrong"):
                ep = c.Endpoint(server.address, 143, platform.amphora("mailstore"), proxy_as=claim)
                got[(server.name, what, password)] = platform.run(_imap_login, ep, "usuario01", password)
    logged_in = {k: v for k, v in got.items() if not v.startswith("refused")}
    assert logged_in == {}, logged_in


def test_smtp_out_members_have_no_port_25(platform: Platform) -> None:
    # Nothing relays on 25 any more: webmail submits with AUTH on 587, the mailstores use the internal relay.
    # Asked from the server itself: no security group rule opens 25 there either, so from anywhere else the
    # connection would be dropped before anything could refuse it (tests/twin/test_security_groups.py).
    for server in platform.info.servers_of("smtp_out"):
        with pytest.raises(ConnectionRefusedError):
            platform.run(c.SMTP, c.Endpoint(server.address, 25, server.address))


def test_a_mailstore_sends_out_through_smtp_outs_internal_relay(platform: Platform) -> None:
    # Bounces and sieve mail: the mailstore's own Postfix hands them to an smtp-out server's port 2525
    # directly (no LB), where the mailstores' address is the one trust left; smtp-out passes it on.
    server = platform.info.servers_of("mailstore")[0]
    msg = message(f"bob@{EXTERNAL_DOMAIN}", "twin: through the internal relay", sender="usuario01@domain01.dom")
    sendmail = ["sendmail", "-C", str(Path(server.root) / "etc/postfix"), "-f", "usuario01@domain01.dom",
                f"bob@{EXTERNAL_DOMAIN}"]  # fmt: skip
    proc = subprocess.run(wrap(platform.info.netns, server.fqdn, sendmail), input=msg.as_bytes(),
                          capture_output=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    relays = "|".join(re.escape(s.address) for s in platform.info.servers_of("smtp_out"))
    rcpt = re.escape(f"bob@{EXTERNAL_DOMAIN}")
    platform.wait_log("mailstore", "postfix.log", rf"to=<{rcpt}>, relay=({relays})\[({relays})\]:2525,.*status=sent")
    client = re.escape(server.address)
    platform.wait_log("smtp_out", "postfix.log", rf"postfix/relay/smtpd\[\d+\]: \w+: client=\S+\[{client}\]")
