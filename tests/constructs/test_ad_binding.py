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
    assert (
        var["validation"][0]["error_message"] == 'The AD bind password must be non-empty, on one line, without " or \\.'
    )


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


@pytest.mark.parametrize(
    ("password", "accepted"),
    [("Pa55-w0rd!$%", True), ("", False), ('with"quote', False), ("back\\slash", False), ("two\nlines", False)],
)
def test_terraform_itself_enforces_the_password_validation(tmp_path, password: str, accepted: bool) -> None:  # type: ignore[no-untyped-def]
    """Evaluates the synthesized condition with `terraform console` (no provider needed)."""
    import json
    import os
    import shutil
    import subprocess

    if shutil.which("terraform") is None:
        pytest.skip("terraform is not installed")
    stack = new_stack()
    AdBinding(stack, "directory", props=PROPS)
    condition = synth(stack)["variable"]["ad_bind_password"]["validation"][0]["condition"]
    expr = condition.replace("var.ad_bind_password", json.dumps(password))
    (tmp_path / "tfrc").write_text("")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(tmp_path / "tfrc"), "CHECKPOINT_DISABLE": "1"}
    out = subprocess.run(
        ["terraform", "console"],
        input=expr,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    assert out == ("true" if accepted else "false")
