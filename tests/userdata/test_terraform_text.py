"""Rendered text inside Terraform JSON: escaping, and reading it back as Nova receives it."""

from __future__ import annotations

import gzip

from mailstrata.userdata.terraform_text import decode_user_data, escape, evaluate_user_data, user_data_expression


def test_escape_doubles_shell_and_dovecot_syntax_but_keeps_references() -> None:
    text = 'a=${HOME} quota=%{ldap:info} pw=${var.ad_bind_password} vip=${TfToken[TOKEN.7]}'
    assert escape(text) == 'a=$${HOME} quota=%%{ldap:info} pw=${var.ad_bind_password} vip=${TfToken[TOKEN.7]}'


def test_round_trip_as_nova_receives_it() -> None:
    body = [escape(line) for line in ["write_files:", "  - x=${HOME} %{ldap:info}", "  - pw=${var.pw}"]]
    expr = user_data_expression(["#cloud-config", "hostname: a"], "body", gzip_it=False)
    data = evaluate_user_data(expr, {"body": body}, {"var.pw": "s3cret"}.__getitem__)
    assert data.decode() == "#cloud-config\nhostname: a\nwrite_files:\n  - x=${HOME} %{ldap:info}\n  - pw=s3cret"


def test_gzipped_user_data_decodes_to_the_same_text() -> None:
    expr = user_data_expression(["#cloud-config"], "body", gzip_it=True)
    assert expr.startswith("${base64gzip(join(")
    data = evaluate_user_data(expr, {"body": ["runcmd: []"]}, str)
    assert gzip.decompress(data) == b"#cloud-config\nruncmd: []"
    assert decode_user_data(data) == "#cloud-config\nruncmd: []"
