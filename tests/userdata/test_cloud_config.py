"""Every role's cloud-config, taken out of the default platform's cdk.tf.json as Nova receives it."""

from __future__ import annotations

import base64
import functools
import gzip
import json
import re
import secrets
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from mailstrata.terraform_eval import StandIns, evaluate, nova_user_data
from mailstrata.userdata import limits
from mailstrata.userdata.render import BANNER_PREFIX, CLOUD_CONFIG_KEYS
from mailstrata.userdata.terraform_text import size_after_base64
from tests.support import many_domains
from tests.support.requires import requires
from tests.support.synth import default_platform
from tests.userdata import _sample

ROLES = list(Role)
NOVA_LIMIT = 65535


@pytest.mark.daemons
@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_cloud_init_accepts_the_document(role: Role, tmp_path: Path) -> None:
    requires("cloud-init")
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
        if text.startswith("version: STSv1\r\n"):
            continue  # the MTA-STS policy: RFC 8461 3.2's format has no comments
        assert BANNER_PREFIX in "\n".join(text.splitlines()[:3]), path


@pytest.mark.daemons
@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_shellcheck_passes_on_every_script(role: Role, layer_files: Callable, tmp_path: Path) -> None:
    requires("shellcheck")
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
    assert "${base64encode(tls_private_key.dkim.private_key_pem)}" in text


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_user_data_fits_novas_limit_with_real_sized_secrets(role: Role) -> None:
    text = _sample.cloud_config_text(role)
    key = base64.b64encode(_real_rsa_2048().encode()).decode()  # a real key: a key of "A"s compresses away
    real = re.sub(r"(?m)^(\s+content: )(\S+)$", lambda m: m.group(1) + (key if len(m.group(2)) > 8 else m.group(2)),
                  text)
    raw, gzipped = size_after_base64(real, gzip_it=False), size_after_base64(real, gzip_it=True)
    print(f"{role.value}: {len(real)} bytes of cloud-config, {raw} after base64, {gzipped} gzipped")  # noqa: T201
    assert min(raw, gzipped) <= NOVA_LIMIT  # the synth gzips a layer whose plain user data would not fit


def test_same_input_gives_byte_identical_user_data() -> None:
    from mailstrata.roles import Role
    from mailstrata.userdata.context import LayerContext
    from mailstrata.userdata.render import render_layer
    from tests.support.contexts import platform_context

    first = render_layer(LayerContext(platform=platform_context(), role=Role.SMTP_IN)).body_text()
    assert render_layer(LayerContext(platform=platform_context(), role=Role.SMTP_IN)).body_text() == first


# ---- sizes with many mail domains, real keys, as Terraform hands them to Nova -------------------------


