"""Server failures in the twin: nothing is lost when one smtp_in or mailstore server stops mid-stream.

Each message comes from its own Internet address (many outside MTAs): one client sending 200 messages
a minute would rightly hit Postfix's per-client connection rate limit. The sender behaves like an MTA: a
message whose transaction fails (connection refused or reset, a 4xx, a timeout) is tried again later;
only a 250 after DATA counts as sent. Messages are counted by Message-ID in the recipient's mailbox:
each must be there exactly once.
"""

from __future__ import annotations

import collections
import contextlib
import smtplib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from mailstrata.twin import clients as c
from tests.twin.helpers import Platform, message

pytestmark = pytest.mark.twin

STREAM = 200
SENDERS = 4  # concurrent SMTP clients, as several outside MTAs would be
DOWN_WITHIN_S = 30  # Octavia's monitor: 3 failed checks 5 s apart (max_retries_down 3, delay 5)
UP_WITHIN_S = 40


@dataclass
class Stream:
    """`count` messages to `to`, sent by `SENDERS` retrying clients from the Internet."""

    platform: Platform
    to: str
    count: int
    tag: str
    sent: list[str] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    def _send_one(self, msg_id: str, i: int) -> None:
        msg = message(self.to, f"twin stream {self.tag} {i}")
        msg.replace_header("Message-ID", msg_id)
        for attempt in range(20):
            try:
                self.platform.send(msg, source=f"127.200.{2 + i // 250}.{i % 250 + 1}")
                self.sent.append(msg_id)
                return
            except (smtplib.SMTPException, OSError) as exc:
                self.retries += 1
                self.errors.append(f"{i}: {type(exc).__name__}: {exc}")
                time.sleep(min(0.5 * (attempt + 1), 3))  # an MTA's queue retries later, not at once
        raise AssertionError(f"message {i} could not be sent after 20 attempts: {self.errors[-1]}")

    def run(self) -> None:
        ids = [f"<twin-{self.tag}-{i}@example.net>" for i in range(self.count)]
        chunks = [list(enumerate(ids))[k::SENDERS] for k in range(SENDERS)]

        def worker(chunk: list[tuple[int, str]]) -> None:
            for i, msg_id in chunk:
                self._send_one(msg_id, i)

        threads = [threading.Thread(target=worker, args=(ch,)) for ch in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    @property
    def ids(self) -> list[str]:
        return [f"<twin-{self.tag}-{i}@example.net>" for i in range(self.count)]


@contextlib.contextmanager
def running(stream: Stream) -> Iterator[threading.Thread]:
    t = threading.Thread(target=stream.run)
    t.start()
    try:
        yield t
    finally:
        t.join(timeout=600)


def _wait_sent(stream: Stream, n: int) -> None:
    c.wait_for(lambda: len(stream.sent) >= n, f"{n} messages sent", timeout=120, interval=0.1)


def _counts(platform: Platform, login: str, ids: list[str]) -> dict[str, int]:
    counter = collections.Counter(platform.ids(login))
    return {i: counter[i] for i in ids}


def _wait_exactly_once(platform: Platform, login: str, ids: list[str], timeout: float = 180) -> dict[int, int]:
    """How many messages arrived how many times, once all arrived (or the timeout passed).

    Mail whose hop to the delivery VIP broke when a server stopped waits in an smtp_in queue for the next
    retry (minimal_backoff_time, 300 s); the test flushes the queues as an operator would.
    """
    deadline = time.monotonic() + timeout
    flushed = 0.0
    while True:
        counts = _counts(platform, login, ids)
        if all(counts.values()) or time.monotonic() > deadline:
            return dict(collections.Counter(counts.values()))
        if time.monotonic() - flushed > 10:
            platform.twin.flush_queues("smtp_in")
            platform.twin.flush_queues("mailstore")
            flushed = time.monotonic()
        time.sleep(1)


def _wait_member(platform: Platform, role: str, server: str, *, up: bool, timeout: float) -> None:
    def state_ok() -> bool:
        down = platform.members_down(role)
        is_down = any(f"/{server} " in row for row in down)
        return is_down != up

    c.wait_for(state_ok, f"{server} {'UP' if up else 'DOWN'} in the {role} load balancer", timeout=timeout,
               interval=0.5)


def test_stopping_one_smtp_in_server_mid_stream_loses_nothing(platform: Platform) -> None:
    victim = platform.info.servers_of("smtp_in")[-1].name
    stream = Stream(platform, "usuario03@domain01.dom", STREAM, f"mx-{int(time.time())}")
    try:
        with running(stream):
            _wait_sent(stream, STREAM // 4)
            platform.twin.stop_server(victim)
            _wait_member(platform, "smtp_in", victim, up=False, timeout=DOWN_WITHIN_S)
    finally:
        platform.twin.start_server(victim)  # its queue (if any) is delivered, as after a real reboot
    assert (len(stream.sent), _wait_exactly_once(platform, "usuario03", stream.ids)) == (STREAM, {1: STREAM})


def test_stopping_one_mailstore_mid_stream_keeps_delivery_and_reading_going(platform: Platform) -> None:
    victim = platform.info.servers_of("mailstore")[-1].name
    stream = Stream(platform, "usuario05@domain02.dom", STREAM, f"store-{int(time.time())}")
    reads_after_stop: list[int] = []
    try:
        with running(stream) as sending:
            _wait_sent(stream, STREAM // 3)
            platform.twin.stop_server(victim)
            while sending.is_alive():
                reads_after_stop.append(len(platform.ids("usuario05")))  # IMAP through the VIP
                time.sleep(0.5)
            _wait_member(platform, "mailstore", victim, up=False, timeout=DOWN_WITHIN_S)
            reads_after_stop.append(len(platform.ids("usuario05")))
        # Everything sent is readable through the surviving server before the other comes back, except
        # what the stopped server had already accepted (250) into its own queue: that waits on its local
        # disk until it returns, as on a real server.
        deadline = time.monotonic() + 120
        while True:
            counts = _counts(platform, "usuario05", stream.ids)
            missing = [i for i, n in counts.items() if n == 0]
            queued = _in_queue(platform, victim, missing)
            if queued == missing or time.monotonic() > deadline:
                break
            platform.twin.flush_queues("smtp_in")
            time.sleep(2)
        survivor = dict(collections.Counter(counts.values()))
    finally:
        platform.twin.start_server(victim)
    final = _wait_exactly_once(platform, "usuario05", stream.ids)
    grew = len(reads_after_stop) >= 2 and reads_after_stop[-1] > reads_after_stop[0]
    assert (grew, queued, set(survivor) <= {0, 1}, final) == (True, missing, True, {1: STREAM}), (
        f"reads after the stop: {reads_after_stop}; missing while stopped: {missing}"
    )


def _in_queue(platform: Platform, server: str, message_ids: list[str]) -> list[str]:
    """The message IDs found in the queue files of `server`'s Postfix (readable while it is stopped)."""
    queue = platform.twin.root / "servers" / server / "var/spool/postfix"
    texts = [f.read_bytes() for d in ("incoming", "active", "deferred", "hold") for f in (queue / d).rglob("*")
             if f.is_file()]
    return [i for i in message_ids if any(i.encode() in t for t in texts)]


def test_restarted_servers_rejoin_their_pools(platform: Platform) -> None:
    victims = {"smtp_in": platform.info.servers_of("smtp_in")[-1].name,
               "mailstore": platform.info.servers_of("mailstore")[-1].name}
    for name in victims.values():
        platform.twin.stop_server(name)
    for role, name in victims.items():
        _wait_member(platform, role, name, up=False, timeout=DOWN_WITHIN_S)
    for name in victims.values():
        platform.twin.start_server(name)
    for role, name in victims.items():
        _wait_member(platform, role, name, up=True, timeout=UP_WITHIN_S)
    # new mail is handled by the restarted smtp_in server again
    before = platform.log(victims["smtp_in"], "postfix.log").count("client=")
    ids = []
    for i in range(12):
        msg = message("usuario03@domain01.dom", f"twin rejoin {i}")
        platform.send(msg, source=f"127.200.1.{i + 1}")  # different clients: least-connections spreads them
        ids.append(msg["Message-ID"])
    platform.wait_delivered("usuario03", ids)
    after = platform.log(victims["smtp_in"], "postfix.log").count("client=")
    assert (platform.members_down("smtp_in"), platform.members_down("mailstore"), after > before) == ([], [], True)
