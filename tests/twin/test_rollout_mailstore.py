"""Rolling a config change through the mailstore layer, one slot at a time, under load (issue 12).

GIVEN the twin under a steady load (Internet mail to the smtp-in VIP for two recipients, an IMAP client
polling their mailboxes through the mailstore VIP, one IMAP client in IDLE through it),
WHEN a config change that reaches the mailstores' rendered config (message_size_limit, which every Postfix
layer carries, the mailstores' delivery Postfix included) is rolled through both mailstore slots with the
rollout engine over `TwinCloud` (drain: member weight 0 and the placement agent's drain request, which moves
the slot's users to the other mailstore and kicks their sessions; wait for the slot's sessions to end or the
bounded timeout; replace; wait until its members are healthy; undrain),
THEN every message arrives exactly once, a full-text search (IMAP `SEARCH BODY <word>`, one per message, every
message) finds each one, the replaced servers run the changed config, and the IMAP clients were served
throughout: a poll that failed succeeded on its one retry, and every IDLE session the rollout broke (a kick,
or its front stopping) was opened again at the first try.

Every message has its own Message-ID and a word found in no other message. The mailstores keep
message_size_limit 26 MiB after the test while smtp-in and smtp-out send at most 25 MiB: harmless (the
receiving side accepts more than the senders send), so the change is not rolled back.
"""

from __future__ import annotations

import contextlib
import imaplib
import select
import smtplib
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailstrata.roles import Role
from mailstrata.twin import clients as c
from mailstrata.twin.platform import twin_config
from mailstrata.twin.rollout import TwinCloud
from mailstrata.twin.twin import Twin
from tests.twin.helpers import Platform, message
from tests.twin.test_rollout import CHANGED_SIZE, Load, ObservedCloud, Rollout, _arrived, _postconf, _report, _roll

pytestmark = pytest.mark.twin

LAYER = "mailstore"
RECIPIENTS = ("usuario03@domain01.dom", "usuario05@domain02.dom")  # default quota, 500 MB: room for the load
IDLE_USER = "usuario03"
QUEUES = ("smtp_in", "mailstore")  # the Postfix queues the load's mail passes through


def _letters(n: int) -> str:
    """`n` in base 26 over a-z: part of a word a Lucene tokenizer keeps whole (no digits, no punctuation)."""
    out = ""
    while True:
        n, r = divmod(n, 26)
        out = string.ascii_lowercase[r] + out
        if n == 0:
            return out


@dataclass
class MailstoreLoad(Load):
    """The load of a mailstore rollout. `Load`'s counters keep their meaning for `_report`; here
    `imap_failures` are polls that failed on their retry too, `idle_failures` IDLE sessions that could not
    be opened (a first one, or a reconnect)."""

    words: dict[str, str] = field(default_factory=dict)  # Message-ID -> the word only its body holds
    imap_retried: list[str] = field(default_factory=list)  # polls that failed once, then were retried
    idle_breaks: list[str] = field(default_factory=list)  # IDLE sessions that were open and broke

    def _send_in(self, pause: float) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            rcpt = RECIPIENTS[i % len(RECIPIENTS)]
            msg_id = f"<roll-{self.tag}-ms-{i}@example.net>"
            word = f"zq{_letters(int(self.tag.rsplit('-', 1)[-1]))}x{_letters(i)}"
            msg = message(rcpt, f"rollout {self.tag} {i}", body=f"mailstore rollout {word} under load\n")
            msg.replace_header("Message-ID", msg_id)
            source = f"127.200.{10 + i // 250}.{i % 250 + 1}"
            for attempt in range(10):
                self.attempts[msg_id] += 1
                try:
                    self.platform.send(msg, source=source)
                except (smtplib.SMTPException, OSError) as exc:
                    with self.lock:
                        self.errors.append(f"{msg_id}: {type(exc).__name__}: {exc}")
                    time.sleep(min(0.5 * (attempt + 1), 3))  # an MTA retries later
                    continue
                with self.lock:
                    self.sent[msg_id] = rcpt.split("@")[0]
                    self.words[msg_id] = word
                break
            time.sleep(pause)

    def _poll(self) -> None:
        """List a mailbox every second, alternating the recipients; a failed poll is retried once at once."""
        i = 0
        while not self.stop.is_set():
            i += 1
            login = RECIPIENTS[i % len(RECIPIENTS)].split("@")[0]
            for attempt in (1, 2):
                self.imap_sessions += 1
                try:
                    self.platform.ids(login)
                except Exception as exc:  # noqa: BLE001 - every failure is counted, and reported
                    what = f"{time.strftime('%H:%M:%S')} {login}: {type(exc).__name__}: {exc}"
                    (self.imap_retried if attempt == 1 else self.imap_failures).append(what)
                    time.sleep(0.5)
                    continue
                break
            self.stop.wait(1)

    def _idle_client(self) -> None:
        """One IMAP client in IDLE through the mailstore VIP, renewing its IDLE every 20 s. A session that was
        open and breaks is a break (a kick, its front stopped); one that cannot be opened is a failure."""
        opened = threading.Event()

        def session() -> None:
            with self.platform.imap(IDLE_USER) as conn:
                conn.select("INBOX", readonly=True)
                while not self.stop.is_set():
                    tag = conn._new_tag()  # type: ignore[attr-defined]  # imaplib has no IDLE
                    conn.send(tag + b" IDLE\r\n")
                    if not conn.readline().startswith(b"+"):
                        raise imaplib.IMAP4.error("IDLE refused")
                    opened.set()
                    renew = time.monotonic() + 20
                    while time.monotonic() < renew and not self.stop.is_set():
                        sock = conn.socket()
                        pending = getattr(sock, "pending", lambda: 0)()
                        readable = pending or select.select([sock], [], [], 0.5)[0]
                        if readable and not conn.readline():  # an untagged push (EXISTS, BYE), or EOF
                            raise imaplib.IMAP4.abort("the server closed the IDLE session")
                    conn.send(b"DONE\r\n")
                    while not (line := conn.readline()).startswith(tag):
                        if not line:
                            raise imaplib.IMAP4.abort("the server closed the session after DONE")

        while not self.stop.is_set():
            self.idle_sessions += 1
            opened.clear()
            try:
                self.platform.run(session)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, and reported
                what = f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}"
                if opened.is_set():
                    self.idle_breaks.append(what)  # reconnect at once, as a mail client does
                else:
                    self.idle_failures.append(what)
                    self.stop.wait(1)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        threads = [threading.Thread(target=self._send_in, args=(0.3,)), threading.Thread(target=self._poll),
                   threading.Thread(target=self._idle_client)]
        for t in threads:
            t.start()
        try:
            yield
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=120)


