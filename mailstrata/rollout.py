"""`mailstrata rollout [LAYER ...]`: replace servers one slot at a time, keeping every layer serving (issue 12).

A deploy never replaces a running server: the server's `user_data`, image, flavor and key pair are in its
`lifecycle.ignore_changes`, and each slot has two `terraform_data` resources (`MailLayer`):

- `revision-NN`: what the slot's server should be built from (the hash of its user-data as Nova would receive
  it, the image, flavor and key pair). A config change updates it in place; the plan shows it.
- `rollout-NN`: the revision the running server was built from, kept by `ignore_changes = [input]`. The server
  has `replace_triggered_by = [rollout-NN]`, so `terraform apply -replace=<rollout-NN>` replaces the server,
  from the config as it is now, and nothing else does.

A slot is *pending* when its `rollout-NN` differs from its `revision-NN` in the state. For each pending slot,
layer after layer, the rollout:

1. **drains** it: `var.mailstrata_drain` names the server, so its load balancer members get weight 0 (Octavia
   keeps their sessions and sends them no new ones; a healthy member with weight 0 reports DRAINING) and its
   metadata says `mailstrata_drain = true` (the mailstores' placement agent moves the server's users away);
2. **waits** until its sessions end, or the layer's drain timeout;
3. **replaces** it, its members disabled meanwhile (`var.mailstrata_offline`: `admin_state_up = false`; a
   weight-0 member still takes the clients that source-IP persistence sticks to it, a disabled one none):
   destroy, then create on the same Neutron port. The address, the load balancer members,
   the security groups and every other layer's user-data that names the address stay as they are; the slot's
   spool volume (its mail queue) is detached from the old server and attached to the new one. Creating
   the new server before destroying the old one cannot work on the same port (terraform-provider-openstack
   #439, "Port ... is still in use"), and a new port per server generation would change the address that
   members, relay lists, SPF and PTR records name;
4. **waits** until every member of the slot is healthy (ONLINE, or DRAINING while still drained);
5. **undrains** it, and goes on to the next slot.

It refuses to start while any member of a layer it would roll is down (ERROR or OFFLINE), other than a slot
the journal says it was working on. The journal (`rollout.json` in the stack's folder) records each finished
step: an interrupted rollout (Ctrl-C, a timeout, a lost session) resumes with `--resume` where it stopped.
`--dry-run` prints the steps and changes nothing.

The cloud is an interface (`Cloud`): `TerraformCloud` runs the real `terraform` in the synthesized stack's
folder and reads member health from Octavia with the `openstack` CLI (python-octaviaclient); the local twin
has its own (`mailstrata.twin.rollout`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from mailstrata.roles import MAIL_LAYER_ROLES, Role
from mailstrata.userdata.daemons import placement

JOURNAL = "rollout.json"
# Consumers before producers: a mailstore that understands a new setting is in place before smtp-in or
# smtp-out send with it; webmail, which only submits and reads, last.
LAYER_ORDER: tuple[Role, ...] = (Role.MAILSTORE, Role.SMTP_OUT, Role.SMTP_IN, Role.WEBMAIL)
# How long a drained slot's sessions may take to end (seconds). SMTP sessions are short (Postfix's smtpd_timeout is
# 300 s at worst, a session is usually done in seconds); IMAP IDLE never ends by itself, so mailstores get the
# time their placement agent needs to move users plus a bound after which Dovecot's shutdown closes the rest
# and the clients reconnect through the load balancer to another server. Webmail keeps no session on a server
# (SOGo's sessions are in the database), so its requests end quickly.
DRAIN_TIMEOUT_S: Mapping[Role, float] = {Role.SMTP_IN: 120, Role.SMTP_OUT: 120, Role.MAILSTORE: 300,
                                          Role.WEBMAIL: 60}
# A drained mailstore stays its users' home until the placement agents have moved them (docs/placement.md, "The
# bound"): its own agent reads the drain request at its next round, the others see its flag at theirs, each round
# taking at most an interval plus its own waiting (the metadata timeout, a probe timeout, Dovecot's re-read second).
# Its load balancer sessions cannot tell: the home serves the other fronts' proxied sessions and deliveries on its
# peer ports. Replaced before that, it takes its users' open sessions and deliveries in flight down with it (seen
# on the twin: logins "temporarily unavailable" and a message delivered twice). So a drained mailstore is not
# replaced before three such rounds, whatever its sessions.
DRAIN_MIN_S: Mapping[Role, float] = {
    Role.MAILSTORE: 3 * (placement.INTERVAL_SECONDS + placement.METADATA_TIMEOUT_SECONDS
                         + placement.PROBE_TIMEOUT_SECONDS + 1)}
UP_TIMEOUT_S = 1200.0  # a CentOS 7 server's first boot installs its packages: minutes, not seconds
POLL_S = 5.0
STEPS = ("drained", "sessions_ended", "replaced", "up", "undrained")


class RolloutError(RuntimeError):
    """The rollout cannot start or go on; the message says why and what to do."""


class MemberStatus(StrEnum):
    """Octavia's member `operating_status` (api-ref, load-balancer v2, "Status Codes")."""

    ONLINE = "ONLINE"
    DRAINING = "DRAINING"  # healthy, weight 0: keeps its sessions, gets no new ones
    ERROR = "ERROR"  # its health checks fail
    OFFLINE = "OFFLINE"  # admin_state_up is false
    NO_MONITOR = "NO_MONITOR"  # no health monitor: Octavia cannot tell
    DEGRADED = "DEGRADED"

    @property
    def healthy(self) -> bool:
        return self in (MemberStatus.ONLINE, MemberStatus.DRAINING, MemberStatus.NO_MONITOR)


