"""Rendered text inside Terraform JSON: escaping, and reading it back as Nova receives it (Terraform evaluates)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mailstrata.terraform_eval import StandIns, evaluate, nova_user_data
from mailstrata.userdata.terraform_text import (
    decode_user_data,
    escape,
    interpolations,
    references,
    substitute,
    user_data_expression,
)
from tests.support.requires import requires_terraform

# Everything Terraform's template language could take for its own: shell and Dovecot syntax, escapes
# written literally, a lone `$` or `%` before a brace, quotes, backslashes, HCL escape sequences and
# template directives.
TRICKY = [
    'sh=${HOME} ${#a[@]} ${x:-"d"} $${lit} $$${both} $ {gap} ${',
    "dovecot=%{ldap:info} %%{lit} %{ if x }y%{ endif } %{~ x} 100% done %",
    r'quotes="a" \"b\" ' + "'c' back\\slash \\\\ \\n \\u0041 trailing\\",
    "braces={} }{ ${ } %{ } {{ }}",
]


def test_escape_doubles_shell_and_dovecot_syntax_but_keeps_references() -> None:
    text = 'a=${HOME} quota=%{ldap:info} pw=${var.ad_bind_password} vip=${TfToken[TOKEN.7]}'
    assert escape(text) == 'a=$${HOME} quota=%%{ldap:info} pw=${var.ad_bind_password} vip=${TfToken[TOKEN.7]}'


def test_escape_keeps_a_port_address_as_mail_layer_writes_it() -> None:
    text = "host=${element(openstack_networking_port_v2.mx_1.all_fixed_ips, 0)} shell=${element}"
    assert escape(text) == "host=${element(openstack_networking_port_v2.mx_1.all_fixed_ips, 0)} shell=$${element}"


def test_references_are_what_escape_keeps() -> None:
    text = 'a=${HOME} p=${var.pw} k=${base64encode(replace(var.k, "}", "{"))} p=${var.pw} d=%{x} ${element(x, 0)}'
    assert references(text) == ("var.pw", 'base64encode(replace(var.k, "}", "{"))')


def test_substitute_replaces_only_references() -> None:
    text = "a=${HOME} p=${var.pw} d=%{x} $${y}"
    assert substitute(text, {"var.pw": "s3${cret}"}) == "a=${HOME} p=s3${cret} d=%{x} $${y}"


def test_substitute_names_a_reference_without_value() -> None:
    with pytest.raises(KeyError, match=r"\$\{var.nope\}"):
        substitute("x=${var.nope}", {})


@pytest.mark.parametrize("gzip_it", [False, True], ids=["plain", "base64gzip"])
def test_terraform_hands_nova_the_rendered_text(tmp_path: Path, gzip_it: bool) -> None:
    # GIVEN a body of tricky lines, escaped as the constructs escape them, with one reference
    rendered = [*TRICKY, "pw=${var.pw} ip=${openstack_lb_loadbalancer_v2.lb.vip_address}"]
    doc = {"locals": {"body": [escape(line) for line in rendered]}}
    expr = user_data_expression(["#cloud-config", "hostname: a"], "body", gzip_it=gzip_it)
    standins = StandIns(attributes={"openstack_lb_loadbalancer_v2.lb.vip_address": "10.1.2.3"},
                        variables={"pw": "s3${cret}%{x}"})
    # WHEN Terraform evaluates the user_data expression and the references
    requires_terraform()
    values = evaluate({"ud": expr, **{r: "${" + r + "}" for r in references("\n".join(rendered))}}, standins,
                      doc=doc, workdir=tmp_path)
    # THEN Nova receives the rendered text, with Terraform's values in place of the references
    data = nova_user_data(values["ud"])
    assert (data[:2] == b"\x1f\x8b") == gzip_it
    expected = "\n".join(["#cloud-config", "hostname: a", *(substitute(line, values) for line in rendered)])
    assert decode_user_data(data) == expected
    assert substitute(rendered[-1], values) == "pw=s3${cret}%{x} ip=10.1.2.3"


def test_decode_user_data_gunzips() -> None:
    assert decode_user_data(gzip.compress(b"#cloud-config\nruncmd: []")) == "#cloud-config\nruncmd: []"


def test_interpolations_of_an_escaped_template_skip_its_literals() -> None:
    template = escape('a=${HOME} $$${x} %{y}') + ' ip=${element(openstack_networking_port_v2.p.all_fixed_ips, 0)}'
    assert interpolations(template) == ("element(openstack_networking_port_v2.p.all_fixed_ips, 0)",)
