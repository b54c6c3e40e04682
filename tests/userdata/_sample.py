"""The default platform's user-data, taken out of the synthesized cdk.tf.json exactly as Nova would
receive it: Terraform itself evaluates it (`mailstrata.terraform_eval`), with sample values standing in
for the resource attributes and variables it only knows at apply time.

`context(role)` is a hand-made context like the default platform's (addresses already resolved), for
tests that render variants of a layer directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import replace
from functools import cache
from typing import Any

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.roles import QUEUEING_ROLES, Role
from mailstrata.terraform_eval import StandIns, evaluate, nova_user_data, referenced_attributes
from mailstrata.userdata.context import (
    Database,
    DkimKey,
    LayerContext,
    Networks,
    NfsMount,
    Peer,
    Platform,
    Secret,
    Spool,
    Vips,
    Webmail,
)
from mailstrata.userdata.terraform_text import decode_user_data
from tests.support.requires import requires_terraform
from tests.support.synth import default_platform, instances_of

SMTP_OUT_SERVERS = ("10.10.2.21", "10.10.2.22")  # the internal relay, as the mailstores see it
MAILSTORE_PEERS = (Peer("mail-mailstore-01", "10.10.3.21"), Peer("mail-mailstore-02", "10.10.3.22"))
# A throwaway RSA key, only so that files holding a key parse; never used to sign anything.
SAMPLE_DKIM_KEY = "SAMPLE-DKIM-KEY"
SAMPLE_VALUES: dict[str, str] = {
    "var.ad_bind_password": "Bind-Pa55word",
    "random_password.webmail_db.result": "Db-Pa55word",
    "var.webmail_db_password": "Db-Pa55word",
    "vip.smtp_in": "10.20.0.10",
    "vip.smtp_out": "10.20.0.11",
    "vip.mailstore": "10.20.0.12",
    "vip.webmail": "10.20.0.13",
    "nfs.export": "10.10.5.20:/NFSVOL",
}
DIRECTORY = DirectorySettings(
    urls=("ldaps://dc1.domain01.dom:636",),
    tls=LdapTls.LDAPS,
    base_dn="dc=domain01,dc=dom",
    bind_dn="cn=correoapp,ou=mailapps,dc=domain01,dc=dom",
    bind_password=Secret(ref="${var.ad_bind_password}"),
    domains=("domain01.dom", "domain02.dom"),
)


def context(role: Role) -> LayerContext:
    platform = Platform(
        stack_name="mail",
        domains=DIRECTORY.domains,
        dns_zone="cloud0.hc.mycompany.dom",
        directory=DIRECTORY,
        vips=Vips(
            smtp_in=SAMPLE_VALUES["vip.smtp_in"],
            smtp_out=SAMPLE_VALUES["vip.smtp_out"],
            mailstore=SAMPLE_VALUES["vip.mailstore"],
            webmail=SAMPLE_VALUES["vip.webmail"],
        ),
        networks=Networks(
            servers={
                Role.SMTP_IN: ("10.10.1.0/24",),
                Role.SMTP_OUT: ("10.10.2.0/24",),
                Role.MAILSTORE: ("10.10.3.0/24",),
                Role.WEBMAIL: ("10.10.4.0/24",),
                Role.NFS_SERVER: ("10.10.5.0/24",),
            },
            vip_subnet=("10.20.0.0/24",),
            clients=("10.0.0.0/8",),
            admin=("10.99.0.0/24",),
        ),
        dkim=DkimKey(selector="mail2026", private_key=Secret(ref="${tls_private_key.dkim.private_key_pem}")),
        webmail=Webmail(database=Database(password=Secret(ref="${random_password.webmail_db.result}")))
        if role is Role.WEBMAIL
        else None,
        relays=SMTP_OUT_SERVERS if role is Role.MAILSTORE else (),
    )
    return LayerContext(
        platform=platform,
        role=role,
        proxy_ports={
            Role.SMTP_IN: frozenset({25}),
            Role.SMTP_OUT: frozenset({587}),
            Role.MAILSTORE: frozenset({25, 110, 143, 993, 995, 4190}),
            Role.WEBMAIL: frozenset({80, 443}),
        }.get(role, frozenset()),
        nfs=NfsMount(source=SAMPLE_VALUES["nfs.export"]) if role is Role.MAILSTORE else None,
    )


def stack_context(role: Role) -> LayerContext:
    """`context(role)` as MailLayer completes it in the default stack: a spool volume per queueing server, and
    the mailstores' own servers as peers (their addresses as `sample_attribute` gives the ports')."""
    return replace(context(role), spool=Spool() if role in QUEUEING_ROLES else None,
                   peers=MAILSTORE_PEERS if role is Role.MAILSTORE else ())


_NFS_HOST = SAMPLE_VALUES["nfs.export"].split(":")[0]
_SMTP_OUT_PORT = re.compile(r"^smtp-out_port-(?P<n>\d+)_[0-9A-F]+$")
_MAILSTORE_PORT = re.compile(r"^mailstore_port-(?P<n>\d+)_[0-9A-F]+$")
_VIP_KEY = re.compile(r"^vip-(?P<slug>[a-z-]+)_lb_[0-9A-F]+$")
SAMPLE_VOLUME_SERIAL = "6f1c1c3e-0000-4000-8"
SAMPLE_EGRESS = "198.51.100.25"  # TEST-NET-2 (RFC 5737)
SAMPLE_PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----\nU0FNUExF\nUFVCTElD\n-----END PUBLIC KEY-----\n"

REF = re.compile(r"(?<!\$)\$\{([^{}]*)\}")  # a Terraform reference in escaped text


def sample_attribute(path: str) -> Any:
    """The sample stand-in of one resource attribute ("type.name.attribute"), what Terraform would know
    after apply."""
    if path.startswith("data.openstack_networking_router_v2.") and path.endswith(".external_fixed_ip"):
        return [{"ip_address": SAMPLE_EGRESS, "subnet_id": "sample-external-subnet"}]  # smtp-out's SNAT address
    rtype, name, attr = path.split(".", 2)
    if (rtype, attr) == ("openstack_lb_loadbalancer_v2", "vip_address"):
        m = _VIP_KEY.match(name)
        return SAMPLE_VALUES[f"vip.{m.group('slug').replace('-', '_')}"] if m else "10.20.0.99"
    if (rtype, attr) == ("openstack_networking_port_v2", "all_fixed_ips"):
        if m := _SMTP_OUT_PORT.match(name):
            return [f"10.10.2.{20 + int(m.group('n'))}"]
        if m := _MAILSTORE_PORT.match(name):
            return [f"10.10.3.{20 + int(m.group('n'))}"]
        return [_NFS_HOST] if name.startswith("storage_port") else ["10.10.9.9"]
    if (rtype, attr) == ("openstack_networking_floatingip_v2", "address"):
        return "203.0.113.10"
    if (rtype, attr) == ("openstack_blockstorage_volume_v3", "id"):
        return SAMPLE_VOLUME_SERIAL + "000-000000000000"
    if (rtype, attr) == ("openstack_sharedfilesystem_share_v2", "export_locations"):
        return [{"path": SAMPLE_VALUES["nfs.export"]}]
    if (rtype, attr) == ("tls_private_key", "private_key_pem"):
        return SAMPLE_DKIM_KEY
    if (rtype, attr) == ("tls_private_key", "public_key_pem"):
        return SAMPLE_PUBLIC_KEY
    if (rtype, attr) == ("random_password", "result"):
        return SAMPLE_VALUES["random_password.webmail_db.result"]
    if attr in ("id", "vip_port_id"):
        return f"{rtype}-{name}-{attr}"
    raise KeyError(f"no sample value for {path}")


def sample_variable(name: str) -> str:
    """A variable's sample value; PEM-like (several lines) for certificates and keys, as operators set them."""
    if f"var.{name}" in SAMPLE_VALUES:
        return SAMPLE_VALUES[f"var.{name}"]
    if any(word in name for word in ("cert", "key", "chain", "pem")):
        return f"-----BEGIN SAMPLE-----\nU0FNUExF\n{name}\n-----END SAMPLE-----\n"
    return f"Sample-{name}"