@dataclass(frozen=True)
class Member:
    pool: str  # e.g. "smtp-in:25"
    slot: str  # the server's name
    status: MemberStatus


class Cloud(Protocol):
    """What a rollout needs from the cloud."""

    def members(self, layer: Role) -> list[Member]: ...

    def drain(self, slot: str) -> None: ...

    def undrain(self, slot: str) -> None: ...

    def sessions(self, slot: str) -> int | None: ...  # None: the cloud cannot tell; wait the drain timeout

    def replace(self, slot: str) -> None: ...


@dataclass(frozen=True)
class Slot:
    layer: Role
    name: str  # the server's name, e.g. mail-smtp-in-01


@dataclass
class SlotRecord:
    """One slot's progress in the journal, with what was measured."""

    layer: str
    name: str
    done: list[str] = field(default_factory=list)
    sessions_at_drain: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Journal:
    path: Path
    slots: list[SlotRecord]

    @classmethod
    def start(cls, path: Path, slots: Sequence[Slot]) -> Journal:
        journal = cls(path, [SlotRecord(s.layer.value, s.name) for s in slots])
        journal.save()
        return journal

    @classmethod
    def load(cls, path: Path) -> Journal:
        doc = json.loads(path.read_text())
        return cls(path, [SlotRecord(**r) for r in doc["slots"]])

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"slots": [asdict(r) for r in self.slots]}, indent=1, sort_keys=True) + "\n")
        tmp.replace(self.path)  # never half-written

    def unfinished(self) -> list[SlotRecord]:
        return [r for r in self.slots if "undrained" not in r.done]


def order(slots: Iterable[Slot], layers: Sequence[Role] = ()) -> list[Slot]:
    """`slots` in rollout order: layer by layer (`LAYER_ORDER`, or only `layers`), slot by slot."""
    wanted = [r for r in LAYER_ORDER if not layers or r in layers]
    return sorted((s for s in slots if s.layer in wanted), key=lambda s: (wanted.index(s.layer), s.name))


def plan_text(slots: Sequence[Slot], drain_timeout: Mapping[Role, float]) -> str:
    """The steps a rollout of `slots` takes, one line each (`--dry-run`)."""
    if not slots:
        return "Nothing to roll out: every server runs its slot's current revision.\n"
    lines = []
    for i, s in enumerate(slots, 1):
        lines += [f"{i}. {s.name} ({s.layer.value})",
                  "   drain: members weight 0, metadata mailstrata_drain=true",
                  f"   wait: its sessions end, at most {drain_timeout[s.layer]:g} s",
                  "   replace: destroy the server, create it on the same port; the spool volume moves over",
                  "   wait: its members healthy",
                  "   undrain: members weight 1"]
    return "\n".join(lines) + "\n"


def check_members(cloud: Cloud, layers: Iterable[Role], *, allowed: Iterable[str] = ()) -> None:
    """Refuse when a member of `layers` is down, except the slots in `allowed` (a resumed slot)."""
    allowed = set(allowed)
    down = [m for layer in layers for m in cloud.members(layer) if not m.status.healthy and m.slot not in allowed]
    if down:
        raise RolloutError("members are down, and a rollout would take another server out of their pools:\n" +
                           "\n".join(f"  {m.slot} in pool {m.pool}: {m.status.value}" for m in down) +
                           "\nRepair them (or replace them by hand) first, then run the rollout again.")


