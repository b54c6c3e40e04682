"""Rolling a config change through smtp-in and smtp-out, one slot at a time, under load (issue 12).

GIVEN the twin under a steady load (Internet mail to the smtp-in VIP, authenticated submissions to the
smtp-out VIP, an IMAP client reading through the mailstore VIP), with the delivery pool held (its members
`admin_state_up = false`) so that every smtp-in and smtp-out slot has mail in its queue when it is replaced,
WHEN a config change (message_size_limit) is rolled through both layers slot by slot (drain, wait for the
slot's sessions to end, replace, wait until its members are healthy, undrain) with `TwinCloud`,
THEN with the spool volume every message arrives exactly once and no client session failed beyond one
retry; without it (`spool=False`) exactly the mail queued on the replaced slots is lost.

Every message has its own Message-ID; messages are counted in the recipients' mailboxes over IMAP.
"""

from __future__ import annotations

import collections
import contextlib
import imaplib
import json
import re
import select
import smtplib
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailstrata.config.model import PlatformConfig
from mailstrata.roles import Role
from mailstrata.rollout import Journal, Slot, run
from mailstrata.twin import haproxy
from mailstrata.twin.platform import twin_config
from mailstrata.twin.rollout import MemberStatus, TwinCloud, operating_status
from mailstrata.twin.twin import Twin
from tests.twin.helpers import Platform, message

pytestmark = pytest.mark.twin

LAYERS = ("smtp_in", "smtp_out")
DRAIN_TIMEOUT_S = 60.0  # bounded wait for a drained slot's sessions to end
UP_TIMEOUT_S = 60.0  # Octavia's monitor brings a member back after 3 passing checks 5 s apart
DELIVERY_PORT = 25  # the mailstore pool smtp-in and smtp-out deliver to
IN_RCPT = "usuario03@domain01.dom"
OUT_RCPT = "usuario02@domain01.dom"
SUBMITTER = "usuario01"
CHANGED_SIZE = 26 * 1024 * 1024  # the change rolled out: message_size_limit 25 MiB -> 26 MiB


