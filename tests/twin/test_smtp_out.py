"""SMTP-out in the twin: behaviour 10 of the issue (submission, AUTH, DKIM, the internal transport)."""

from __future__ import annotations

import re
import smtplib

import dkim
import dns.resolver
import pytest

from mailstrata.twin.clients import insecure_tls
from tests.twin.helpers import Platform, message

pytestmark = pytest.mark.twin


def _login(platform: Platform, login: str = "usuario01") -> tuple[str, str]:
    return login, platform.password(login)


def test_auth_is_not_offered_before_starttls(platform: Platform) -> None:
    def steps(s: smtplib.SMTP) -> tuple[bool, bool]:
        s.ehlo("client.example")
        before = s.has_extn("auth")
        s.starttls(context=insecure_tls())
        s.ehlo("client.example")
        return before, s.has_extn("auth")

    assert platform.session("smtp_out", 587, platform.corporate, steps) == (False, True)


def test_valid_directory_login_relays(platform: Platform) -> None:
    msg = message("bob@external.example", "twin: relayed", sender="usuario01@domain01.dom")
    assert platform.send(msg, role="smtp_out", port=587, source=platform.corporate, login=_login(platform)) == {}


def test_wrong_password_is_refused(platform: Platform) -> None:
    msg = message("bob@external.example", "twin: wrong password", sender="usuario01@domain01.dom")
    with pytest.raises(smtplib.SMTPAuthenticationError) as err:
        platform.send(msg, role="smtp_out", port=587, source=platform.corporate, login=("usuario01", "wrong"))
    assert err.value.smtp_code == 535


def test_relayed_mail_carries_a_dkim_signature_that_verifies(platform: Platform) -> None:
    msg = message("usuario02@domain01.dom", "twin: signed", sender="usuario01@domain01.dom")
    platform.send(msg, role="smtp_out", port=587, source=platform.corporate, login=_login(platform))
    platform.wait_delivered("usuario02", msg["Message-ID"])
    raw = platform.fetch("usuario02", msg["Message-ID"]) or b""

    served: list[list[bytes]] = []

    def txt(name: bytes, timeout: int = 5) -> bytes:
        # the public key as the stack publishes it, from the twin's DNS: split into strings Designate takes
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [platform.info.dns]
        answers = list(r.resolve(name.decode().rstrip("."), "TXT"))
        served.extend(list(rr.strings) for rr in answers)
        return b"".join(b"".join(rr.strings) for rr in answers)

    header = re.search(rb"^DKIM-Signature:(.*?)\r?\n(?=\S)", raw, re.S | re.M | re.I)
    tags = dict(re.findall(rb"\b([ds])=([\w.-]+)", header.group(1))) if header else {}
    verified = platform.run(lambda: dkim.verify(raw, dnsfunc=txt))
    assert (tags, verified) == ({b"d": b"domain01.dom", b"s": platform.info.dkim_selector.encode()}, True)
    # issue 11: one record, in more than one string, none longer than Designate takes (253)
    assert [(len(s) > 1, max(map(len, s)) <= 253) for s in served] == [(True, True)]


def test_internal_mail_takes_the_transport_map_to_the_delivery_vip(platform: Platform) -> None:
    msg = message("usuario02@domain01.dom", "twin: internal", sender="usuario01@domain01.dom")
    platform.send(msg, role="smtp_out", port=587, source=platform.corporate, login=_login(platform))
    platform.wait_delivered("usuario02", msg["Message-ID"])
    vip = re.escape(platform.vip("mailstore"))
    assert platform.wait_log("smtp_out", "postfix.log",
                             rf"to=<usuario02@domain01\.dom>, relay={vip}\[{vip}\]:25,.*status=sent")
