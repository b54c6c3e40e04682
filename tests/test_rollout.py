"""`mailstrata rollout`: which slots are pending, the terraform commands it runs (judged by real Terraform on the
stand-in of tests/terraform/standin.py), the order, the refusal, and stop/resume through the journal.

The engine's order/refusal/resume tests drive it with a scripted cloud: they test the engine's own bookkeeping.
What the cloud does (Octavia draining, a replaced server) is proven on the twin (tests/twin/test_rollout.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from mailstrata import cli, rollout
from mailstrata.roles import Role
from mailstrata.rollout import Journal, Member, MemberStatus, RolloutError, Slot
from tests.support.requires import requires_terraform
from tests.terraform.standin import Workspace, standin_config, synth


def _dnsbl(d: dict[str, Any]) -> None:
    d.setdefault("mail", {}).setdefault("spam", {})["dnsbls"] = [
        "zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"]


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    requires_terraform("to run the rollout's terraform commands")
    root = tmp_path_factory.mktemp("rollout")
    return synth(root / "base"), synth(root / "dnsbl", _dnsbl)


def test_the_slots_are_read_from_the_servers_lifecycle(docs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    base, _ = docs
    slots = rollout.stack_slots(base)
    by_layer: dict[Role, list[str]] = {}
    for s in slots:
        by_layer.setdefault(s.layer, []).append(s.name)
    assert by_layer[Role.SMTP_IN] == ["mail-smtp-in-01", "mail-smtp-in-02"]
    assert set(by_layer) == {Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE, Role.WEBMAIL}
    s1 = next(s for s in slots if s.name == "mail-smtp-in-01")
    assert s1.rollout.startswith("terraform_data.smtp-in_rollout-01") and s1.revision.startswith(
        "terraform_data.smtp-in_revision-01")
    assert s1.attach and s1.attach.startswith("openstack_compute_volume_attach_v2.smtp-in_spool-attach-01")
    web = next(s for s in slots if s.layer is Role.WEBMAIL)
    assert web.attach is None  # webmail queues nothing: no spool volume


def test_terraform_commands_drain_replace_one_slot_and_leave_the_other_pending(
        docs: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path) -> None:
    """The commands TerraformCloud runs, run by real Terraform: after a config change is deployed both slots are
    pending;
    drain sets the drained server's metadata; replace rebuilds exactly that slot; it is no longer pending."""
    base, head = docs
    ws = Workspace(tmp_path / "ws")
    config, values, servers = standin_config(base, "smtp-in")
    ws.write(config, values)
    ws.apply()
    config, values, servers = standin_config(head, "smtp-in")
    ws.write(config, values)
    ws.apply()  # the deploy: the revisions change, the servers do not
    # the stand-in's addresses for the servers (the stack's are openstack_compute_instance_v2.<same key>)
    slots = [replace(s, server=servers[s.name], attach=None) for s in rollout.stack_slots(head)
             if s.layer is Role.SMTP_IN]
    cloud = rollout.TerraformCloud(ws.path, slots, terraform=te_binary(), doc=head)
    assert [s.name for s in rollout.pending(slots, _state(ws))] == ["mail-smtp-in-01", "mail-smtp-in-02"]

    cloud.drain("mail-smtp-in-01")
    meta = _server_input(ws, servers["mail-smtp-in-01"])["metadata"]
    assert meta["mailstrata_drain"] == "true"
    before = _server_id(ws, servers["mail-smtp-in-01"]), _server_id(ws, servers["mail-smtp-in-02"])
    cloud.replace("mail-smtp-in-01")
    after = _server_id(ws, servers["mail-smtp-in-01"]), _server_id(ws, servers["mail-smtp-in-02"])
    assert after[0] != before[0] and after[1] == before[1]
    assert [s.name for s in rollout.pending(slots, _state(ws))] == ["mail-smtp-in-02"]
    cloud.undrain("mail-smtp-in-01")
    assert _server_input(ws, servers["mail-smtp-in-01"])["metadata"]["mailstrata_drain"] == "false"


def te_binary() -> str:
    from mailstrata.terraform_eval import terraform_binary

    return terraform_binary()


def _state(ws: Workspace) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(ws.run("show", "-json"))
    return state


def _resource(ws: Workspace, address: str) -> dict[str, Any]:
    resources = _state(ws)["values"]["root_module"]["resources"]
    found: dict[str, Any] = next(r for r in resources if r["address"] == address)
    return found


def _server_input(ws: Workspace, address: str) -> dict[str, Any]:
    value: dict[str, Any] = _resource(ws, address)["values"]["input"]
    return value


def _server_id(ws: Workspace, address: str) -> str:
    return str(_resource(ws, address)["values"]["id"])


# ---- the engine ------------------------------------------------------------------------------------------------


@dataclass
class ScriptedCloud:
    """A cloud that does what it is told and records it; `fail_replace` makes one replacement fail once."""

    slots: dict[str, Role]
    log: list[str] = field(default_factory=list)
    status: dict[str, MemberStatus] = field(default_factory=dict)
    fail_replace: str | None = None

    def members(self, layer: Role) -> list[Member]:
        return [Member(f"{layer.value}:25", name, self.status.get(name, MemberStatus.ONLINE))
                for name, r in sorted(self.slots.items()) if r is layer]

    def drain(self, slot: str) -> None:
        self.log.append(f"drain {slot}")
        self.status[slot] = MemberStatus.DRAINING

    def undrain(self, slot: str) -> None:
        self.log.append(f"undrain {slot}")
        self.status[slot] = MemberStatus.ONLINE

    def sessions(self, slot: str) -> int | None:
        return 0

    def replace(self, slot: str) -> None:
        if slot == self.fail_replace:
            self.fail_replace = None
            raise KeyboardInterrupt  # the operator stops it here
        self.log.append(f"replace {slot}")


