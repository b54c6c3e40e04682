"""The plan shape of a config change and of a rollout step, planned by real Terraform (issue 12), through
the stand-in for terraform-provider-openstack described in `tests/terraform/standin.py`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.requires import requires_terraform
from tests.terraform.standin import Workspace, standin_config, synth

LAYER = "smtp-in"


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    requires_terraform("to plan the rollout shape")
    root = tmp_path_factory.mktemp("rollout-plan")

    def dnsbl(d: dict[str, Any]) -> None:
        d.setdefault("mail", {}).setdefault("spam", {})["dnsbls"] = [
            "zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"]

    def image(d: dict[str, Any]) -> None:
        layer = (d.setdefault("layers", {}) or {}).setdefault("smtp_in", {}) or {}
        d["layers"]["smtp_in"] = {**layer, "image": "CentOS-7-x86_64-GenericCloud-2211"}

    return {"base": synth(root / "base"), "dnsbl": synth(root / "dnsbl", dnsbl),
            "image": synth(root / "image", image)}


def _replaced(actions: Mapping[str, tuple[str, ...]]) -> set[str]:
    return {a for a, acts in actions.items() if "delete" in acts and "create" in acts}


@pytest.mark.parametrize("change", ["dnsbl", "image", "password"])
def test_a_config_change_plans_a_new_revision_and_replaces_no_server(
        change: str, stacks: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    config, values, servers = standin_config(stacks["base"], LAYER)
    ws.write(config, values)
    ws.apply()
    head = stacks["base" if change == "password" else change]
    config, values, servers = standin_config(head, LAYER)
    if change == "password":
        values["ad_bind_password"] = values["ad_bind_password"] + "-rotated"
    ws.write(config, values)
    actions = ws.plan()
    assert not _replaced(actions), actions
    assert all(actions[s] == ("no-op",) for s in servers.values()), actions
    revisions = {a: acts for a, acts in actions.items() if "_revision-" in a}
    assert len(revisions) == len(servers) == 2 and set(revisions.values()) == {("update",)}, actions
    assert all(acts == ("no-op",) for a, acts in actions.items() if "_rollout-" in a), actions


def test_a_rollout_step_replaces_exactly_its_slot(stacks: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    config, values, servers = standin_config(stacks["base"], LAYER)
    ws.write(config, values)
    ws.apply()
    config, values, servers = standin_config(stacks["dnsbl"], LAYER)
    ws.write(config, values)
    rollout_01 = next(f"terraform_data.{k}" for k in config["resource"]["terraform_data"]
                      if k.startswith(f"{LAYER}_rollout-01"))
    actions = ws.plan(f"-replace={rollout_01}")
    assert _replaced(actions) == {rollout_01, servers["mail-smtp-in-01"]}, actions
    assert actions[servers["mail-smtp-in-02"]] == ("no-op",)
    # the replacement is created from the new config: its user_data is the new revision's
    ws.apply(f"-replace={rollout_01}")
    state = json.loads(ws.run("show", "-json"))
    by_addr = {r["address"]: r for r in state["values"]["root_module"]["resources"]}
    rev = {a.split("_revision-")[1][:2]: r["values"]["output"] for a, r in by_addr.items() if "_revision-" in a}
    roll = {a.split("_rollout-")[1][:2]: r["values"]["output"]["revision"] for a, r in by_addr.items()
            if "_rollout-" in a}
    assert roll["01"] == rev["01"] and roll["02"] != rev["02"]  # slot 02 awaits its rollout step
    # and a deploy afterwards changes nothing
    after = ws.plan()
    assert set(after.values()) == {("no-op",)}, after


def test_draining_changes_the_member_weight_and_metadata_only(stacks: dict[str, dict[str, Any]],
                                                              tmp_path: Path) -> None:
    """The drain variable reaches the server's metadata in place (the server stand-in carries its metadata
    in `input`); nothing is replaced, and clearing it puts the value back."""
    ws = Workspace(tmp_path / "ws")
    config, values, servers = standin_config(stacks["base"], LAYER)
    ws.write(config, values)
    ws.apply()
    actions = ws.plan("-var", 'mailstrata_drain=["mail-smtp-in-02"]')
    assert actions[servers["mail-smtp-in-02"]] == ("update",) and actions[servers["mail-smtp-in-01"]] == ("no-op",)
    assert not _replaced(actions)
