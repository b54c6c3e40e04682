"""Open-relay tests against the twin: behaviour 8 of the issue.

Every client here is outside the platform: an Internet address (127.200.0.1) or a corporate client without
authentication. None of them may get mail for an outside domain accepted, however the address is written.
"""

from __future__ import annotations

import smtplib

import pytest

from mailstrata.twin.clients import insecure_tls
from mailstrata.twin.twin import EXTERNAL_DOMAIN
from tests.twin.helpers import Platform

pytestmark = pytest.mark.twin

TRICKS = {
    "plain": f"bob@{EXTERNAL_DOMAIN}",
    "percent hack": f"bob%{EXTERNAL_DOMAIN}@domain01.dom",
    "bang path": f"{EXTERNAL_DOMAIN}!bob@domain01.dom",
    "quoted local part": f'"bob@{EXTERNAL_DOMAIN}"@domain01.dom',
    "source route": f"@domain01.dom:bob@{EXTERNAL_DOMAIN}",
    "double at": f"bob@{EXTERNAL_DOMAIN}@domain01.dom",
}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_internet_client_cannot_relay_through_smtp_in(platform: Platform, trick: str) -> None:
    code, text = platform.rcpt_reply(TRICKS[trick])
    assert code // 100 == 5, f"{trick}: {code} {text}"


def test_internet_client_cannot_reach_smtp_out_port_25(platform: Platform) -> None:
    # smtp-out's port 25 takes the platform's own servers only: the LB drops anyone else
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        platform.rcpt_reply(TRICKS["plain"], role="smtp_out", port=25)


def test_internet_client_cannot_reach_submission(platform: Platform) -> None:
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
        platform.rcpt_reply(TRICKS["plain"], role="smtp_out", port=587)


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_corporate_client_without_auth_cannot_relay_through_smtp_out(platform: Platform, trick: str) -> None:
    def steps(s: smtplib.SMTP) -> tuple[int, str]:
        s.ehlo("client.example")
        s.starttls(context=insecure_tls())
        s.ehlo("client.example")
        code, text = s.mail("usuario01@domain01.dom")
        if code >= 400:
            return code, text.decode()
        code, text = s.rcpt(TRICKS[trick])
        return code, text.decode()

    code, text = platform.session("smtp_out", 587, platform.corporate, steps)
    assert code // 100 == 5, f"{trick}: {code} {text}"
