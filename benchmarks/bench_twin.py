"""Twin benchmark: end-to-end throughput of the platform against its two baselines (prints numbers).

    .venv/bin/python benchmarks/bench_twin.py [--messages 1000] [--levels 2,8,16] [--keep-up] [--reuse]

Measures, on this machine (root needed):

- the twin's start time (a fresh `twin up`) and memory (PSS of every process in its namespace);
- end-to-end: Postfix's `smtp-source` sends N messages from Internet addresses to the smtp-in VIP; the
  clock stops when all N are visible over IMAP (through the mailstore VIP);
- baseline "ceiling": the same N sent to the delivery VIP from a platform address, i.e. plain Postfix
  delivering over LMTP to Dovecot, no content filter;
- baseline "filter alone": the same N fed directly to amavisd-new (SpamAssassin + ClamAV) on every
  smtp_in server, split evenly, as each server's own Postfix would; the clock stops when amavisd has
  accepted (scanned and handed back) all N.

Every client runs inside the twin's namespace with a host name the loopback shim knows, so it connects
from the address it stands for (an Internet MTA, a platform server, or the smtp_in server itself).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mailstrata.twin import clients as c
from mailstrata.twin.twin import Twin, TwinInfo

RECIPIENT = ("usuario03", "usuario03@domain01.dom")  # default quota (2G, 100000 messages)
SENDER = "bench@example.net"  # SPF allows the twin's Internet (127.200.0.0/16)
HELO = "mail.example.net"
MAX_SESSIONS_PER_CLIENT = 4  # under smtpd_client_connection_count_limit (10)


@dataclass
class Run:
    scenario: str
    level: int
    messages: int
    accepted_s: float
    visible_s: float

    @property
    def accepted_rate(self) -> float:
        return self.messages / self.accepted_s

    @property
    def visible_rate(self) -> float:
        return self.messages / self.visible_s


def _message_file(path: Path, marker: str) -> None:
    path.write_text(
        f"From: Bench <{SENDER}>\nTo: {RECIPIENT[1]}\nSubject: bench {marker}\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\n"
        f"Message-ID: <{marker}@example.net>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
        + "A benchmark message of the mailstrata twin, about two kilobytes long.\n" * 28
    )


def _client(twin: Twin, name: str, address: str) -> str:
    """A host name the loopback shim binds to `address` (see mailstrata/twin/files/loopback_shim.c)."""
    (twin.root / "run" / "hosts" / name).write_text(address + "\n")
    return name


def _smtp_source(info: TwinInfo, host: str, target: str, count: int, sessions: int, msgfile: Path,
                 sender: str = SENDER) -> subprocess.Popen[bytes]:
    argv = ["smtp-source", "-d", "-s", str(sessions), "-m", str(count), "-M", HELO, "-f", sender,
            "-t", RECIPIENT[1], "-F", str(msgfile), target]
    return subprocess.Popen(["ip", "netns", "exec", info.netns, "unshare", "--uts", "--", "/bin/sh", "-c",
                             'hostname "$0" && exec "$@"', host, *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _visible(info: TwinInfo) -> int:
    """Messages in the recipient's INBOX and Junk (IMAP STATUS: the index, not a full-text search, which
    lags behind deliveries while Lucene indexes)."""
    def count() -> int:
        ep = c.Endpoint(info.vip("mailstore"), 143, info.corporate_client)
        with c.imap_login(ep, RECIPIENT[0], str(info.users[RECIPIENT[0]]["password"])) as conn:
            n = 0
            for box in ("INBOX", "Junk"):
                typ, data = conn.status(box, "(MESSAGES)")
                if typ == "OK" and data and data[0]:
                    n += int(data[0].decode().rsplit("MESSAGES", 1)[1].strip(" )"))
            return n

    return c.run(info.netns, count)


def _run(info: TwinInfo, scenario: str, level: int, messages: int,
         start: Callable[[Path, int, int], list[subprocess.Popen[bytes]]], workdir: Path) -> Run:
    marker = f"{scenario}-{level}-{uuid.uuid4().hex[:8]}"
    msgfile = workdir / f"{marker}.eml"
    _message_file(msgfile, marker)
    before = _visible(info)
    t0 = time.monotonic()
    procs = start(msgfile, level, messages)
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"smtp-source failed ({scenario}, level {level}): {err.decode()[-500:]}")
    accepted = time.monotonic() - t0
    deadline = t0 + 1800
    while _visible(info) - before < messages:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{scenario}: not all {messages} messages visible within 30 minutes")
        time.sleep(0.25)
    return Run(scenario, level, messages, accepted, time.monotonic() - t0)


def end_to_end(twin: Twin, info: TwinInfo) -> Callable[[Path, int, int], list[subprocess.Popen[bytes]]]:
    def start(msgfile: Path, level: int, messages: int) -> list[subprocess.Popen[bytes]]:
        clients = max(1, -(-level // MAX_SESSIONS_PER_CLIENT))
        sessions, counts = _split(level, clients), _split(messages, clients)
        return [_smtp_source(info, _client(twin, f"bench-mta-{i}", f"127.200.3.{i + 1}"),
                             f"{info.vip('smtp_in')}:25", counts[i], sessions[i], msgfile) for i in range(clients)]

    return start


def ceiling(twin: Twin, info: TwinInfo) -> Callable[[Path, int, int], list[subprocess.Popen[bytes]]]:
    # a platform address (the smtp_in subnet): the delivery VIP's port 25 accepts the platform only
    net = info.servers_of("smtp_in")[0].address.rsplit(".", 1)[0]

    def start(msgfile: Path, level: int, messages: int) -> list[subprocess.Popen[bytes]]:
        clients = max(1, -(-level // MAX_SESSIONS_PER_CLIENT))
        sessions, counts = _split(level, clients), _split(messages, clients)
        return [_smtp_source(info, _client(twin, f"bench-platform-{i}", f"{net}.{200 + i}"),
                             f"{info.vip('mailstore')}:25", counts[i], sessions[i], msgfile) for i in range(clients)]

    return start


def filter_alone(twin: Twin, info: TwinInfo) -> Callable[[Path, int, int], list[subprocess.Popen[bytes]]]:
    servers = info.servers_of("smtp_in")

    def start(msgfile: Path, level: int, messages: int) -> list[subprocess.Popen[bytes]]:
        sessions, counts = _split(level, len(servers)), _split(messages, len(servers))
        # each smtp_in server's own host name: to its amavisd the client is 127.0.0.1, as its Postfix is
        return [_smtp_source(info, s.fqdn, "127.0.0.1:10024", counts[i], max(1, sessions[i]), msgfile)
                for i, s in enumerate(servers)]

    return start


def memory_mb(info: TwinInfo) -> float:
    pids = subprocess.run(["ip", "netns", "pids", info.netns], capture_output=True, text=True).stdout.split()
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:"))
    return round(total / 1024, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--levels", default="2,8,16", help="comma-separated concurrency levels (SMTP sessions)")
    ap.add_argument("--reuse", action="store_true", help="use a running twin instead of a fresh one")
    ap.add_argument("--keep-up", action="store_true", help="leave the twin up afterwards")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    twin = Twin()
    if not args.reuse:
        twin.down()
    t0 = time.monotonic()
    info = twin.up()
    start_s = round(time.monotonic() - t0, 1)
    time.sleep(5)  # let start-up work (amavisd children, SOGo workers) settle before measuring memory
    mem = memory_mb(info)
    print(f"twin: started in {start_s} s (stages {info.stages_s}); memory {mem} MB PSS", flush=True)
    workdir = twin.root / "bench"
    workdir.mkdir(exist_ok=True)
    scenarios = {"end-to-end": end_to_end(twin, info), "ceiling": ceiling(twin, info),
                 "filter alone": filter_alone(twin, info)}
    runs: list[Run] = []
    try:
        for level in levels:
            for name, start in scenarios.items():
                r = _run(info, name, level, args.messages, start, workdir)
                runs.append(r)
                print(f"{name:13} sessions {level:3}: accepted in {r.accepted_s:6.1f} s "
                      f"({r.accepted_rate:6.1f} msg/s), visible over IMAP in {r.visible_s:6.1f} s "
                      f"({r.visible_rate:6.1f} msg/s)", flush=True)
    finally:
        if not args.keep_up:
            twin.down()
    print("\nsessions  end-to-end  filter-alone  ratio  ceiling   (msg/s; end-to-end = visible over IMAP, "
          "filter alone = accepted by amavisd)")
    for level in levels:
        e2e = next(r for r in runs if r.scenario == "end-to-end" and r.level == level)
        flt = next(r for r in runs if r.scenario == "filter alone" and r.level == level)
        top = next(r for r in runs if r.scenario == "ceiling" and r.level == level)
        ratio = e2e.visible_rate / flt.accepted_rate
        print(f"{level:8}  {e2e.visible_rate:10.1f}  {flt.accepted_rate:12.1f}  {ratio:5.2f}  {top.visible_rate:7.1f}")
    print(json.dumps({"start_s": start_s, "memory_mb_pss": mem, "stages_s": info.stages_s,
                      "runs": [r.__dict__ | {"accepted_rate": round(r.accepted_rate, 2),
                                             "visible_rate": round(r.visible_rate, 2)} for r in runs]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