def run(cloud: Cloud, journal: Journal, *, drain_timeout: Mapping[Role, float] = DRAIN_TIMEOUT_S,
        up_timeout: float = UP_TIMEOUT_S, poll: float = POLL_S, say: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Journal:
    """Roll every unfinished slot of `journal`, one at a time, recording each step as it is done."""
    todo = journal.unfinished()
    layers = list(dict.fromkeys(Role(r.layer) for r in todo))
    check_members(cloud, layers, allowed=[r.name for r in todo if r.done])
    for rec in todo:
        _Slot(cloud, journal, rec, drain_timeout[Role(rec.layer)], up_timeout, poll, say, clock, sleep).roll()
    return journal


@dataclass
class _Slot:
    """One slot's rollout, step by step; a step the journal records as done is skipped (a resumed rollout)."""

    cloud: Cloud
    journal: Journal
    rec: SlotRecord
    drain_timeout: float
    up_timeout: float
    poll: float
    say: Callable[[str], None]
    clock: Callable[[], float]
    sleep: Callable[[float], None]

    def roll(self) -> None:
        name = self.rec.name
        self._step("drained", lambda: self.cloud.drain(name))
        self._step("sessions_ended", self._wait_sessions)
        self._step("replaced", lambda: self.cloud.replace(name))
        self._step("up", self._wait_up)
        self._step("undrained", lambda: self.cloud.undrain(name))

    def _step(self, step: str, action: Callable[[], None]) -> None:
        if step in self.rec.done:
            return
        self.say(f"{self.rec.name}: {step.replace('_', ' ')} ...")
        t0 = self.clock()
        action()
        self.rec.seconds[step] = round(self.clock() - t0, 1)
        self.rec.done.append(step)
        self.journal.save()

    def _wait_sessions(self) -> None:
        start = self.clock()
        deadline = start + self.drain_timeout
        n = self.rec.sessions_at_drain = self.cloud.sessions(self.rec.name)
        while n != 0 and self.clock() < deadline:
            self.sleep(self.poll)
            n = self.cloud.sessions(self.rec.name)
        left = "none" if n == 0 else ("unknown" if n is None else str(n))
        self.say(f"{self.rec.name}: sessions left: {left}")
        settle = start + min(DRAIN_MIN_S.get(Role(self.rec.layer), 0.0), self.drain_timeout) - self.clock()
        if settle > 0:  # a mailstore whose users may not have moved yet (DRAIN_MIN_S)
            self.sleep(settle)

    def _wait_up(self) -> None:
        layer = Role(self.rec.layer)
        deadline = self.clock() + self.up_timeout
        while True:
            mine = [m for m in self.cloud.members(layer) if m.slot == self.rec.name]
            if mine and all(m.status.healthy for m in mine):
                return
            if self.clock() >= deadline:
                raise RolloutError(
                    f"{self.rec.name} is not healthy {self.up_timeout:g} s after its replacement: " +
                    (", ".join(f"{m.pool} {m.status.value}" for m in mine) or "no members") +
                    ". It stays drained; see its console log, fix it, then `mailstrata rollout --resume`.")
            self.sleep(self.poll)


# ---- the real cloud: terraform in the stack's folder, Octavia's status through the openstack CLI ---------------

_SLOT = re.compile(r"-(\d+)$")


@dataclass(frozen=True)
class StackSlot:
    layer: Role
    name: str
    server: str  # Terraform address of the server
    rollout: str  # Terraform address of its rollout-NN
    revision: str  # ... of its revision-NN
    attach: str | None  # ... of its spool volume attachment


def stack_slots(doc: Mapping[str, Any]) -> list[StackSlot]:
    """The server slots of a synthesized stack (`cdk.tf.json`), from the servers' lifecycle."""
    out = []
    resources = doc.get("resource", {})
    attaches = resources.get("openstack_compute_volume_attach_v2", {})
    for key, body in sorted(resources.get("openstack_compute_instance_v2", {}).items()):
        role = (body.get("metadata") or {}).get("mailstrata_role")
        triggers = (body.get("lifecycle") or {}).get("replace_triggered_by") or []
        if role not in {r.value for r in MAIL_LAYER_ROLES} or not triggers:
            continue
        rollout = triggers[0]
        rollout_body = resources["terraform_data"][rollout.split(".", 1)[1]]
        revision = "terraform_data." + re.search(r"terraform_data\.([\w-]+)\.output",
                                                 json.dumps(rollout_body["input"])).group(1)  # type: ignore[union-attr]
        server = f"openstack_compute_instance_v2.{key}"
        attach = next((f"openstack_compute_volume_attach_v2.{k}" for k, a in attaches.items()
                       if a.get("instance_id") == f"${{{server}.id}}"), None)
        out.append(StackSlot(Role(role), body["name"], server, rollout, revision, attach))
    return out


def pending(slots: Sequence[StackSlot], state: Mapping[str, Any]) -> list[StackSlot]:
    """The slots whose running server was built from an older revision than the config's (from
    `terraform show -json`). A slot missing from the state (not deployed yet) is not pending."""
    values = {r["address"]: r.get("values", {})
              for r in ((state.get("values") or {}).get("root_module") or {}).get("resources", [])}
    out = []
    for s in slots:
        if s.rollout in values and s.revision in values:
            built = (values[s.rollout].get("output") or {}).get("revision")
            if built != values[s.revision].get("output"):
                out.append(s)
    return out


class TerraformCloud:
    """The cloud as `terraform` (in the synthesized stack's folder, with the operator's credentials) and
    Octavia's status tree (`openstack loadbalancer status show`) see it."""

    def __init__(self, stack_dir: Path, slots: Sequence[StackSlot], *, terraform: str = "terraform",
                 openstack: str = "openstack", doc: Mapping[str, Any] | None = None) -> None:
        self.dir = stack_dir
        self.slots = {s.name: s for s in slots}
        self.terraform, self.openstack = terraform, openstack
        self.doc = doc if doc is not None else json.loads((stack_dir / "cdk.tf.json").read_text())

    def _tf(self, *args: str) -> str:
        proc = subprocess.run([self.terraform, *args], cwd=self.dir, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RolloutError(f"terraform {' '.join(args)} failed in {self.dir}:\n{proc.stderr or proc.stdout}")
        return proc.stdout

    def state(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self._tf("show", "-json") or "{}")
        return doc

    def _members_resources(self, layer: Role) -> list[str]:
        members = self.doc.get("resource", {}).get("openstack_lb_members_v2", {})
        names = {s.name for s in self.slots.values() if s.layer is layer}
        return [f"openstack_lb_members_v2.{k}" for k, b in sorted(members.items())
                if any(m.get("name") in names for m in b.get("member", []))]

    def _apply(self, drained: Sequence[str], targets: Sequence[str], extra: Sequence[str] = (), *,
               offline: Sequence[str] = ()) -> None:
        self._tf("apply", "-auto-approve", "-input=false", "-no-color",
                 f"-var=mailstrata_drain={json.dumps(list(drained))}",
                 f"-var=mailstrata_offline={json.dumps(list(offline))}", *extra, *(f"-target={t}" for t in targets))

    def drain(self, slot: str) -> None:
        s = self.slots[slot]
        self._apply([slot], [s.server, *self._members_resources(s.layer)])

    def undrain(self, slot: str) -> None:
        s = self.slots[slot]
        self._apply([], [s.server, *self._members_resources(s.layer)])

    def replace(self, slot: str) -> None:
        """Members disabled (`var.mailstrata_offline`), the server replaced, the members enabled again (still
        drained): while it is replaced no client reaches it, not even one that persistence sticks to it."""
        s = self.slots[slot]
        members = self._members_resources(s.layer)
        self._apply([slot], [s.server, *members], offline=[slot])
        self._apply([slot], [s.server, *([s.attach] if s.attach else [])], [f"-replace={s.rollout}"], offline=[slot])
        self._apply([slot], [s.server, *members])

    def sessions(self, slot: str) -> int | None:
        return None  # Octavia counts connections per listener, not per member: wait the drain timeout

    def members(self, layer: Role) -> list[Member]:
        if shutil.which(self.openstack) is None:
            raise RolloutError("the `openstack` command is not installed: the rollout reads member health from "
                               "Octavia with it (pip install python-openstackclient python-octaviaclient)")
        names = {s.name for s in self.slots.values() if s.layer is layer}
        out = []
        for lb in self._load_balancers(layer):
            proc = subprocess.run([self.openstack, "loadbalancer", "status", "show", lb], capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0:
                raise RolloutError(f"openstack loadbalancer status show {lb} failed:\n{proc.stderr}")
            tree = json.loads(proc.stdout)["loadbalancer"]
            for listener in tree.get("listeners", []):
                for pool in listener.get("pools", []):
                    for m in pool.get("members", []):
                        if m.get("name") in names:
                            out.append(Member(f"{layer.value}:{m.get('protocol_port')}", m["name"],
                                              MemberStatus(m.get("operating_status", "ERROR"))))
        return out

    def _load_balancers(self, layer: Role) -> list[str]:
        state = self.state()
        resources = ((state.get("values") or {}).get("root_module") or {}).get("resources", [])
        lbs = [r["values"]["id"] for r in resources if r.get("type") == "openstack_lb_loadbalancer_v2"
               and r.get("name", "").startswith(f"vip-{layer.slug}_")]
        if not lbs:
            raise RolloutError(f"no load balancer of the {layer.value} layer in the state of {self.dir}")
        return lbs


# ---- the command ---------------------------------------------------------------------------------------------

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def add_parser(sub: Any) -> None:
    import argparse

    p = sub.add_parser("rollout", help="replace servers one slot at a time, without losing mail",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("layers", metavar="LAYER", nargs="*", type=_layer,
                   help=f"layers to roll ({', '.join(r.value for r in LAYER_ORDER)}; default: all, in that order)")
    p.add_argument("--stack", default=None, help="the stack to roll (default: the only one in the output folder)")
    p.add_argument("--outdir", default="cdktf.out", help="the synthesized folder. Default: cdktf.out")
    p.add_argument("--dry-run", action="store_true", help="print the steps; change nothing")
    p.add_argument("--resume", action="store_true", help="go on with the rollout the journal records")
    p.add_argument("--drain-timeout", type=float, default=None, metavar="S",
                   help="seconds a drained slot's sessions may take to end (default per layer: " +
                   ", ".join(f"{r.value} {t:g}" for r, t in DRAIN_TIMEOUT_S.items()) + ")")
    p.add_argument("--up-timeout", type=float, default=UP_TIMEOUT_S, metavar="S",
                   help=f"seconds a replaced server may take to become healthy. Default: {UP_TIMEOUT_S:g}")
    p.set_defaults(func=_rollout)


def _layer(value: str) -> str:
    import argparse

    names = [r.value for r in LAYER_ORDER]
    if value.replace("-", "_") not in names:
        raise argparse.ArgumentTypeError(f"unknown layer {value!r}; use one of {', '.join(names)}")
    return value.replace("-", "_")


def _stack_dir(outdir: str, stack: str | None) -> Path:
    stacks = Path(outdir) / "stacks"
    found = sorted(d.name for d in stacks.iterdir() if (d / "cdk.tf.json").is_file()) if stacks.is_dir() else []
    if stack is None:
        if len(found) != 1:
            raise RolloutError(f"{'no stack' if not found else 'several stacks'} in {stacks} "
                               f"({', '.join(found) or 'run `cdktf synth` first'}); name one with --stack")
        stack = found[0]
    if stack not in found:
        raise RolloutError(f"no stack {stack!r} in {stacks} (found: {', '.join(found) or 'none'}); run `cdktf synth`")
    return stacks / stack


def _rollout(args: Any) -> int:
    import sys

    try:
        stack_dir = _stack_dir(args.outdir, args.stack)
        doc = json.loads((stack_dir / "cdk.tf.json").read_text())
        slots = stack_slots(doc)
        cloud = TerraformCloud(stack_dir, slots)
        timeouts = dict(DRAIN_TIMEOUT_S) if args.drain_timeout is None else dict.fromkeys(LAYER_ORDER,
                                                                                          args.drain_timeout)
        path = stack_dir / JOURNAL
        if args.resume:
            if not path.is_file():
                raise RolloutError(f"nothing to resume: no journal {path}")
            journal = Journal.load(path)
            todo = [Slot(Role(r.layer), r.name) for r in journal.unfinished()]
        else:
            if path.is_file() and Journal.load(path).unfinished():
                raise RolloutError(f"an unfinished rollout is recorded in {path}: `mailstrata rollout --resume` "
                                   "finishes it (or delete the file to start over)")
            layers = [Role(v) for v in args.layers]
            todo = order((Slot(s.layer, s.name) for s in pending(slots, cloud.state())), layers)
            journal = None
        if args.dry_run:
            sys.stdout.write(plan_text(todo, timeouts))
            return EXIT_OK
        if journal is None:
            if not todo:
                sys.stdout.write(plan_text([], timeouts))
                return EXIT_OK
            journal = Journal.start(path, todo)
        run(cloud, journal, drain_timeout=timeouts, up_timeout=args.up_timeout)
    except RolloutError as exc:
        sys.stderr.write(f"mailstrata rollout: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("mailstrata rollout: stopped; `mailstrata rollout --resume` goes on where it stopped\n")
        return EXIT_FAILED
    sys.stdout.write(f"rollout done: {len(journal.slots)} servers replaced\n")
    return EXIT_OK
