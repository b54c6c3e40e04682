"""Reading Terraform JSON values: tokens, templates, references, prefixes (pure helpers of the checks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailstrata.policies._terraform import (
    Template,
    as_int,
    attr,
    is_token,
    is_world_prefix,
    load_module,
    local_is_literal,
    local_strings,
    parse_template,
    resource_refs,
)


def test_platform_user_data_expression() -> None:
    expression = '${base64gzip(join("\\n", concat(["#cloud-config", "hostname: smtp-in-01"], local.ud_smtp_in)))}'
    assert parse_template(expression) == Template(
        literals=("\n", "#cloud-config", "hostname: smtp-in-01"), locals=("ud_smtp_in",)
    )


def test_literal_text_around_interpolations() -> None:
    assert parse_template("bind_pw = ${var.pw}\nbind_dn = cn=x") == Template(
        literals=("bind_pw = ", "\nbind_dn = cn=x")
    )


def test_escaped_interpolation_is_text() -> None:
    assert parse_template("echo $${HOME}") == Template(literals=("echo ${HOME}",))


def test_template_inside_a_string_literal_inside_an_expression() -> None:
    assert parse_template('${join("", ["a = ${local.x}", "b"])}') == Template(literals=("a = ", "b"), locals=("x",))


def test_unterminated_interpolation_is_kept_as_text() -> None:
    assert parse_template("x ${local.y") == Template(literals=("x ${local.y",))


def test_local_named_inside_a_string_is_not_a_reference() -> None:
    assert parse_template('${upper("local.x")}').locals == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("${var.x}", True), ("a${b}c", True), ("%{ if x }y%{ endif }", True), ("0.0.0.0/0", False), (25, False)],
)
def test_is_token(value: object, expected: bool) -> None:
    assert is_token(value) is expected


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("0.0.0.0/0", True),
        ("::/0", True),
        ("0::0/0", True),
        ("10.0.0.0/0", True),
        ("0.0.0.0/1", False),
        ("198.51.100.0/24", False),
        ("2001:db8::/32", False),
        ("${var.x}", False),
        ("not a cidr", False),
    ],
)
def test_is_world_prefix(prefix: str, expected: bool) -> None:
    assert is_world_prefix(prefix) is expected


@pytest.mark.parametrize(("value", "expected"), [(25, 25), ("25", 25), (25.0, 25), (True, None), ("x", None)])
def test_as_int(value: object, expected: int | None) -> None:
    assert as_int(value) == expected


def test_attr_unwraps_checkov_lists() -> None:
    assert attr({"port_range_min": [25], "tags": [["a", "b"]]}, "port_range_min") == 25
    assert attr({"tags": [["a", "b"]]}, "tags") == ["a", "b"]
    assert attr({}, "description") is None


def test_resource_refs() -> None:
    expression = "${openstack_networking_floatingip_v2.smtp_in_vip[0].address}"
    assert resource_refs(expression, "openstack_networking_floatingip_v2") == ("smtp_in_vip",)
    assert (
        resource_refs("${data.openstack_networking_floatingip_v2.x.address}", "openstack_networking_floatingip_v2")
        == ()
    )


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "cdk.tf.json"
    path.write_text(json.dumps(document))
    return path


def test_load_module_and_follow_locals(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "locals": {
                "a": ["line 1", "${local.b}"],
                "b": "bind_pw = x",
                "c": "${local.d}",
                "d": "lit",
                "loop": "${local.loop}",
            },
            "resource": {"openstack_networking_floatingip_v2": {"vip": {"description": "mailstrata/smtp_in: VIP"}}},
        },
    )
    module = load_module(path)
    assert module is not None
    assert list(local_strings(module, "a")) == [("local.a[0]", "line 1"), ("local.b", "bind_pw = x")]
    assert list(local_strings(module, "loop")) == []
    assert local_is_literal(module, "c")
    assert not local_is_literal(module, "loop")
    assert not local_is_literal(module, "missing")
    assert module.resource("openstack_networking_floatingip_v2", "vip") == {"description": "mailstrata/smtp_in: VIP"}


def test_load_module_accepts_hcl_json_block_arrays(tmp_path: Path) -> None:
    path = _write(tmp_path, {"locals": [{"a": "x"}, {"b": "y"}]})
    module = load_module(path)
    assert module is not None
    assert dict(module.locals) == {"a": "x", "b": "y"}


def test_load_module_unreadable(tmp_path: Path) -> None:
    assert load_module(tmp_path / "missing.tf.json") is None
    broken = tmp_path / "broken.tf.json"
    broken.write_text("{")
    assert load_module(broken) is None
