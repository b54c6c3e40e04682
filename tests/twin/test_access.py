"""Reading mail in the twin: behaviours 11 (POP3, ManageSieve), 12 (SOGo) and 13 (IMAP) of the issue."""

from __future__ import annotations

import imaplib
import json

import pytest

from mailstrata.twin import clients as c
from tests.twin.helpers import Platform, message, sogo

pytestmark = pytest.mark.twin


def test_pop3_retrieves_a_delivered_message(platform: Platform) -> None:
    msg = message("usuario05@domain02.dom", "twin: pop3")
    platform.send(msg)
    platform.wait_delivered("usuario05", msg["Message-ID"])

    def retrieve() -> bool:
        pop = c.POP3(c.Endpoint(platform.vip("mailstore"), 110, platform.corporate))
        try:
            pop.stls(c.insecure_tls())
            pop.user("usuario05")
            pop.pass_(platform.password("usuario05"))
            count, _ = pop.stat()
            return any(msg["Message-ID"].encode() in b"\n".join(pop.top(i, 0)[1]) for i in range(1, count + 1))
        finally:
            pop.quit()

    assert platform.run(retrieve)


def test_sieve_script_uploaded_over_managesieve_takes_effect_on_the_next_delivery(platform: Platform) -> None:
    script = 'require ["fileinto"];\nif header :contains "subject" "twin-sieve" { fileinto "Projects"; }\n'

    def upload() -> list[bytes]:
        ms = c.ManageSieve(c.Endpoint(platform.vip("mailstore"), 4190, platform.corporate))
        try:
            return [ms.starttls(), ms.login("usuario03", platform.password("usuario03")), ms.put("twin", script),
                    ms.activate("twin")]
        finally:
            ms.close()

    assert all(r.startswith(b"OK") for r in platform.run(upload))
    msg = message("usuario03@domain01.dom", "twin-sieve: filed by the user's script")
    platform.send(msg)
    assert msg["Message-ID"] in platform.wait_delivered("usuario03", msg["Message-ID"], "Projects")


def test_sogo_login_through_the_webmail_vip_lists_the_delivered_message(platform: Platform) -> None:
    msg = message("usuario02@domain01.dom", "twin: seen in sogo")
    platform.send(msg)
    platform.wait_delivered("usuario02", msg["Message-ID"])
    login, inbox = sogo(platform, "usuario02", platform.password("usuario02"), view_inbox=True)
    assert inbox is not None
    subjects = [row[3] for row in json.loads(inbox.body)["headers"][1:]]
    assert (login.status, json.loads(login.body)["cn"], inbox.status, "twin: seen in sogo" in subjects) == (
        200, "usuario02", 200, True)


def test_sogo_login_with_a_wrong_password_fails(platform: Platform) -> None:
    login, _ = sogo(platform, "usuario02", "not-the-password")
    assert login.status == 403


def test_imap_login_with_a_wrong_password_fails(platform: Platform) -> None:
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        platform.run(lambda: platform.imap("usuario01", password="wrong").__enter__())


def test_imap_cleartext_login_without_tls_is_refused(platform: Platform) -> None:
    def plain() -> tuple[bool, str]:
        conn = c.IMAP(c.Endpoint(platform.vip("mailstore"), 143, platform.corporate))
        try:
            conn.login("usuario01", platform.password("usuario01"))
            return "LOGINDISABLED" in conn.capabilities, "logged in"
        except imaplib.IMAP4.error as exc:
            return "LOGINDISABLED" in conn.capabilities, str(exc)
        finally:
            conn.shutdown()

    disabled, result = platform.run(plain)
    assert (disabled, "PRIVACYREQUIRED" in result) == (True, True)


def test_imap_is_closed_to_internet_clients(platform: Platform) -> None:
    # the mailstore VIP's IMAP listener allows the corporate and platform networks only
    with pytest.raises((imaplib.IMAP4.abort, ConnectionError, OSError)):
        platform.run(lambda: c.IMAP(c.Endpoint(platform.vip("mailstore"), 143, platform.internet)))