SLOTS = {"m-store-01": Role.MAILSTORE, "m-in-01": Role.SMTP_IN, "m-in-02": Role.SMTP_IN, "m-out-01": Role.SMTP_OUT}


def _journal(tmp_path: Path, layers: tuple[Role, ...] = ()) -> Journal:
    todo = rollout.order((Slot(r, n) for n, r in SLOTS.items()), layers)
    return Journal.start(tmp_path / rollout.JOURNAL, todo)


def test_layers_roll_consumers_first_one_slot_at_a_time(tmp_path: Path) -> None:
    cloud = ScriptedCloud(dict(SLOTS))
    rollout.run(cloud, _journal(tmp_path), say=lambda _: None, sleep=lambda _: None)
    assert cloud.log == [f"{a} {n}" for n in ("m-store-01", "m-out-01", "m-in-01", "m-in-02")
                         for a in ("drain", "replace", "undrain")]


def test_only_the_layers_named(tmp_path: Path) -> None:
    cloud = ScriptedCloud(dict(SLOTS))
    rollout.run(cloud, _journal(tmp_path, (Role.SMTP_IN,)), say=lambda _: None, sleep=lambda _: None)
    assert [e.split()[1] for e in cloud.log if e.startswith("replace")] == ["m-in-01", "m-in-02"]


def test_a_member_down_refuses_the_start(tmp_path: Path) -> None:
    cloud = ScriptedCloud(dict(SLOTS), status={"m-in-02": MemberStatus.ERROR})
    with pytest.raises(RolloutError, match=r"m-in-02 in pool smtp_in:25: ERROR"):
        rollout.run(cloud, _journal(tmp_path), say=lambda _: None, sleep=lambda _: None)
    assert cloud.log == []


def test_stopped_midway_it_resumes_where_it_stopped(tmp_path: Path) -> None:
    cloud = ScriptedCloud(dict(SLOTS), fail_replace="m-in-01")
    journal = _journal(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        rollout.run(cloud, journal, say=lambda _: None, sleep=lambda _: None)
    saved = Journal.load(tmp_path / rollout.JOURNAL)
    assert [r.name for r in saved.unfinished()] == ["m-in-01", "m-in-02"]
    assert saved.unfinished()[0].done == ["drained", "sessions_ended"]
    # m-in-01 is drained (DRAINING): the resumed run accepts it and does not drain it again
    rollout.run(cloud, saved, say=lambda _: None, sleep=lambda _: None)
    assert cloud.log[-6:] == ["replace m-in-01", "undrain m-in-01", "drain m-in-02", "replace m-in-02",
                              "undrain m-in-02"][-6:] or cloud.log.count("drain m-in-01") == 1
    assert cloud.log.count("drain m-in-01") == 1 and cloud.log.count("replace m-in-01") == 1
    assert not Journal.load(tmp_path / rollout.JOURNAL).unfinished()


def test_a_server_that_never_comes_up_stops_the_rollout_drained(tmp_path: Path) -> None:
    cloud = ScriptedCloud(dict(SLOTS))
    original = cloud.replace

    def broken(slot: str) -> None:
        original(slot)
        cloud.status[slot] = MemberStatus.ERROR

    cloud.replace = broken  # type: ignore[method-assign]
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with pytest.raises(RolloutError, match="m-store-01 is not healthy 60 s after its replacement"):
        rollout.run(cloud, _journal(tmp_path), up_timeout=60, say=lambda _: None, clock=lambda: now[0], sleep=sleep)
    assert "undrain m-store-01" not in cloud.log and "drain m-out-01" not in cloud.log


def test_a_drained_mailstore_is_not_replaced_before_its_users_moved_whatever_its_sessions(tmp_path: Path) -> None:
    # the load balancer says no sessions at once; the placement agents need up to DRAIN_MIN_S to move the users
    cloud = ScriptedCloud(dict(SLOTS))
    now = [0.0]
    replaced_at: dict[str, float] = {}
    drained_at: dict[str, float] = {}
    drain, replace = cloud.drain, cloud.replace

    def timed_drain(slot: str) -> None:
        drained_at[slot] = now[0]
        drain(slot)

    def timed_replace(slot: str) -> None:
        replaced_at[slot] = now[0]
        replace(slot)

    cloud.drain, cloud.replace = timed_drain, timed_replace  # type: ignore[method-assign]

    def sleep(s: float) -> None:
        now[0] += s

    rollout.run(cloud, _journal(tmp_path), say=lambda _: None, clock=lambda: now[0], sleep=sleep)
    waited = {n: replaced_at[n] - drained_at[n] for n in replaced_at}
    assert waited == {"m-store-01": rollout.DRAIN_MIN_S[Role.MAILSTORE], "m-out-01": 0, "m-in-01": 0, "m-in-02": 0}
    assert rollout.DRAIN_MIN_S[Role.MAILSTORE] >= 2 * (5 + 2 + 2 + 1)  # two agent rounds at their slowest at least


def test_dry_run_prints_the_steps_of_every_pending_slot(docs: tuple[dict[str, Any], dict[str, Any]],
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = rollout.plan_text(rollout.order([Slot(Role.SMTP_IN, "mail-smtp-in-02"), Slot(Role.MAILSTORE, "m-01")]),
                             rollout.DRAIN_TIMEOUT_S)
    assert text.index("m-01 (mailstore)") < text.index("mail-smtp-in-02 (smtp_in)")
    assert "at most 300 s" in text and "at most 120 s" in text
    out = tmp_path / "out"
    assert cli.main(["rollout", "--outdir", str(out), "--dry-run"]) == rollout.EXIT_FAILED
    assert "run `cdktf synth` first" in capsys.readouterr().err