@dataclass
class Load:
    """Steady client traffic while the rollout runs; every attempt is counted."""

    platform: Platform
    tag: str
    stop: threading.Event = field(default_factory=threading.Event)
    sent: dict[str, str] = field(default_factory=dict)  # Message-ID -> recipient login
    attempts: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)
    imap_sessions: int = 0
    imap_failures: list[str] = field(default_factory=list)
    idle_sessions: int = 0  # IMAP IDLE sessions (one held open; a new one only after a failure)
    idle_failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _smtp(self, kind: str, pause: float) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            msg_id = f"<roll-{self.tag}-{kind}-{i}@example.net>"
            if kind == "in":
                msg = message(IN_RCPT, f"rollout {self.tag} {kind} {i}")
                kwargs: dict[str, object] = {"source": f"127.200.{10 + i // 250}.{i % 250 + 1}"}
            else:
                msg = message(OUT_RCPT, f"rollout {self.tag} {kind} {i}", sender=f"{SUBMITTER}@domain01.dom")
                kwargs = {"role": "smtp_out", "port": 587, "source": f"127.100.{10 + i // 250}.{i % 250 + 1}",
                          "login": (SUBMITTER, self.platform.password(SUBMITTER))}
            msg.replace_header("Message-ID", msg_id)
            for attempt in range(10):
                self.attempts[msg_id] += 1
                try:
                    self.platform.send(msg, **kwargs)  # type: ignore[arg-type]
                except (smtplib.SMTPException, OSError) as exc:
                    with self.lock:
                        self.errors.append(f"{msg_id}: {type(exc).__name__}: {exc}")
                    time.sleep(min(0.5 * (attempt + 1), 3))  # an MTA retries later
                    continue
                with self.lock:
                    self.sent[msg_id] = IN_RCPT.split("@")[0] if kind == "in" else OUT_RCPT.split("@")[0]
                break
            time.sleep(pause)

    def _imap(self) -> None:
        while not self.stop.is_set():
            self.imap_sessions += 1
            try:
                self.platform.ids(IN_RCPT.split("@")[0])
            except Exception as exc:  # noqa: BLE001 - every failure is counted, and reported
                self.imap_failures.append(f"{type(exc).__name__}: {exc}")
            self.stop.wait(3)

    def _idle(self) -> None:
        """One IMAP client in IDLE through the mailstore VIP, renewing its IDLE every 20 s (RFC 2177 asks
        for less than 29 minutes); a session that breaks is counted and opened again."""
        login = IN_RCPT.split("@")[0]

        def session() -> None:
            with self.platform.imap(login) as conn:
                conn.select("INBOX", readonly=True)
                while not self.stop.is_set():
                    tag = conn._new_tag()  # type: ignore[attr-defined]  # imaplib has no IDLE
                    conn.send(tag + b" IDLE\r\n")
                    if not conn.readline().startswith(b"+"):
                        raise imaplib.IMAP4.error("IDLE refused")
                    renew = time.monotonic() + 20
                    while time.monotonic() < renew and not self.stop.is_set():
                        sock = conn.socket()
                        pending = getattr(sock, "pending", lambda: 0)()
                        readable = pending or select.select([sock], [], [], 0.5)[0]
                        if readable and not conn.readline():  # an untagged push (EXISTS), or EOF
                            raise imaplib.IMAP4.abort("the server closed the IDLE session")
                    conn.send(b"DONE\r\n")
                    while not (line := conn.readline()).startswith(tag):
                        if not line:
                            raise imaplib.IMAP4.abort("the server closed the session after DONE")

        while not self.stop.is_set():
            self.idle_sessions += 1
            try:
                self.platform.run(session)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, and reported
                self.idle_failures.append(f"{type(exc).__name__}: {exc}")
                self.stop.wait(1)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        threads = [threading.Thread(target=self._smtp, args=("in", 0.3)),
                   threading.Thread(target=self._smtp, args=("out", 0.6)),
                   threading.Thread(target=self._imap), threading.Thread(target=self._idle)]
        for t in threads:
            t.start()
        try:
            yield
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=120)

    @property
    def beyond_one_retry(self) -> list[str]:
        return [m for m, n in self.attempts.items() if n > 2]


@dataclass
class SlotReport:
    slot: str
    sessions_at_drain: int | None
    drain_wait_s: float
    queued: list[str]
    replace_s: float
    wait_up_s: float


# a queue file is records (type, length, data): a header is not at the start of a line
_MSGID = re.compile(rb"Message-ID:\s*(<[^>\r\n]+>)", re.I)


def _queued_ids(platform: Platform, slot: str) -> list[str]:
    """The Message-IDs in the slot's Postfix queue files (through its queue_directory, spool or not)."""
    server = next(s for s in platform.info.servers if s.name == slot)
    queue = Path(server.root) / "var/spool/postfix"
    out: set[str] = set()
    for d in ("incoming", "active", "deferred", "hold", "maildrop"):
        for f in (queue / d).rglob("*"):
            with contextlib.suppress(OSError):
                if f.is_file():
                    out.update(m.decode() for m in _MSGID.findall(f.read_bytes()))
    return sorted(out)


class ObservedCloud(TwinCloud):
    """The twin's cloud, noting which of this load's messages each slot held in its queue when replaced."""

    def __init__(self, twin: Twin, platform: Platform, tag: str, config: PlatformConfig) -> None:
        super().__init__(twin, config=config)
        self.platform = platform
        self.tag = tag
        self.queued: dict[str, list[str]] = {}

    def replace(self, slot: str) -> None:
        self.queued[slot] = [i for i in _queued_ids(self.platform, slot) if f"<roll-{self.tag}-" in i]
        super().replace(slot)


