"""ActiveSync in the twin: a phone reaches SOGo's ActiveSync through the webmail VIP (HAProxy as Octavia, nginx,
sogod with the sogo-activesync bundle), authenticates with HTTP Basic against AD, lists its folders from the
mailstore over IMAPS, and may hold a Ping open longer than any hop's default timeout.

Bodies are WBXML, written and read by tests/support/activesync.py.
"""

from __future__ import annotations

import base64
import http.client
import time
from dataclasses import dataclass

import pytest

from mailstrata import contract
from mailstrata.twin import clients as c
from tests.support.activesync import (
    CONTENT_TYPE,
    DELETED_ITEMS,
    DRAFTS,
    INBOX,
    PROTOCOL,
    SENT_ITEMS,
    Element,
    decode,
    folder_sync_request,
    folders_by_type,
    ping_request,
)
from tests.twin.helpers import Platform

pytestmark = pytest.mark.twin

USER = "usuario03"
DEVICE = "MailstrataTwin1"

# ---- HTTP through the webmail VIP -------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


def activesync(platform: Platform, method: str, *, cmd: str | None = None, body: bytes | None = None,
               password: str | None = None, timeout: float = 60.0) -> Answer:
    """One ActiveSync request from the Internet through the webmail VIP, as a phone sends it (Basic auth)."""
    secret = platform.password(USER) if password is None else password
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"{USER}:{secret}".encode()).decode(),
        "MS-ASProtocolVersion": PROTOCOL,
        "User-Agent": "mailstrata-twin",
    }
    path = "/Microsoft-Server-ActiveSync"
    if cmd is not None:
        path += f"?Cmd={cmd}&User={USER}&DeviceId={DEVICE}&DeviceType=SmartPhone"
    if body is not None:
        headers["Content-Type"] = CONTENT_TYPE

    def go() -> Answer:
        conn = http.client.HTTPSConnection(platform.vip("webmail"), 443, source_address=(platform.internet, 0),
                                           context=c.insecure_tls(), timeout=timeout)
        try:
            start = time.monotonic()
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, data, time.monotonic() - start)
        finally:
            conn.close()

    return platform.run(go)


def folder_sync(platform: Platform) -> tuple[Answer, Element]:
    """A first FolderSync (SyncKey 0): the device's whole folder hierarchy."""
    answer = activesync(platform, "POST", cmd="FolderSync", body=folder_sync_request())
    assert (answer.status, answer.headers.get("content-type", "").startswith(CONTENT_TYPE)) == (200, True), answer
    return answer, decode(answer.body)


# ---- the tests -------------------------------------------------------------------------------------------


def test_options_through_the_webmail_vip_offers_activesync(platform: Platform) -> None:
    answer = activesync(platform, "OPTIONS")
    versions = answer.headers.get("ms-asprotocolversions", "").split(",")
    commands = answer.headers.get("ms-asprotocolcommands", "").split(",")
    assert (answer.status, PROTOCOL in versions, {"FolderSync", "Sync", "Ping", "SendMail"} <= set(commands)) == (
        200, True, True), answer.headers


def test_activesync_with_a_wrong_password_is_refused(platform: Platform) -> None:
    answer = activesync(platform, "OPTIONS", password="not-the-password")
    assert (answer.status, "ms-asprotocolversions" in answer.headers) == (401, False)


def test_first_folder_sync_lists_the_users_inbox(platform: Platform) -> None:
    _, tree = folder_sync(platform)
    inbox = [name for name, _ in folders_by_type(tree).get(INBOX, [])]
    assert (tree.name, tree.value("Status"), bool(tree.value("SyncKey")), inbox) == (
        "FolderSync", "1", True, ["INBOX"]), tree


def test_folder_sync_types_the_mailstores_special_folders(platform: Platform) -> None:
    # sogo.conf names the mailstore's Drafts, Sent and Trash: a phone files its drafts, sent mail and deletions
    # into the folders the webmail and IMAP clients use.
    _, tree = folder_sync(platform)
    types = folders_by_type(tree)
    assert {t: sorted(n for n, _ in types.get(t, [])) for t in (DRAFTS, DELETED_ITEMS, SENT_ITEMS)} == {
        DRAFTS: [contract.DRAFTS], DELETED_ITEMS: [contract.TRASH], SENT_ITEMS: [contract.SENT]}, types


def test_a_ping_is_held_past_every_hops_default_timeout(platform: Platform) -> None:
    # Push: the phone asks SOGo to hold a Ping for 90 s. SOGo's own default (10 s) would shorten it (Status 5),
    # nginx's default proxy_read_timeout (60 s) or Octavia's default data timeout (50 s) would cut it. SOGo
    # answers Status 1 ("heartbeat expired, nothing changed") after holding it the whole 90 s (3 polls of 30 s;
    # the Inbox was never Synced, so no change can end it early).
    _, tree = folder_sync(platform)
    [(_, inbox_id)] = folders_by_type(tree)[INBOX]
    heartbeat = 90
    answer = activesync(platform, "POST", cmd="Ping", body=ping_request(heartbeat, inbox_id), timeout=heartbeat + 60)
    ping = decode(answer.body) if answer.status == 200 and answer.body else Element("none")
    assert (answer.status, ping.name, ping.value("Status"), answer.seconds > heartbeat - 5) == (
        200, "Ping", "1", True), (answer, ping)
