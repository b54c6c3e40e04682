"""`DirectorySettings.build`: the one constructor from the config-level fields, used by the config model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailstrata.config import parse_config
from mailstrata.directory import AttributeMap, DirectorySettings, LdapTls
from mailstrata.types import Secret

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
FIELDS: dict[str, Any] = {"urls": ["ldaps://dc1.domain01.dom"], "tls": LdapTls.LDAPS, "base_dn": "dc=domain01,dc=dom",
                          "bind_dn": "cn=correoapp,dc=domain01,dc=dom", "bind_password": "${var.ad_bind_password}",
                          "domains": ["domain01.dom"]}


def test_given_a_ca_file_when_built_then_its_pem_is_read_and_lists_become_tuples(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(PEM, encoding="utf-8")

    settings = DirectorySettings.build(**FIELDS, ca_cert_file=tmp_path / "ca.pem")

    assert (settings.ca_cert_pem, settings.urls, settings.domains, settings.attributes) == (
        PEM, ("ldaps://dc1.domain01.dom",), ("domain01.dom",), AttributeMap())


def test_given_a_ca_file_and_a_pem_when_built_then_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"^DirectorySettings.build: give ca_cert_file or ca_cert_pem, not both$"):
        DirectorySettings.build(**FIELDS, ca_cert_file=tmp_path / "ca.pem", ca_cert_pem=PEM)


def test_given_a_config_when_its_directory_settings_are_asked_then_they_are_built_from_its_fields(
    config: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_text(PEM, encoding="utf-8")
    config["directory"] |= {"ca_cert_file": "ca.pem", "attributes": {"login": "uid", "quota": "mailQuota"}}
    cfg = parse_config(config, base_dir=tmp_path)
    d = cfg.directory

    settings = cfg.directory_settings(bind_password=("${var.ad_bind_password}"))

    assert settings == DirectorySettings.build(
        urls=d.urls, tls=d.tls, base_dn=d.base_dn, bind_dn=d.bind_dn,
        bind_password=Secret(ref="${var.ad_bind_password}"),
        domains=cfg.domains, attributes=AttributeMap(login="uid", quota="mailQuota"), ca_cert_pem=PEM)