def _real_rsa_2048() -> str:
    """A real RSA 2048 key in PKCS#1 PEM, the form of tls_private_key's `private_key_pem`."""
    return subprocess.run(["openssl", "genrsa", "-traditional", "2048"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


@functools.cache
def _platform_with(count: int) -> tuple[dict[str, tuple[int, str]], dict[str, Any]]:
    """Synthesize the default platform serving `count` domains: ({server: (estimated size, role)}, cdk.tf.json)."""
    from cdktf import App

    from mailstrata.stacks import MailPlatformStack

    with tempfile.TemporaryDirectory(prefix=f"mailstrata-{count}-domains-") as tmp:
        outdir = Path(tmp)
        app = App(outdir=str(outdir))
        stack = MailPlatformStack(app, "mail", config=many_domains.config_with_domains(count))
        app.synth()
        doc = json.loads((outdir / "stacks" / "mail" / "cdk.tf.json").read_text())
    estimates = {}
    for role, layer in stack.layers.items():
        assert layer.user_data is not None
        estimates[layer.servers[0].name] = (layer.user_data.size, role.value)
    if stack.storage.user_data is not None:
        nfs = next(r["name"] for r in doc["resource"]["openstack_compute_instance_v2"].values()
                   if r["metadata"]["mailstrata_role"] == "nfs_server")
        estimates[nfs] = (stack.storage.user_data.size, "nfs_server")
    return estimates, doc


def _real_sizes(doc: dict[str, Any], servers: Iterable[str]) -> dict[str, int]:
    """Bytes Nova counts for each server's user data, evaluated by Terraform with a real DKIM key and
    real-length passwords (each server's text after Nova's base64)."""
    exprs = {r["name"]: r["user_data"] for r in doc["resource"]["openstack_compute_instance_v2"].values()
             if r["name"] in set(servers)}
    sample = _sample.standins(doc, exprs.values())
    # Every private key referenced gets a real one of its own, every generated password 32 characters.
    attributes = {path: _real_rsa_2048() if path.endswith(".private_key_pem")
                  else secrets.token_urlsafe(24) if path.startswith("random_password.") else value
                  for path, value in sample.attributes.items()}
    variables = {name: secrets.token_urlsafe(48) for name in sample.variables}  # 64 characters
    values = evaluate(exprs, StandIns(attributes=attributes, variables=variables), doc=doc)
    return {name: len(base64.b64encode(nova_user_data(v))) for name, v in values.items()}


@pytest.mark.parametrize("count", [30, 500])
def test_every_server_fits_novas_limit_with_real_keys_and_the_estimate_is_not_below_it(count: int) -> None:
    # GIVEN the default platform serving `count` mail domains (30 went over the limit with a key per domain)
    estimates, doc = _platform_with(count)
    # WHEN Terraform evaluates every server's user data with a real RSA 2048 key
    real = _real_sizes(doc, estimates)
    # THEN every one fits, and the size the synth estimated is at least the real one
    got = {name: (estimates[name][1], size <= NOVA_LIMIT, estimates[name][0] >= size) for name, size in real.items()}
    assert got == {name: (role, True, True) for name, (_, role) in estimates.items()}, (real, estimates)


def test_one_dkim_key_travels_in_smtp_outs_user_data_whatever_the_domain_count() -> None:
    _, doc = _platform_with(500)
    smtp_out = next(v for k, v in doc["locals"].items() if k.endswith("_smtp_out"))
    assert sum(line.count("tls_private_key.") for line in smtp_out) == 1


def test_the_size_check_refuses_one_domain_more_than_it_says_fits() -> None:
    # GIVEN a platform with more mail domains than its user data can hold
    problems = limits.user_data_problems(many_domains.config_with_domains(1500))
    assert [p.path for p in problems] == ["domains"]
    m = re.fullmatch(
        r"must keep every server's user data within Nova's limit of 65535 bytes \(layers\.(\w+)'s would be "
        r"(\d+) after gzip and base64\), got 1500 mail domains; at most (\d+) fit with this config: serve the "
        r"others from a second platform \(another config file\)",
        problems[0].message,
    )
    assert m is not None, problems[0].message
    fit = int(m.group(3))
    # THEN exactly the number it names fits, and one more does not
    assert limits.user_data_problems(many_domains.config_with_domains(fit)) == []
    assert [p.path for p in limits.user_data_problems(many_domains.config_with_domains(fit + 1))] == ["domains"]
    assert 1000 <= fit < 1500  # what the one-key design gives with 10-20 character names (docs/benchmarks.md)


def test_synth_refuses_too_many_domains_naming_domains_not_optional_features(tmp_path: Path) -> None:
    from cdktf import App

    from mailstrata.stacks import MailPlatformStack

    cfg = many_domains.config_with_domains(1500, dns={"zone": "cloud0.hc.mycompany.dom", "designate": False})
    with pytest.raises(ConfigError) as err:
        MailPlatformStack(App(outdir=str(tmp_path)), "mail", config=cfg)
    [problem] = err.value.problems
    assert (problem.path, "optional features" in problem.message) == ("domains", False)
    assert re.search(r"got 1500 mail domains; at most \d+ fit with this config", problem.message), problem.message


def test_standins_are_as_long_as_the_values_and_do_not_compress() -> None:
    # A real RSA 2048 key, base64-encoded as user data carries it, against its stand-in.
    real = base64.b64encode(_real_rsa_2048().encode()).decode()
    standin = limits.standin("base64encode(tls_private_key.dkim.private_key_pem)")
    packed = {len(gzip.compress(x.encode(), 9)) for x in (real, standin)}
    assert len(standin) >= len(real) and min(packed) > 0.7 * len(real) * 3 / 4
    # The same reference gets the same stand-in (synth stays byte-identical), another reference another one.
    assert limits.standin("var.a") == limits.standin("var.a") != limits.standin("var.b")
