"""AdBinding: the bind password is a sensitive variable; templates get one typed settings object."""

from __future__ import annotations

import pytest

from mailstrata.constructs import AdBinding, AdBindingProps
from mailstrata.directory import LdapTls
from mailstrata.errors import ConfigError
from tests.support.contexts import new_stack, synth

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
    assert var["validation"][0]["error_message"] == "The AD bind password must be non-empty and on one line."


def test_settings_carry_a_reference_never_a_value() -> None:
    stack = new_stack()
    ad = AdBinding(stack, "directory", props=PROPS)
    assert ad.settings.bind_password == "${var.ad_bind_password}"
    assert ad.settings.attributes.login == "sAMAccountName"
    assert ad.settings.attributes.quota == "info"


def test_login_filter_matches_the_seed() -> None:
    stack = new_stack()
    ad = AdBinding(stack, "directory", props=PROPS)
    assert ad.settings.login_filter("%n") == (
        "(|(&(sAMAccountName=%n)(mail=%n@domain01.dom))(&(sAMAccountName=%n)(mail=%n@domain02.dom)))"
    )


def test_rejects_an_ldaps_url_with_starttls() -> None:
    stack = new_stack()
    with pytest.raises(ConfigError) as exc:
        AdBinding(stack, "directory", props=AdBindingProps(
            urls=("ldaps://dc1.domain01.dom",), base_dn="dc=domain01,dc=dom", bind_dn="correoapp",
            domains=("domain01.dom",), tls=LdapTls.STARTTLS))
    assert [str(p) for p in exc.value.problems] == [
        "directory.urls[0]: 'ldaps://dc1.domain01.dom' does not match tls starttls; use ldaps:// only with tls ldaps",
        "directory.bind_dn: must be an LDAP DN such as dc=domain01,dc=dom, got 'correoapp'",
    ]