def standins(doc: dict[str, Any] | None, expressions: Iterable[Any] = ()) -> StandIns:
    """Sample stand-ins for every resource attribute and variable the stack (its locals) and `expressions`
    refer to."""
    doc = doc or {}
    paths = referenced_attributes([doc.get("locals", {}), *expressions])
    variables = {name for name, spec in doc.get("variable", {}).items() if "default" not in spec}
    for text in [json.dumps(doc.get("locals", {})), *map(json.dumps, expressions)]:
        variables.update(_VAR.findall(text))
    return StandIns(attributes={p: sample_attribute(p) for p in sorted(paths)},
                    variables={v: sample_variable(v) for v in sorted(variables)})


_VAR = re.compile(r"(?<![\w.-])var\.([A-Za-z_][\w-]*)")


@cache
def resolve(expr: str) -> str:
    """What Terraform substitutes for `${expr}` with the sample stand-ins (computed by Terraform)."""
    requires_terraform("for the sample user data (Terraform evaluates it)")
    value = evaluate({"v": "${" + expr + "}"}, standins(None, ["${" + expr + "}"]))["v"]
    assert isinstance(value, str), (expr, value)
    return value


@cache
def _default_user_data() -> dict[str, str]:
    """Every server's user data in the default platform, as Nova receives it (one Terraform run)."""
    requires_terraform("for the sample user data (Terraform evaluates it)")
    doc = default_platform()
    exprs = {r["name"]: r["user_data"] for r in doc["resource"]["openstack_compute_instance_v2"].values()}
    values = evaluate(exprs, standins(doc, exprs.values()), doc=doc)
    return {name: decode_user_data(nova_user_data(v)) for name, v in values.items()}


def cloud_config_text(role: Role) -> str:
    """The cloud-config of the role's first server, as cloud-init reads it."""
    doc = default_platform()
    if role is Role.NFS_SERVER:
        servers = [r for r in doc["resource"]["openstack_compute_instance_v2"].values()
                   if r["metadata"]["mailstrata_role"] == "nfs_server"]
    else:
        servers = instances_of(doc, role.value)
    return _default_user_data()[servers[0]["name"]]
