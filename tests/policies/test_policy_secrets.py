"""Plaintext-secret recognition behind CKV_MAILSTRATA_4 (pure functions, no checkov run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailstrata.policies._secrets import SecretFinding, block_secrets, find_secrets, is_secret_name
from mailstrata.policies._terraform import TerraformModule


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "admin_pass",
        "bind_pw",
        "dnpass",
        "ldap_bind_pw",
        "ldap_password",
        "bindPassword",
        "plain_text_passwd",
        "client_secret",
        "private_key_pem",
        "payload",
        "MYSQL_ROOT_PASSWORD",
        "bindpw",
        "db.pwd",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "smtp_sasl_password_maps",
        "password_file",
        "bypass",
        "passdb",
        "hashed_passwd_file",
        "pool",
        "payload_content_type",
        "key_pair",
        "user_data",
        "lock_passwd_x",
    ],
)
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("      bind_pw = s3cret", "bind_pw"),
        ("dnpass = s3cret", "dnpass"),
        ("ldap_bind_pw: s3cret", "ldap_bind_pw"),
        ("password = correct horse", "password"),
        ('  bindPassword = "s3cret";', "bindPassword"),
        ('{"password": "s3cret"}', "password"),
        ("$sql_password = 's3cret';", "sql_password"),
        ("export MYSQL_ROOT_PASSWORD=s3cret", "MYSQL_ROOT_PASSWORD"),
        ("bindpw s3cret", "bindpw"),
        ("args = uris=ldaps://dc01 dn=cn=app dnpass=s3cret", "dnpass"),
    ],
)
def test_finds_password_settings(line: str, name: str) -> None:
    assert find_secrets(line) == [SecretFinding("password setting", name)]


@pytest.mark.parametrize(
    "line",
    [
        "bind_pw = ${var.ldap_bind_password}",
        'bind_pw = "${random_password.ldap.result}"',
        "password = $LDAP_PASSWORD",
        "hashed_passwd: $6$rounds=4096$salt$hash",
        "pass = yes",
        "password:",
        "password =",
        "smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd",
        "bind_dn = cn=correoapp,ou=mailapps,dc=domain01,dc=dom",
        "mailstrata/mailstore/22/admin: SSH from admin networks",
        "server_host = ldaps://dc01.domain01.dom:636",
        "bind_pw = %{ if true }x%{ endif }",
    ],
)
def test_ignores_references_switches_and_other_settings(line: str) -> None:
    assert find_secrets(line) == []


def test_finds_password_in_url() -> None:
    line = 'SOGoProfileURL = "mysql://sogo:s3cret@db:3306/sogo/sogo_user_profile";'
    assert find_secrets(line) == [SecretFinding("URL credentials", "")]


def test_url_with_reference_password_is_fine() -> None:
    assert find_secrets('SOGoProfileURL = "mysql://sogo:${var.sogo_db_password}@db:3306/sogo/p";') == []


@pytest.mark.parametrize(
    "header",
    [
        "PRIVATE KEY",
        "RSA PRIVATE KEY",
        "EC PRIVATE KEY",
        "OPENSSH PRIVATE KEY",
        "ENCRYPTED PRIVATE KEY",
        "PGP PRIVATE KEY BLOCK",
    ],
)
def test_finds_pem_private_keys(header: str) -> None:
    text = f"-----BEGIN {header}-----\nMIIE...\n-----END {header}-----\n"
    assert find_secrets(text) == [SecretFinding("private key", "")]


def test_public_key_and_certificate_are_fine() -> None:
    assert find_secrets("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----") == []
    assert find_secrets("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----") == []


def test_finding_text_never_holds_the_value() -> None:
    assert [str(f) for f in find_secrets("bind_pw = s3cret")] == ["`bind_pw` set to a literal value"]


# --- block_secrets: a resource's arguments as checkov hands them over (values in one-element lists) ---


def _module(**locals_: object) -> TerraformModule:
    return TerraformModule(path=Path("cdk.tf.json"), locals=locals_)


def test_block_literal_password_argument() -> None:
    assert list(block_secrets({"admin_pass": ["s3cret"]}, None)) == ["admin_pass: `admin_pass` set to a literal value"]


def test_block_numeric_password_argument() -> None:
    assert list(block_secrets({"password": [123456]}, None)) == ["password: `password` set to a literal value"]


@pytest.mark.parametrize(
    "value",
    [
        "${var.admin_pass}",
        "${random_password.admin.result}",
        "${nonsensitive(random_password.x.result)}",
        "${tls_private_key.ca.private_key_pem}",
        "${trimspace(file(var.pw_file))}",
    ],
)
def test_block_reference_password_argument(value: str) -> None:
    assert list(block_secrets({"admin_pass": [value]}, None)) == []


def test_block_nested_block_password() -> None:
    conf = {"connection": [{"type": ["ssh"], "password": ["s3cret"]}]}
    assert list(block_secrets(conf, None)) == ["connection.password: `password` set to a literal value"]


def test_block_password_from_literal_local() -> None:
    conf = {"password": ["${local.db_password}"]}
    assert list(block_secrets(conf, _module(db_password="s3cret"))) == [
        "password: `password` set from local.db_password, a literal value"
    ]


def test_block_password_from_local_that_is_a_reference() -> None:
    conf = {"password": ["${local.db_password}"]}
    assert list(block_secrets(conf, _module(db_password="${random_password.db.result}"))) == []


def test_block_user_data_local_list_of_lines() -> None:
    user_data = '${base64gzip(join("\\n", concat(["#cloud-config"], local.ud)))}'
    module = _module(ud=["write_files:", "  - content: |", "      dnpass = s3cret"])
    assert list(block_secrets({"user_data": [user_data]}, module)) == [
        "user_data via local.ud[2]: `dnpass` set to a literal value"
    ]


def test_block_user_data_locals_unresolved_without_module() -> None:
    user_data = '${base64gzip(join("\\n", local.ud))}'
    assert list(block_secrets({"user_data": [user_data]}, None)) == []


def test_block_skips_cdktf_metadata_and_booleans() -> None:
    conf = {"//": {"metadata": {"password": "s3cret"}}, "password": [True], "__startline__": 3}
    assert list(block_secrets(conf, None)) == []


@pytest.mark.parametrize(
    "line",
    [
        "      # Holds the bind password: 0640 root:postfix.",
        "      // It holds the AD bind password and the database password: root:sogo 0640.",
        "      db_password=$(sed -n 's/^password=//p' /etc/sogo/mailstrata-db.cnf)",
    ],
)
def test_prose_in_comments_and_sed_patterns_are_not_settings(line: str) -> None:
    assert find_secrets(line) == []


def test_a_url_password_in_a_comment_is_still_found() -> None:
    assert [str(f) for f in find_secrets("# mysql://sogo:abc@db/sogo")] == [
        "a literal password in a URL (`scheme://user:password@host`)"
    ]


def test_an_sql_function_call_on_a_shell_variable_is_not_a_literal() -> None:
    assert find_secrets("UPDATE mysql.user SET Password = PASSWORD('$${root_password}') WHERE User = 'root';") == []
