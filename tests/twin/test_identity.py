"""Each address is exactly one mailbox, end to end through the twin (issue 9, "Trust and identity").

The twin's directory holds two people with the local part `jsmith` (jsmith@domain01.dom, account jsmith;
jsmith@domain02.dom, account jsmith02) and jdoe, whose address (john.doe@domain01.dom) is not his account
name and who has aliases in proxyAddresses (jd@domain01.dom, john.doe@domain02.dom). Mail comes in through
smtp-in from the Internet, as any mail would; the people read it through the mailstore VIP and webmail.
"""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest

from mailstrata.twin import clients as c
from tests.twin.helpers import Platform, message, sogo

pytestmark = pytest.mark.twin

NAMESAKES = {"jsmith@domain01.dom": "jsmith", "jsmith@domain02.dom": "jsmith02"}  # address -> account


def _imap_ids(platform: Platform, login: str, password: str, search: str | None = None) -> list[str]:
    """Message-IDs in the INBOX of whoever `login` is, or those whose text holds `search` (IMAP SEARCH)."""

    def go() -> list[str]:
        with platform.imap(login, password=password) as conn:
            if search is None:
                return c.message_ids(conn)
            conn.select("INBOX", readonly=True)
            _, data = conn.search(None, "TEXT", search)
            out = []
            for num in (data[0] or b"").split():
                _, parts = conn.fetch(num, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                out += [p[1].decode().split(":", 1)[1].strip() for p in parts if isinstance(p, tuple)]
            return out

    return platform.run(go)


def _pop3_has(platform: Platform, login: str, password: str, msgid: str) -> bool:
    def go() -> bool:
        pop = c.POP3(c.Endpoint(platform.vip("mailstore"), 110, platform.corporate))
        try:
            pop.stls(c.insecure_tls())
            pop.user(login)
            pop.pass_(password)
            count, _ = pop.stat()
            return any(msgid.encode() in b"\n".join(pop.top(i, 0)[1]) for i in range(1, count + 1))
        finally:
            with contextlib.suppress(Exception):
                pop.quit()

    return platform.run(go)


@pytest.fixture(scope="module")
def namesakes_mail(platform: Platform) -> dict[str, tuple[str, str]]:
    """One message to each namesake, each with a word only its own body holds: address -> (Message-ID, word)."""
    sent = {}
    for address in NAMESAKES:
        word = "w" + uuid.uuid4().hex[:12]
        msg = message(address, f"twin identity: for {address}", body=f"{word}\n")
        platform.send(msg)
        sent[address] = (msg["Message-ID"], word)
    for address, account in NAMESAKES.items():
        c.wait_for(lambda a=address, acc=account: sent[a][0] in _imap_ids(platform, a, platform.password(acc)),
                   f"the message to {address}", timeout=90)
    return sent


def test_namesakes_each_read_only_their_own_mail_over_imap(platform: Platform,
                                                           namesakes_mail: dict[str, tuple[str, str]]) -> None:
    got = {a: sorted(m for m, _ in namesakes_mail.values() if m in _imap_ids(platform, a, platform.password(acc)))
           for a, acc in NAMESAKES.items()}
    assert got == {a: [namesakes_mail[a][0]] for a in NAMESAKES}


def test_namesakes_each_read_only_their_own_mail_over_pop3(platform: Platform,
                                                           namesakes_mail: dict[str, tuple[str, str]]) -> None:
    got = {(a, other): _pop3_has(platform, a, platform.password(acc), namesakes_mail[other][0])
           for a, acc in NAMESAKES.items() for other in NAMESAKES}
    assert got == {(a, other): a == other for a, other in got}


def test_namesakes_each_find_only_their_own_words_in_a_search(platform: Platform,
                                                              namesakes_mail: dict[str, tuple[str, str]]) -> None:
    got = {(a, other): _imap_ids(platform, a, platform.password(acc), search=namesakes_mail[other][1])
           for a, acc in NAMESAKES.items() for other in NAMESAKES}
    assert got == {(a, other): ([namesakes_mail[a][0]] if a == other else []) for a, other in got}


def test_a_namesake_cannot_log_in_with_the_others_password(platform: Platform) -> None:
    with pytest.raises(Exception, match="AUTHENTICATIONFAILED"):
        _imap_ids(platform, "jsmith@domain02.dom", platform.password("jsmith"))


def test_the_local_part_alone_is_no_login(platform: Platform) -> None:
    # "jsmith" is domain01's account name, so it logs in as him; "john.doe" is nobody's account name.
    assert isinstance(_imap_ids(platform, "jsmith", platform.password("jsmith")), list)
    with pytest.raises(Exception, match="AUTHENTICATIONFAILED"):
        _imap_ids(platform, "john.doe", platform.password("jdoe"))


def test_a_user_whose_address_is_not_his_account_gets_mail_to_the_address_and_the_aliases(platform: Platform) -> None:
    msgs = [message(to, f"twin identity: jdoe via {to}") for to in
            ("john.doe@domain01.dom", "jd@domain01.dom", "john.doe@domain02.dom")]
    for msg in msgs:
        platform.send(msg)
    ids = [m["Message-ID"] for m in msgs]
    for login in ("john.doe@domain01.dom", "jdoe"):  # the address and the account name reach one mailbox
        c.wait_for(lambda lg=login: all(i in _imap_ids(platform, lg, platform.password("jdoe")) for i in ids),
                   f"jdoe's three messages, logged in as {login}", timeout=90)


def test_webmail_logs_each_namesake_in_by_address_as_themselves(platform: Platform) -> None:
    got = {}
    for address, account in NAMESAKES.items():
        login, _ = sogo(platform, address, platform.password(account))
        got[address] = (login.status, json.loads(login.body).get("cn") if login.status == 200 else None)
    assert got == {"jsmith@domain01.dom": (200, "jsmith"), "jsmith@domain02.dom": (200, "jsmith02")}
