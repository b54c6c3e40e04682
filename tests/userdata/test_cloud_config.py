"""Every role's cloud-config, taken out of the default platform's cdk.tf.json as Nova receives it."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mailstrata.roles import Role
from mailstrata.userdata.render import BANNER_PREFIX, CLOUD_CONFIG_KEYS
from mailstrata.userdata.terraform_text import size_after_base64
from tests.support.synth import default_platform
from tests.userdata import _sample

ROLES = list(Role)
NOVA_LIMIT = 65535
# A 2048-bit RSA key in PEM is about 1.7 KB; the resolved size check uses a real-sized stand-in.
PEM_STANDIN = "-----BEGIN PRIVATE KEY-----\n" + ("A" * 64 + "\n") * 25 + "-----END PRIVATE KEY-----\n"


def need(binary: str) -> None:
    if shutil.which(binary) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{binary} is not installed")
        pytest.skip(f"{binary} is not installed")


@pytest.mark.daemons
@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_cloud_init_accepts_the_document(role: Role, tmp_path: Path) -> None:
    need("cloud-init")
    doc = tmp_path / "user-data"
    doc.write_text(_sample.cloud_config_text(role))
    proc = subprocess.run(["cloud-init", "schema", "--config-file", str(doc)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout.strip()) == (0, "Valid cloud-config: " + str(doc)), proc.stderr


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_no_top_level_key_cloud_init_would_ignore(role: Role, layer_cloud_config: Callable[[Role], dict]) -> None:
    # cloud-init 22.4's schema accepts unknown top-level keys, so a typo would be dropped silently.
    assert set(layer_cloud_config(role)) <= CLOUD_CONFIG_KEYS


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_host_name_and_fqdn_are_set_per_server(role: Role, layer_cloud_config: Callable[[Role], dict]) -> None:
    doc = layer_cloud_config(role)
    host = "mail-nfs" if role is Role.NFS_SERVER else f"mail-{role.slug}-01"
    assert (doc["hostname"], doc["fqdn"]) == (host, f"{host}.cloud0.hc.mycompany.dom")


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_yum_uses_the_centos_vault_and_the_epel_archive(role: Role, layer_files: Callable) -> None:
    files = layer_files(role)
    base = files["/etc/yum.repos.d/CentOS-Base.repo"]
    assert re.findall(r"(?m)^baseurl=(.*)$", base) == [
        "https://vault.centos.org/7.9.2009/os/$basearch/",
        "https://vault.centos.org/7.9.2009/updates/$basearch/",
        "https://vault.centos.org/7.9.2009/extras/$basearch/",
    ]
    assert not re.search(r"(?m)^mirrorlist=", base)
    assert re.findall(r"(?m)^baseurl=(.*)$", files["/etc/yum.repos.d/epel.repo"]) == [
        "https://archives.fedoraproject.org/pub/archive/epel/7/$basearch/"
    ]
    assert not any("rpmforge" in text or "repoforge" in text for text in files.values())


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_setup_removes_sendmail_then_runs_once(role: Role, layer_files: Callable, layer_cloud_config: Callable) -> None:
    setup = layer_files(role)["/usr/local/sbin/mailstrata-setup"]
    assert "if rpm -q sendmail >/dev/null 2>&1; then yum -y remove sendmail; fi" in setup
    assert layer_cloud_config(role)["runcmd"] == [["/usr/local/sbin/mailstrata-setup"]]


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_every_file_carries_the_managed_by_banner(role: Role, layer_files: Callable) -> None:
    for path, text in layer_files(role).items():
        if path.endswith((".private", ".key", ".pem", ".crt")) or text.startswith("-----BEGIN"):
            continue  # keys and certificates: the banner would break them
        assert BANNER_PREFIX in "\n".join(text.splitlines()[:3]), path


@pytest.mark.daemons
@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_shellcheck_passes_on_every_script(role: Role, layer_files: Callable, tmp_path: Path) -> None:
    need("shellcheck")
    scripts = {p: t for p, t in layer_files(role).items() if t.startswith("#!/bin/bash") or t.startswith("#!/bin/sh")}
    assert "/usr/local/sbin/mailstrata-setup" in scripts
    for i, (path, text) in enumerate(sorted(scripts.items())):
        f = tmp_path / f"script{i}"
        f.write_text(text)
        proc = subprocess.run(["shellcheck", "-S", "style", str(f)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{path}:\n{proc.stdout}"


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_files_holding_secrets_are_not_world_readable(role: Role) -> None:
    doc = default_platform()
    local = next(v for k, v in doc["locals"].items() if k.endswith("_" + role.value))
    text = "\n".join(local)
    for entry in yaml.safe_load(text)["write_files"]:
        content = str(entry.get("content", ""))
        if re.search(r"\$\{(var\.|random_password|base64encode\(tls_private_key)", content):
            assert entry["permissions"] in ("0600", "0640"), entry["path"]


def test_no_secret_value_is_in_the_synthesized_json() -> None:
    text = json.dumps(default_platform())
    assert "PRIVATE KEY-----" not in text
    for value in ("Bind-Pa55word", "Db-Pa55word"):
        assert value not in text
    # The secrets are there, as references only.
    assert "${var.ad_bind_password}" in text and "${var.webmail_db_password}" in text
    assert "${base64encode(tls_private_key.dkim_domain01_dom.private_key_pem)}" in text


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_user_data_fits_novas_limit_with_real_sized_secrets(role: Role) -> None:
    text = _sample.cloud_config_text(role)
    real = re.sub(r"(?m)^(\s+content: )(\S+)$", lambda m: m.group(1) + (
        base64.b64encode(PEM_STANDIN.encode()).decode() if len(m.group(2)) > 8 else m.group(2)), text)
    size = size_after_base64(real, gzip_it=False)
    print(f"{role.value}: {len(real)} bytes of cloud-config, {size} after base64")  # noqa: T201
    assert size <= NOVA_LIMIT


def test_same_input_gives_byte_identical_user_data() -> None:
    from mailstrata.userdata.render import render_layer
    from tests.support.contexts import platform_context

    first = render_layer(platform_context()).body_text()
    assert render_layer(platform_context()).body_text() == first
