"""End-to-end mail flow through the twin: behaviours 1-4 and 9 of the issue.

GIVEN the default platform running in the twin (two smtp_in and two mailstore servers behind their VIPs),
WHEN a client sends or reads mail as the test says, THEN the platform answers as it would in production.
"""

from __future__ import annotations

import re

import pytest

from tests.twin.helpers import Platform, message

pytestmark = pytest.mark.twin


def test_internet_mail_reaches_the_mailbox_readable_from_every_mailstore(platform: Platform) -> None:
    # behaviour 1: Internet -> smtp-in VIP -> amavis -> delivery VIP -> LMTP -> IMAP on each mailstore
    msg = message("usuario01@domain01.dom", "twin: flow")
    assert platform.send(msg) == {}
    seen = {server: msg["Message-ID"] in platform.wait_delivered("usuario01", msg["Message-ID"], server=server)
            for server in platform.mailstores()}
    assert seen == {server: True for server in platform.mailstores()}


def test_internet_mail_crossed_the_content_filter(platform: Platform) -> None:
    msg = message("usuario01@domain01.dom", "twin: filtered")
    platform.send(msg)
    platform.wait_delivered("usuario01", msg["Message-ID"])
    raw = platform.fetch("usuario01", msg["Message-ID"]) or b""
    assert (b"(amavis, port 10024)" in raw, b"X-Spam-Flag: NO" in raw) == (True, True)


def test_unknown_recipient_is_rejected_at_smtp_time(platform: Platform) -> None:
    # behaviour 2
    code, text = platform.rcpt_reply("nobody@domain01.dom")
    assert (code // 100, "User unknown" in text) == (5, True)


def test_distribution_list_expands_to_its_members(platform: Platform) -> None:
    # behaviour 3: ventas@domain01.dom is an AD group with members usuario01 and usuario02
    msg = message("ventas@domain01.dom", "twin: to the list")
    assert platform.send(msg) == {}
    got = {login: msg["Message-ID"] in platform.wait_delivered(login, msg["Message-ID"])
           for login in ("usuario01", "usuario02")}
    assert got == {"usuario01": True, "usuario02": True}


def test_quota_from_the_directory_defers_mail_that_does_not_fit(platform: Platform) -> None:
    # behaviour 4: usuario01's AD attribute `info` holds 1048576 bytes; the platform's over-quota
    # behaviour is `defer` (quota_full_tempfail): LMTP answers 4xx and the message waits in the queue.
    assert platform.info.users["usuario01"]["quota"] == "1048576"
    msg = message("usuario01@domain01.dom", "twin: too big for the quota", body=("y" * 999 + "\n") * 1200)
    assert platform.send(msg) == {}
    match = platform.wait_log(
        "mailstore", "postfix.log",
        r"to=<usuario01@domain01\.dom>.*status=deferred.*4\.2\.2[^\n]*[Qq]uota", timeout=60)
    assert (bool(match), platform.absent_after("usuario01", msg["Message-ID"], 2)) == (True, True)


def test_real_client_address_reaches_postfix_through_the_proxy_pool(platform: Platform) -> None:
    # behaviour 9 (SMTP): smtp-in's Postfix logs the Internet client, not the load balancer
    msg = message("usuario02@domain01.dom", "twin: who is the client")
    platform.send(msg)
    assert platform.wait_log("smtp_in", "postfix.log", rf"client=\S*\[{re.escape(platform.internet)}\]")


def test_real_client_address_reaches_dovecot_through_the_proxy_pool(platform: Platform) -> None:
    # behaviour 9 (IMAP): Dovecot logs the corporate client's address as rip=, not the amphora's
    platform.ids("usuario02")
    assert platform.wait_log("mailstore", "dovecot.log",
                             # (logged under the canonical name, the primary address)
                             rf"imap-login: Info: Login: user=<usuario02@domain01\.dom>.*"
                             rf"rip={re.escape(platform.corporate)},")