def _roll(cloud: ObservedCloud, journal_path: Path, roles: tuple[str, ...] = LAYERS) -> list[SlotReport]:
    """The rollout engine (mailstrata.rollout.run) over the twin's cloud, layer by layer in `roles`' order."""
    layers = [Role(r) for r in roles]
    slots = [Slot(Role(s.role), s.name) for s in cloud.platform.info.servers if s.role in roles]
    journal = run(cloud, Journal.start(journal_path, sorted(slots, key=lambda s: (layers.index(s.layer), s.name))),
                  drain_timeout=dict.fromkeys(layers, DRAIN_TIMEOUT_S), up_timeout=UP_TIMEOUT_S, poll=0.5,
                  say=lambda _m: None)
    return [SlotReport(r.name, r.sessions_at_drain, r.seconds.get("sessions_ended", 0.0), cloud.queued[r.name],
                       r.seconds.get("replaced", 0.0), r.seconds.get("up", 0.0)) for r in journal.slots]


@contextlib.contextmanager
def _delivery_held(cloud: TwinCloud, platform: Platform) -> Iterator[None]:
    """The mailstores' delivery members `admin_state_up = false`: smtp-in and smtp-out defer and queue."""
    stores = [s.name for s in platform.info.servers_of("mailstore")]
    for slot in stores:
        cloud.set_admin_state(slot, False, port=DELIVERY_PORT)
    try:
        yield
    finally:
        for slot in stores:
            cloud.set_admin_state(slot, True, port=DELIVERY_PORT)


def _arrived(platform: Platform, load: Load, expected: set[str], timeout: float,
             queues: tuple[str, ...] = LAYERS) -> collections.Counter[str]:
    """Message-ID -> copies in the recipients' mailboxes, once `expected` all arrived (or the timeout)."""
    deadline = time.monotonic() + timeout
    flushed = 0.0
    while True:
        counts: collections.Counter[str] = collections.Counter()
        for login in set(load.sent.values()):
            counts.update(i for i in platform.ids(login) if i in load.sent)
        if expected <= set(counts) or time.monotonic() > deadline:
            return counts
        if time.monotonic() - flushed > 10:  # deferred mail waits for the next queue run: flush, as an operator
            for layer in queues:
                platform.twin.flush_queues(layer)
            flushed = time.monotonic()
        time.sleep(2)


@dataclass
class Rollout:
    load: Load
    slots: list[SlotReport]
    rollout_s: float

    @property
    def queued(self) -> set[str]:
        return {i for r in self.slots for i in r.queued}


def _rollout_under_load(platform: Platform, twin: Twin, config: PlatformConfig, tag: str) -> Rollout:
    cloud = ObservedCloud(twin, platform, tag, config)
    load = Load(platform, tag)
    slots: list[SlotReport] = []
    t0 = time.monotonic()
    with load.running():
        with _delivery_held(cloud, platform):
            time.sleep(5)  # every slot has mail in its queue before the rollout starts
            slots = _roll(cloud, Path(platform.info.root) / f"rollout-{tag}.json")
        time.sleep(2)
    return Rollout(load, slots, round(time.monotonic() - t0, 1))


