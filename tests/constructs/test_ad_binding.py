"""AdBinding: the bind password is a sensitive variable; templates get one typed settings object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailstrata.constructs import AdBinding, AdBindingProps
from mailstrata.directory import LdapTls
from mailstrata.errors import ConfigError
from mailstrata.types import Secret
from mailstrata.userdata.daemons.ldap import Filters
from tests.support.contexts import new_stack, synth
from tests.terraform.support import init_diagnostics, plan_variables, validation_failure
from tests.terraform.validation_cases import AD_BIND_PASSWORD, CASES

PROPS = AdBindingProps(
    urls=("ldaps://dc1.domain01.dom:636",),
    base_dn="dc=domain01,dc=dom",
    bind_dn="cn=correoapp,ou=mailapps,dc=domain01,dc=dom",
    domains=("domain01.dom", "domain02.dom"),
)


def test_bind_password_is_a_sensitive_variable() -> None:
    stack = new_stack()
    AdBinding(stack, "directory", props=PROPS)
    var = synth(stack)["variable"]["ad_bind_password"]
    assert var["sensitive"] is True
    assert var["type"] == "string"
    assert var["validation"][0]["error_message"] == AD_BIND_PASSWORD


def test_settings_carry_a_reference_never_a_value() -> None:
    stack = new_stack()
    ad = AdBinding(stack, "directory", props=PROPS)
    assert ad.settings.bind_password == Secret(ref="${var.ad_bind_password}")
    assert ad.settings.attributes.login == "sAMAccountName"
    assert ad.settings.attributes.quota == "info"


def test_login_filter_takes_the_address_or_an_unambiguous_account_name() -> None:
    # Not the seed's `sAMAccountName=%n AND mail=%n@<domain>`, which let jsmith@domain02.dom log in as the
    # jsmith of domain01.dom (issue 9): the whole login is the primary address or the account name.
    stack = new_stack()
    ad = AdBinding(stack, "directory", props=PROPS)
    assert Filters(ad.settings).mail_user("%u") == (
        "(&(objectClass=person)(|(mail=%u)(&(sAMAccountName=%u)(!(sAMAccountName=*@*))))"
        "(|(mail=*@domain01.dom)(mail=*@domain02.dom)))"
    )


def test_rejects_an_ldaps_url_with_starttls() -> None:
    stack = new_stack()
    with pytest.raises(ConfigError) as exc:
        AdBinding(
            stack,
            "directory",
            props=AdBindingProps(
                urls=("ldaps://dc1.domain01.dom",),
                base_dn="dc=domain01,dc=dom",
                bind_dn="correoapp",
                domains=("domain01.dom",),
                tls=LdapTls.STARTTLS,
            ),
        )
    assert [str(p) for p in exc.value.problems] == [
        "directory.urls[0]: 'ldaps://dc1.domain01.dom' does not match tls starttls; use ldaps:// only with tls ldaps",
        "directory.bind_dn: must be an LDAP DN such as dc=domain01,dc=dom, got 'correoapp'",
    ]


@pytest.mark.parametrize("password", CASES[AD_BIND_PASSWORD].good)
def test_terraform_plan_accepts_a_good_password(tmp_path: Path, password: str) -> None:
    # GIVEN the variable block exactly as synthesized
    stack = new_stack()
    AdBinding(stack, "directory", props=PROPS)
    variables = synth(stack)["variable"]
    # WHEN Terraform plans it with TF_VAR_ad_bind_password set
    diagnostics = plan_variables(variables, {"ad_bind_password": password}, tmp_path)
    # THEN nothing is reported
    assert diagnostics == []


@pytest.mark.parametrize("password", CASES[AD_BIND_PASSWORD].bad)
def test_terraform_plan_refuses_a_bad_password_with_the_message(tmp_path: Path, password: str) -> None:
    stack = new_stack()
    AdBinding(stack, "directory", props=PROPS)
    variables = synth(stack)["variable"]
    diagnostics = plan_variables(variables, {"ad_bind_password": password}, tmp_path)
    assert [validation_failure(d) for d in diagnostics] == [AD_BIND_PASSWORD]


def test_terraform_init_accepts_the_variable_block(tmp_path: Path) -> None:
    """In Terraform's JSON syntax a validation condition is a `${...}` template; a bare expression fails init."""
    stack = new_stack()
    AdBinding(stack, "directory", props=PROPS)
    (tmp_path / "cdk.tf.json").write_text(json.dumps({"variable": synth(stack)["variable"]}))
    assert [str(d) for d in init_diagnostics(tmp_path / "cdk.tf.json", tmp_path / "init")] == []
