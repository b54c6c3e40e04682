"""mailstrata.terraform_eval: Terraform itself computes the values, with the stack's own variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailstrata.terraform_eval import StandIns, TerraformEvalError, evaluate, throwaway_config
from tests.terraform.validation_cases import AD_BIND_PASSWORD
from tests.userdata import _sample

DOC = {
    "variable": {"ad_bind_password": {
        "type": "string", "sensitive": True, "nullable": False,
        "validation": [{"condition": '${length(var.ad_bind_password) > 0 && !can(regex("[\\\\r\\\\n\\"\\\\\\\\]", '
                                     'var.ad_bind_password))}', "error_message": AD_BIND_PASSWORD}]}},
    "resource": {"openstack_lb_loadbalancer_v2": {"vip-x_lb_1": {}}},
    "locals": {"body": ["pw=${var.ad_bind_password} vip=${openstack_lb_loadbalancer_v2.vip-x_lb_1.vip_address}"]},
}
STANDINS = StandIns(attributes={"openstack_lb_loadbalancer_v2.vip-x_lb_1.vip_address": "10.0.0.1"},
                    variables={"ad_bind_password": "s3cret"})


def test_only_resource_references_change_in_the_throwaway_config() -> None:
    config = throwaway_config({"e": "${local.body}"}, STANDINS, DOC)
    assert (config["variable"]["ad_bind_password"], config["locals"]["body"]) == (
        DOC["variable"]["ad_bind_password"],
        ["pw=${var.ad_bind_password} vip=${var.standin_openstack_lb_loadbalancer_v2.vip-x_lb_1.vip_address}"])


def test_the_stacks_validation_runs_on_the_values_given(tmp_path: Path) -> None:
    bad = StandIns(attributes=STANDINS.attributes, variables={"ad_bind_password": 'has"quote'})
    with pytest.raises(TerraformEvalError, match="must be non-empty, on one line"):
        evaluate({"e": "${local.body}"}, bad, doc=DOC, workdir=tmp_path)


def test_the_callers_terraform_environment_does_not_leak_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_VAR_ad_bind_password", "from-the-environment")
    monkeypatch.setenv("TF_CLI_ARGS_apply", "-no-such-flag")
    assert evaluate({"e": "${local.body}"}, STANDINS, doc=DOC, workdir=tmp_path) == {"e": ["pw=s3cret vip=10.0.0.1"]}


def test_the_sample_values_pass_every_validation_of_the_default_stack(tmp_path: Path) -> None:
    from tests.support.synth import default_platform

    doc = default_platform()
    assert evaluate({"v": "${length(local.user_data_mail_smtp_in)}"}, _sample.standins(doc), doc=doc,
                    workdir=tmp_path)["v"] > 0