def _report(name: str, platform: Platform, result: Rollout, counts: collections.Counter[str],
            extra: dict[str, object] | None = None) -> None:
    load, slots = result.load, result.slots
    data = {
        "rollout_s": result.rollout_s,
        "slots": [{"slot": r.slot, "sessions_at_drain": r.sessions_at_drain, "drain_wait_s": r.drain_wait_s,
                   "queued": len(r.queued), "replace_s": r.replace_s, "wait_up_s": r.wait_up_s} for r in slots],
        "sent": len(load.sent), "arrived": len(counts), "duplicated": sum(1 for n in counts.values() if n > 1),
        "lost": len(set(load.sent) - set(counts)), "smtp_sessions": sum(load.attempts.values()),
        "smtp_failed_attempts": len(load.errors), "beyond_one_retry": len(load.beyond_one_retry),
        "imap_sessions": load.imap_sessions, "imap_failures": len(load.imap_failures),
        "imap_idle_sessions": load.idle_sessions, "imap_idle_failures": len(load.idle_failures),
        **(extra or {}),
    }
    print(f"\n{name}: {json.dumps(data, indent=1)}")  # noqa: T201 - the numbers docs/benchmarks.md quotes
    (Path(platform.info.logs) / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")


def _postconf(root: str, key: str) -> str:
    return subprocess.run(["postconf", "-c", f"{root}/etc/postfix", "-h", key], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_config_change_rolled_slot_by_slot_loses_no_mail_with_the_spool_volume(platform: Platform) -> None:
    base = twin_config(platform.info.config)
    changed = base.model_copy(update={"mail": base.mail.model_copy(update={"message_size_limit": CHANGED_SIZE})})
    result = _rollout_under_load(platform, Twin(platform.twin.root), changed, f"spool-{int(time.time())}")
    load, slots = result.load, result.slots
    counts = _arrived(platform, load, set(load.sent), timeout=240)
    _report("rollout-spool", platform, result, counts)
    info = Twin(platform.twin.root).info()
    assert info is not None
    rolled = {s.name: _postconf(s.root, "message_size_limit") for role in LAYERS for s in info.servers_of(role)}
    assert rolled == dict.fromkeys(rolled, str(CHANGED_SIZE))
    assert {r.slot: len(r.queued) > 0 for r in slots} == {r.slot: True for r in slots}
    lost = set(load.sent) - set(counts)
    assert (sorted(lost), [i for i, n in counts.items() if n > 1]) == ([], [])
    assert (load.beyond_one_retry, load.imap_failures, load.idle_failures) == ([], [], [])


def test_without_the_spool_volume_the_mail_queued_on_replaced_slots_is_lost(platform: Platform) -> None:
    # the same rollout (back to the config the twin was started with), with no volume outliving a server
    base = twin_config(platform.info.config)
    result = _rollout_under_load(platform, Twin(platform.twin.root, spool=False), base, f"nospool-{int(time.time())}")
    load, queued = result.load, result.queued
    counts = _arrived(platform, load, set(load.sent) - queued, timeout=240)
    time.sleep(10)  # anything still to come from a queue would be delivered by now
    for layer in LAYERS:
        platform.twin.flush_queues(layer)
    counts = _arrived(platform, load, set(load.sent) - queued, timeout=30)
    _report("rollout-no-spool", platform, result, counts)
    lost = set(load.sent) - set(counts)
    assert (len(queued) > 0, sorted(lost), [i for i, n in counts.items() if n > 1]) == (True, sorted(queued), [])


# ---- the pieces, without the twin ---------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "weight", "expected"), [
    ("UP", "1", MemberStatus.ONLINE),
    ("UP", "0", MemberStatus.DRAINING),  # haproxy_query.get_pool_status: UP with weight 0 is DRAIN
    ("DRAIN", "0", MemberStatus.DRAINING),
    ("DOWN", "0", MemberStatus.ERROR),  # a failing health check, drained or not
    ("DOWN 1/3", "1", MemberStatus.ERROR),
    ("UP 2/3", "1", MemberStatus.ONLINE),
    ("MAINT", "1", MemberStatus.OFFLINE),  # admin_state_up false
    ("no check", "1", MemberStatus.NO_MONITOR),
])
def test_member_status_is_mapped_as_octavia_maps_haproxy(status: str, weight: str, expected: MemberStatus) -> None:
    assert operating_status(status, weight) is expected


def test_each_backend_is_known_by_its_listener_port() -> None:
    cfg = ("frontend mail-smtp-out-587\n    bind 127.20.0.11:587\n    mode tcp\n"
           "    default_backend mail-smtp-out-587-pool\n\nbackend mail-smtp-out-587-pool\n    mode tcp\n")
    assert haproxy.backend_ports(cfg) == {"mail-smtp-out-587-pool": 587}