def _members_healthy(cloud: TwinCloud) -> bool | None:
    return all(m.status.healthy for m in cloud.members(Role.MAILSTORE)) or None


def _rollout_under_load(platform: Platform, cloud: ObservedCloud, load: MailstoreLoad) -> Rollout:
    # an earlier test may have left a mailstore member coming back (its checks rising): the engine would refuse
    c.wait_for(lambda: _members_healthy(cloud), "every mailstore member healthy", timeout=60, interval=1)
    t0 = time.monotonic()
    with load.running():
        time.sleep(5)  # the load is flowing and the IDLE session open before the first drain
        slots = _roll(cloud, Path(platform.info.root) / f"rollout-{load.tag}.json", (LAYER,))
        time.sleep(3)
    return Rollout(load, slots, round(time.monotonic() - t0, 1))


def _search(platform: Platform, load: MailstoreLoad) -> tuple[int, list[str]]:
    """(searches, the Message-IDs whose own word's `SEARCH BODY` does not return them), through the VIP."""
    missed: list[str] = []
    searches = 0
    for login in sorted(set(load.sent.values())):
        mine = {i: load.words[i] for i, who in load.sent.items() if who == login}

        def go(mine: dict[str, str] = mine, login: str = login) -> tuple[int, list[str]]:
            with platform.imap(login) as conn:
                conn.select("INBOX", readonly=True)
                _, data = conn.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
                by_seq = {}
                for item in data or []:
                    if isinstance(item, tuple):
                        seq = item[0].split()[0].decode()
                        for line in item[1].decode(errors="replace").splitlines():
                            if line.lower().startswith("message-id:"):
                                by_seq[seq] = line.split(":", 1)[1].strip()
                out = []
                for msg_id, word in mine.items():
                    typ, hits = conn.search(None, "BODY", word)
                    found = {by_seq.get(n.decode()) for n in (hits[0] or b"").split()} if typ == "OK" else set()
                    if msg_id not in found:
                        out.append(msg_id)
                return len(mine), out

        n, out = platform.run(go)
        searches += n
        missed += out
    return searches, missed


def test_a_config_change_rolled_through_the_mailstores_loses_no_mail_and_keeps_imap_served(
        platform: Platform) -> None:
    # GIVEN the twin under load, and a change that reaches the mailstores' rendered config
    base = twin_config(platform.info.config)
    changed = base.model_copy(update={"mail": base.mail.model_copy(update={"message_size_limit": CHANGED_SIZE})})
    tag = f"ms-{int(time.time())}"
    twin = Twin(platform.twin.root)
    cloud = ObservedCloud(twin, platform, tag, changed)
    load = MailstoreLoad(platform, tag)
    stores = [s.name for s in platform.info.servers_of(LAYER)]
    before = {s: len(platform.log(s, "placement.log")) for s in stores}
    # WHEN it is rolled through the mailstore layer, slot by slot, with the rollout engine
    result = _rollout_under_load(platform, cloud, load)
    agents = "".join(platform.log(s, "placement.log")[before[s]:] for s in stores)  # this rollout's rounds
    # THEN every message arrives once, search finds each, the replacements run the change, clients were served
    counts = _arrived(platform, load, set(load.sent), timeout=180, queues=QUEUES)
    searches, missed = _search(platform, load)
    kicks = agents.count("kicked")
    _report("rollout-mailstore", platform, result, counts, extra={
        "imap_retried": len(load.imap_retried), "imap_idle_breaks": len(load.idle_breaks),
        "imap_idle_reconnects": len(load.idle_breaks), "searches": searches, "search_missed": len(missed),
        "placement_kick_rounds": kicks})
    lost, duplicated = sorted(set(load.sent) - set(counts)), sorted(i for i, n in counts.items() if n > 1)
    for what, items in (("lost", lost), ("duplicated", duplicated),
                        ("retried polls", load.imap_retried), ("IDLE breaks", load.idle_breaks),
                        ("IDLE failures", load.idle_failures), ("polls failed twice", load.imap_failures),
                        ("search missed", missed)):
        if items:
            print(f"{what}: {items[:10]}")  # noqa: T201 - the evidence when something went wrong
    # each drain reached the placement agents (they published it and moved the slot's users away)
    assert {s: f"(draining: {s})" in agents for s in stores} == dict.fromkeys(stores, True)
    info = twin.info()
    assert info is not None
    rolled = {s.name: _postconf(s.root, "message_size_limit") for s in info.servers_of(LAYER)}
    assert rolled == dict.fromkeys(rolled, str(CHANGED_SIZE))
    assert {r.slot for r in result.slots} == set(rolled)
    assert (lost, duplicated) == ([], [])
    assert missed == []
    assert (load.beyond_one_retry, load.imap_failures, load.idle_failures) == ([], [], [])
