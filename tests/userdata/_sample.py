"""The default platform's user-data, taken out of the synthesized cdk.tf.json exactly as Nova would
receive it, with sample values standing in for what Terraform supplies at apply time.

`context(role)` is a hand-made context like the default platform's (addresses already resolved), for
tests that render variants of a layer directly.
"""

from __future__ import annotations

import base64
import re
from functools import cache

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.roles import Role
from mailstrata.userdata.context import (
    Database,
    DkimKey,
    Networks,
    NfsMount,
    PlatformContext,
    Secret,
    Vips,
    Webmail,
)
from mailstrata.userdata.terraform_text import decode_user_data, evaluate_user_data
from tests.support.synth import default_platform, instances_of

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
    bind_password="${var.ad_bind_password}",
    domains=("domain01.dom", "domain02.dom"),
)


def context(role: Role) -> PlatformContext:
    return PlatformContext(
        role=role,
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
        proxy_ports={
            Role.SMTP_IN: frozenset({25}),
            Role.SMTP_OUT: frozenset({25, 587}),
            Role.MAILSTORE: frozenset({25, 110, 143, 993, 995, 4190}),
        }.get(role, frozenset()),
        dkim=tuple(
            DkimKey(domain=d, selector="mail2026",
                    private_key=Secret(ref=f"${{tls_private_key.dkim_{i}.private_key_pem}}"))
            for i, d in enumerate(DIRECTORY.domains)
        ),
        nfs=NfsMount(source=SAMPLE_VALUES["nfs.export"]) if role is Role.MAILSTORE else None,
        webmail=Webmail(database=Database(password=Secret(ref="${random_password.webmail_db.result}")))
        if role is Role.WEBMAIL
        else None,
    )


_NFS_HOST = SAMPLE_VALUES["nfs.export"].split(":")[0]
_VIP = re.compile(r"^openstack_lb_loadbalancer_v2\.vip-(?P<slug>[a-z-]+)_lb_[0-9A-F]+\.vip_address$")
_PORT_IP = re.compile(r"^element\(openstack_networking_port_v2\.storage_port_[0-9A-F]+\.all_fixed_ips, 0\)$")
_KEY = re.compile(r"^base64encode\(tls_private_key\.(?P<name>\w+)\.private_key_pem\)$")
_VOLUME_ID = re.compile(r"^substr\(openstack_blockstorage_volume_v3\.storage_volume_[0-9A-F]+\.id, 0, 20\)$")
SAMPLE_VOLUME_SERIAL = "6f1c1c3e-0000-4000-8"


REF = re.compile(r"(?<!\$)\$\{([^{}]*)\}")  # a Terraform reference in escaped text


def resolve(expr: str) -> str:
    """What Terraform would substitute for `${expr}` in the default platform."""
    if expr in SAMPLE_VALUES:
        return SAMPLE_VALUES[expr]
    if m := _VIP.match(expr):
        return SAMPLE_VALUES[f"vip.{m.group('slug').replace('-', '_')}"]
    if _PORT_IP.match(expr):
        return _NFS_HOST
    if _VOLUME_ID.match(expr):
        return SAMPLE_VOLUME_SERIAL
    if _KEY.match(expr):
        return base64.b64encode(SAMPLE_DKIM_KEY.encode()).decode()
    raise KeyError(f"no sample value for the Terraform expression {expr!r}")


@cache
def cloud_config_text(role: Role) -> str:
    """The cloud-config of the role's first server, as cloud-init reads it."""
    doc = default_platform()
    if role is Role.NFS_SERVER:
        servers = [r for r in doc["resource"]["openstack_compute_instance_v2"].values()
                   if r["metadata"]["mailstrata_role"] == "nfs_server"]
    else:
        servers = instances_of(doc, role.value)
    data = evaluate_user_data(servers[0]["user_data"], doc["locals"], resolve)
    return decode_user_data(data)
