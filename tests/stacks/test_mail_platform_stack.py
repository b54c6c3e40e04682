"""MailPlatformStack: the default platform, as synthesized JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from cdktf import App

from mailstrata.config.loader import parse_config
from mailstrata.stacks import MailPlatformStack
from mailstrata.terraform_eval import StandIns, evaluate
from tests.support import many_domains
from tests.support.synth import default_platform, instances_of, resources

ROOT = Path(__file__).resolve().parents[2]


def test_one_server_group_per_layer_with_two_servers_each() -> None:
    doc = default_platform()
    groups = sorted(g["name"] for g in resources(doc, "openstack_compute_servergroup_v2").values())
    assert groups == ["mail-mailstore", "mail-smtp-in", "mail-smtp-out", "mail-webmail"]
    for role in ("smtp_in", "smtp_out", "mailstore", "webmail"):
        assert len(instances_of(doc, role)) == 2


def test_four_vips_and_the_mailstore_vip_carries_delivery_pop_imap_and_sieve() -> None:
    doc = default_platform()
    assert len(resources(doc, "openstack_lb_loadbalancer_v2")) == 4
    ports = sorted(
        x["protocol_port"]
        for x in resources(doc, "openstack_lb_listener_v2").values()
        if x["description"].startswith("mailstrata/mailstore/")
    )
    assert ports == [25, 110, 143, 993, 995, 4190]


def test_internet_facing_smtp_pool_uses_proxy() -> None:
    pools = resources(default_platform(), "openstack_lb_pool_v2").values()
    [smtp_in] = [p for p in pools if p["description"].startswith("mailstrata/smtp_in/25:")]
    assert smtp_in["protocol"] == "PROXY"


def test_imap_pop_and_sieve_listeners_outlast_octavias_50s_default() -> None:
    for x in resources(default_platform(), "openstack_lb_listener_v2").values():
        if x["protocol_port"] in (110, 143, 993, 995, 4190):
            assert x["timeout_client_data"] >= 1800000
            assert x["timeout_member_data"] >= 1800000


def test_webmail_uses_least_connections_with_source_ip_persistence() -> None:
    pools = resources(default_platform(), "openstack_lb_pool_v2").values()
    [web] = [p for p in pools if p["description"].startswith("mailstrata/webmail/443:")]
    assert (web["lb_method"], web["persistence"]) == ("LEAST_CONNECTIONS", {"type": "SOURCE_IP"})


def test_only_smtp_in_and_webmail_get_floating_ips() -> None:
    fips = resources(default_platform(), "openstack_networking_floatingip_v2").values()
    assert sorted(f["description"].split(":")[0] for f in fips) == ["mailstrata/smtp_in", "mailstrata/webmail"]


def test_no_security_group_rule_faces_the_world_or_lacks_a_port_range() -> None:
    for rule in resources(default_platform(), "openstack_networking_secgroup_rule_v2").values():
        assert rule.get("remote_ip_prefix") not in (None, "0.0.0.0/0", "::/0") or rule.get("remote_group_id")
        assert rule["port_range_min"] == rule["port_range_max"]


def test_ssh_only_from_admin_cidrs() -> None:
    ssh = [
        r
        for r in resources(default_platform(), "openstack_networking_secgroup_rule_v2").values()
        if r["port_range_min"] == 22
    ]
    assert {r["remote_ip_prefix"] for r in ssh} == {"10.99.0.0/24"}
    assert len(ssh) == 5  # four layers and the NFS server


def test_provider_has_no_credentials_in_code() -> None:
    provider = default_platform()["provider"]["openstack"][0]
    assert not {"password", "token", "application_credential_secret", "user_name"} & set(provider)


def test_local_backend_uses_a_relative_path() -> None:
    assert default_platform()["terraform"]["backend"] == {"local": {"path": "../../../state/mail.tfstate"}}


def test_outputs_give_vips_and_names_to_publish() -> None:
    out = default_platform()["output"]
    assert {
        "vip_smtp_in",
        "vip_smtp_out",
        "vip_mailstore",
        "vip_webmail",
        "public_smtp_in",
        "public_webmail",
        "mailbox_export",
        "dns_records",
    } <= set(out)


def test_an_mx_per_mail_domain_points_at_smtp_in() -> None:
    records = resources(default_platform(), "openstack_dns_recordset_v2").values()
    mx = sorted((r["name"], tuple(r["records"])) for r in records if r["type"] == "MX")
    assert mx == [
        ("domain01.dom.", ("10 smtp-in.cloud0.hc.mycompany.dom.",)),
        ("domain02.dom.", ("10 smtp-in.cloud0.hc.mycompany.dom.",)),
    ]


def test_one_dkim_key_for_the_whole_platform() -> None:
    keys = {k: (v["algorithm"], v["rsa_bits"]) for k, v in resources(default_platform(), "tls_private_key").items()}
    assert keys == {"dkim": ("RSA", 2048)}


def test_each_domains_selector_is_a_cname_to_the_one_dkim_record_in_the_platform_zone() -> None:
    records = resources(default_platform(), "openstack_dns_recordset_v2").values()
    dkim = sorted((r["name"], r["type"], tuple(r["records"])) for r in records if "._domainkey." in r["name"])
    target = "mail2026._domainkey.cloud0.hc.mycompany.dom."
    assert [(n, t, v if t == "CNAME" else "TXT") for n, t, v in dkim] == [
        (target, "TXT", "TXT"),
        ("mail2026._domainkey.domain01.dom.", "CNAME", (target,)),
        ("mail2026._domainkey.domain02.dom.", "CNAME", (target,)),
    ]


def test_the_dns_records_output_publishes_the_same_dkim_records() -> None:
    out = default_platform()["output"]["dns_records"]["value"]
    assert sorted((r["name"], r["type"]) for r in out if "._domainkey." in r["name"]) == [
        ("mail2026._domainkey.cloud0.hc.mycompany.dom.", "TXT"),
        ("mail2026._domainkey.domain01.dom.", "CNAME"),
        ("mail2026._domainkey.domain02.dom.", "CNAME"),
    ]


def test_dkim_txt_evaluates_to_strings_designate_takes_holding_the_public_key() -> None:
    # GIVEN a real public key as tls_private_key gives it
    key = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, text=True, check=True).stdout
    pem = subprocess.run(["openssl", "pkey", "-pubout"], input=key, capture_output=True, text=True, check=True).stdout
    [txt] = [r["value"] for r in default_platform()["output"]["dns_records"]["value"]
             if r["type"] == "TXT" and "._domainkey." in r["name"]]
    # WHEN Terraform evaluates the published value
    value = evaluate({"v": txt}, StandIns(attributes={"tls_private_key.dkim.public_key_pem": pem}))["v"]
    # THEN it is quoted strings of at most 253 characters (255 with the quotes: Designate's limit, see
    # tests/stacks/test_dns_records.py) that join into the DKIM record of that key
    strings = re.findall(r'"([^"]*)"', value)
    body = "".join(pem.strip().splitlines()[1:-1])
    assert value == " ".join(f'"{s}"' for s in strings)
    assert ([len(s) <= 253 for s in strings], "".join(strings)) == ([True, True], f"v=DKIM1; k=rsa; p={body}")


def test_a_mail_domain_that_is_the_platform_zone_holds_the_dkim_txt_without_a_cname() -> None:
    data = many_domains.default_data()
    data["domains"] = ["cloud0.hc.mycompany.dom", "domain02.dom"]
    data["dns"] = {**data["dns"], "mail_domain_zones": False}
    stack = MailPlatformStack(App(outdir=tempfile.mkdtemp()), "mail", config=parse_config(data))
    dkim = sorted((r.name, r.type) for r in stack.published if "._domainkey." in r.name)
    assert dkim == [("mail2026._domainkey.cloud0.hc.mycompany.dom.", "TXT"),
                    ("mail2026._domainkey.domain02.dom.", "CNAME")]


def test_secrets_are_sensitive_variables_or_generated() -> None:
    doc = default_platform()
    assert doc["variable"]["ad_bind_password"]["sensitive"] is True
    text = json.dumps(doc)
    assert "${var.ad_bind_password}" in text
    assert "BEGIN RSA PRIVATE KEY" not in text and "BEGIN PRIVATE KEY" not in text


def _synth_in(cwd: Path, outdir: Path, env_extra: dict[str, str] | None = None) -> bytes:
    env = {**os.environ, "CDKTF_OUTDIR": str(outdir), **(env_extra or {})}
    env.pop("MAILSTRATA_CONFIG", None)
    subprocess.run([sys.executable, str(ROOT / "main.py")], cwd=cwd, env=env, check=True)
    return (outdir / "stacks" / "mail" / "cdk.tf.json").read_bytes()


def test_synth_is_byte_identical_across_runs_and_working_directories(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    first = _synth_in(ROOT, tmp_path / "a")
    second = _synth_in(tmp_path / "elsewhere", tmp_path / "b")
    assert first == second
    assert str(ROOT).encode() not in first and str(tmp_path).encode() not in first


def test_two_environments_come_from_one_app(tmp_path: Path) -> None:
    base = yaml.safe_load((ROOT / "mailstrata/config/default.yaml").read_text())
    paths = []
    for name in ("staging", "prod"):
        cfg = dict(base, name=name)
        p = tmp_path / f"{name}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        paths.append(str(p))
    out = tmp_path / "out"
    env = {**os.environ, "CDKTF_OUTDIR": str(out), "MAILSTRATA_CONFIG": ",".join(paths)}
    subprocess.run([sys.executable, str(ROOT / "main.py")], cwd=tmp_path, env=env, check=True)
    assert sorted(p.name for p in (out / "stacks").iterdir()) == ["prod", "staging"]
    prod = json.loads((out / "stacks/prod/cdk.tf.json").read_text())
    assert prod["terraform"]["backend"]["local"]["path"] == "../../../state/prod.tfstate"
    assert {g["name"] for g in prod["resource"]["openstack_compute_servergroup_v2"].values()} >= {"prod-smtp-in"}


def test_s3_backend_for_teams(tmp_path: Path) -> None:
    from tests.support.synth import synth_config_file

    base = yaml.safe_load((ROOT / "mailstrata/config/default.yaml").read_text())
    base["backend"] = {"type": "s3", "bucket": "tfstate", "endpoint": "https://rgw.example.dom"}
    p = tmp_path / "s3.yaml"
    p.write_text(yaml.safe_dump(base))
    s3 = synth_config_file(str(p), "s3")["terraform"]["backend"]["s3"]
    assert (s3["bucket"], s3["key"], s3["endpoints"], s3["use_path_style"]) == (
        "tfstate",
        "mailstrata/mail.tfstate",
        {"s3": "https://rgw.example.dom"},
        True,
    )


def test_given_a_path_instead_of_a_config_when_building_the_stack_then_it_says_how_to_load_one() -> None:
    import pytest

    from mailstrata.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        MailPlatformStack(App(outdir=tempfile.mkdtemp()), "mail", config="examples/minimal.yaml")  # type: ignore[arg-type]

    assert str(caught.value).splitlines()[1] == (
        "  - config: must be a PlatformConfig, got the text 'examples/minimal.yaml'; load one with "
        "mailstrata.config.load_config('prod.yaml')")


def test_given_a_stack_id_other_than_the_config_name_when_building_then_nothing_is_added() -> None:
    import pytest

    from mailstrata.config import load_config
    from mailstrata.errors import ConfigError

    app = App(outdir=tempfile.mkdtemp())
    with pytest.raises(ConfigError, match=r"  - id: must be the config's name 'mail', which names the state file and "
                                          r"every resource, got 'prod'; use MailPlatformStack\(app, config.name"):
        MailPlatformStack(app, "prod", config=load_config(None))

    assert app.node.children == []


# ---- issue 9: who may reach which listener, and the internal relay -----------------------------------


def _listener_sources(role: str, port: int) -> list[str]:
    [lst] = [x for x in resources(default_platform(), "openstack_lb_listener_v2").values()
             if x["description"].startswith(f"mailstrata/{role}/{port}:")]
    return sorted(lst.get("allowed_cidrs") or [])


def test_submission_admits_the_clients_and_webmail_only() -> None:
    # The default config: clients 10.0.0.0/8... is wide; what matters is that no other layer is listed apart.
    assert _listener_sources("smtp_out", 587) == ["10.0.0.0/8", "10.10.4.0/24"]


def test_delivery_admits_only_the_layers_that_deliver() -> None:
    # smtp-in (clean inbound mail) and smtp-out (mail for the served domains); never webmail or the Internet.
    assert _listener_sources("mailstore", 25) == ["10.10.1.0/24", "10.10.2.0/24"]


def test_smtp_out_has_no_port_25_listener() -> None:
    ports = sorted(x["protocol_port"] for x in resources(default_platform(), "openstack_lb_listener_v2").values()
                   if x["description"].startswith("mailstrata/smtp_out/"))
    assert ports == [587]


def test_the_internal_relay_is_open_to_the_mailstores_security_group_only() -> None:
    doc = default_platform()
    groups = {f"${{openstack_networking_secgroup_v2.{k}.id}}": g["name"]
              for k, g in resources(doc, "openstack_networking_secgroup_v2").items()}
    relay = [(groups[r["security_group_id"]], groups.get(r.get("remote_group_id", "")), r.get("remote_ip_prefix"))
             for r in resources(doc, "openstack_networking_secgroup_rule_v2").values() if r["port_range_min"] == 2525]
    assert relay == [("mail-smtp-out", "mail-mailstore", None)]

