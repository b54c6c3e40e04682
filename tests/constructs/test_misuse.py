"""Python API misuse: every wrong prop is one `ConfigError` in the grammar `props.<field>: must be ..., got ...;
<fix>`, raised before anything is added to the stack, never an AttributeError from deep inside a construct."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from cdktf import TerraformStack

from mailstrata.constructs import (
    AdBinding,
    AdBindingProps,
    CinderServerProps,
    LbaasVip,
    LbaasVipProps,
    ListenerProps,
    MailLayer,
    MailLayerProps,
    MonitorType,
    NfsShare,
    NfsShareProps,
    StorageMode,
)
from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from mailstrata.types import Secret, TlsSource
from mailstrata.userdata.context import Database, DkimKey, Tls, Webmail
from tests.support.contexts import new_stack, platform_context
from tests.support.ids import NETWORK, SUBNET, VIP_SUBNET

AD: dict[str, Any] = dict(urls=("ldaps://dc1.domain01.dom:636",), base_dn="dc=domain01,dc=dom",
          bind_dn="cn=correoapp,ou=mailapps,dc=domain01,dc=dom", domains=("domain01.dom",))


def vip(stack: TerraformStack, **overrides: Any) -> LbaasVip:
    props: dict[str, Any] = dict(name="t-mx", role=Role.SMTP_IN, vip_subnet_id=VIP_SUBNET) | overrides
    return LbaasVip(stack, "vip", props=LbaasVipProps(**props))


def layer(stack: TerraformStack, **overrides: Any) -> MailLayer:
    props: dict[str, Any] = dict(
        name_prefix="t", role=Role.SMTP_IN, platform=platform_context(), network_id=NETWORK, subnet_id=SUBNET,
        lb_source_cidrs=("10.20.0.0/24",), admin_cidrs=("10.99.0.0/24",),
    ) | overrides
    return MailLayer(stack, "layer", props=MailLayerProps(**props))


def share(stack: TerraformStack, **overrides: Any) -> NfsShare:
    props: dict[str, Any] = dict(name_prefix="t", mode=StorageMode.EXISTING, export="nas.domain01.dom:/mail")
    props |= overrides
    return NfsShare(stack, "storage", props=NfsShareProps(**props))


def ad(stack: TerraformStack, **overrides: Any) -> AdBinding:
    return AdBinding(stack, "directory", props=AdBindingProps(**(AD | overrides)))


MISUSES: dict[str, tuple[Callable[[TerraformStack], object], str]] = {
    "a role as text": (
        lambda s: vip(s, role="smtp_in"),
        "props.role: must be a Role, got the text 'smtp_in'; use Role.SMTP_IN"),
    "a listener protocol as text": (
        lambda s: vip(s, listeners=(ListenerProps(port=25, protocol="TCP"),)),  # type: ignore[arg-type]
        "props.listeners[0].protocol: must be a ListenerProtocol, got the text 'TCP'; use ListenerProtocol.TCP"),
    "one listener, not a tuple": (
        lambda s: vip(s, listeners=ListenerProps(port=25)),
        "props.listeners: must be a tuple of ListenerProps, got a ListenerProps; write (ListenerProps(...),)"),
    "listeners as a list": (
        lambda s: vip(s, listeners=[ListenerProps(port=25)]),
        "props.listeners: must be a tuple of ListenerProps, got a list; write a tuple instead: tuple(the_list)"),
    "a port as text": (
        lambda s: vip(s, listeners=(ListenerProps(port="25"),)),  # type: ignore[arg-type]
        "props.listeners[0].port: must be a whole number (int), got the text '25'; write 25 without quotes"),
    "a monitor type for the monitor": (
        lambda s: vip(s, listeners=(ListenerProps(port=25, monitor=MonitorType.HTTP),)),  # type: ignore[arg-type]
        "props.listeners[0].monitor: must be a MonitorProps, got MonitorType.HTTP; write MonitorProps(...)"),
    "a pool name for the floating IP": (
        lambda s: vip(s, floating_ip="public"),
        "props.floating_ip: must be a FloatingIpProps, got the text 'public'; write FloatingIpProps(...)"),
    "props as a dict": (
        lambda s: LbaasVip(s, "vip", props={"name": "t-mx"}),  # type: ignore[arg-type]
        "props: must be a LbaasVipProps, got a dict; write LbaasVipProps(...) with these values as keyword arguments"),
    "the NFS server role for a VIP": (
        lambda s: vip(s, role=Role.NFS_SERVER),
        "props.role: must be the role of a mail layer, got Role.NFS_SERVER; use one of Role.SMTP_IN, Role.SMTP_OUT, "
        "Role.MAILSTORE, Role.WEBMAIL"),
    "a VIP's ID for the VIP": (
        lambda s: layer(s, vips=("id",)),
        "props.vips[0]: must be a LbaasVip construct, got the text 'id'; pass the LbaasVip object itself: constructs "
        "take other constructs, never their IDs"),
    "one VIP, not a tuple": (
        lambda s: layer(s, vips=vip(s)),
        "props.vips: must be a tuple of LbaasVip constructs, got the LbaasVip construct 'vip'; write a one-item tuple "
        "holding the object: (<the LbaasVip>,)"),
    "a share's name for the storage": (
        lambda s: layer(s, role=Role.MAILSTORE, storage="x"),
        "props.storage: must be a NfsShare construct, got the text 'x'; pass the NfsShare object itself: constructs "
        "take other constructs, never their IDs"),
    "True for a count": (
        lambda s: layer(s, count=True),
        "props.count: must be a whole number (int), got True; write a whole number such as 2: True and False are not "
        "numbers"),
    "one CIDR, not a tuple": (
        lambda s: layer(s, admin_cidrs="10.99.0.0/24"),
        "props.admin_cidrs: must be a tuple of text (str), got the text '10.99.0.0/24'; write ('10.99.0.0/24',)"),
    "an address without a prefix": (
        lambda s: layer(s, admin_cidrs=("10.99.0.5",)),
        "layers.smtp_in.admin_cidrs[0]: has no prefix length, got '10.99.0.5'; write the network with its prefix, "
        "e.g. 10.0.0.0/24, or 10.99.0.5/32 for this one address"),
    "no platform": (
        lambda s: layer(s, platform=None),
        "props.platform: must be a Platform, got None; build it with mailstrata.compose.platform_context("
        "directory=<your AdBinding>, vips=..., ...)"),
    "a dict for the platform": (
        lambda s: layer(s, platform={"name": "t"}),
        "props.platform: must be a Platform, got a dict; build it with mailstrata.compose.platform_context("
        "directory=<your AdBinding>, vips=..., ...)"),
    "an affinity as text": (
        lambda s: layer(s, affinity="soft-anti-affinity"),
        "props.affinity: must be an Affinity, got the text 'soft-anti-affinity'; use Affinity.SOFT_ANTI_AFFINITY"),
    "a name prefix Terraform cannot name a local after": (
        lambda s: layer(s, name_prefix="Org.Mail"),
        "props.name_prefix: must be lower-case letters, digits and -, starting with a letter, at most 31 characters, "
        "got 'Org.Mail'; use e.g. 'mail'"),
    "a network name where its ID goes": (
        lambda s: layer(s, network_id="org-mail"),
        "props.network_id: is not a network ID (a UUID), got 'org-mail'; give its ID (`openstack network show -f "
        "value -c id NAME`), or the `.id` of a data source or resource that looks it up"),
    "a subnet name where its ID goes": (
        lambda s: vip(s, vip_subnet_id="org-vip-v4"),
        "props.vip_subnet_id: is not a subnet ID (a UUID), got 'org-vip-v4'; give its ID (`openstack subnet show -f "
        "value -c id NAME`), or the `.id` of a data source or resource that looks it up"),
    "an empty key pair": (
        lambda s: layer(s, key_pair=""),
        "props.key_pair: must not be empty, got ''; give a value, or None to leave it out"),
    "a storage mode as text": (
        lambda s: share(s, mode="manila"),
        "props.mode: must be a StorageMode, got the text 'manila'; use StorageMode.MANILA"),
    "a share larger than Cinder and Manila accept": (
        lambda s: share(s, mode=StorageMode.MANILA, export=None, size_gb=99999999999),
        "storage.size_gb: must be at most 2147483647, got 99999999999; use a whole number from 1 to 2147483647"),
    "a server's name for the Cinder server": (
        lambda s: share(s, mode=StorageMode.CINDER_SERVER, export=None, server="nfs-1"),
        "props.server: must be a CinderServerProps, got the text 'nfs-1'; write CinderServerProps(...)"),
    "a layer's name for grant_mount": (
        lambda s: share(s).grant_mount("mailstore"),  # type: ignore[arg-type]
        "grant_mount.client: must be an IStorageClient (client_id, role, security_group_id, addresses), got the text "
        "'mailstore'; pass a MailLayer's storage_client, or a StorageClient(...)"),
    "a layer's name for add_members": (
        lambda s: vip(s).add_members("smtp-in"),  # type: ignore[arg-type]
        "add_members.group: must be an IMemberGroup (group_id, role, subnet_id, members), got the text 'smtp-in'; "
        "pass a MailLayer's member_group, or a MemberGroup(...)"),
    "one URL, not a tuple": (
        lambda s: ad(s, urls="ldaps://dc1.domain01.dom:636"),
        "props.urls: must be a tuple of text (str), got the text 'ldaps://dc1.domain01.dom:636'; write "
        "('ldaps://dc1.domain01.dom:636',)"),
    "a TLS mode as text": (
        lambda s: ad(s, tls="ldaps"),
        "props.tls: must be a LdapTls, got the text 'ldaps'; use LdapTls.LDAPS"),
    "a password variable Terraform cannot name": (
        lambda s: ad(s, password_variable="AD password"),
        "props.password_variable: must be a Terraform variable name (lower-case letters, digits and _), got "
        "'AD password'; use e.g. 'ad_bind_password'"),
    "a password variable name Terraform reserves": (
        lambda s: ad(s, password_variable="count"),
        "props.password_variable: is a name Terraform reserves for itself, got 'count'; use e.g. 'mail_count'"),
    "two bindings with one password variable": (
        lambda s: (ad(s), AdBinding(s, "directory-2", props=AdBindingProps(**AD))),
        "props.password_variable: is already declared in this stack, got 'ad_bind_password'; give each secret its "
        "own variable, and build the AdBinding before the layers that reference it"),
    "two constructs with one id": (
        lambda s: (vip(s), vip(s)),
        "id: is already used by the LbaasVip construct 'vip' in t, got 'vip'; give each construct its own id"),
    "no scope": (
        lambda s: LbaasVip(None, "vip", props=LbaasVipProps(name="t-mx", role=Role.SMTP_IN,  # type: ignore[arg-type]
                                                            vip_subnet_id=VIP_SUBNET)),
        "scope: must be a Construct (your stack), got None; pass the stack, usually self"),
    "a port Neutron cannot open, for allow": (
        lambda s: layer(s).allow(70000, "10.0.0.0/8", "monitoring", id_suffix="mon"),
        "allow.port: must be a TCP port between 1 and 65535, got 70000"),
    "one rule suffix twice, for allow": (
        lambda s: [(built := layer(s)).allow(9100, "10.0.0.0/8", "metrics", id_suffix="mon"),
                   built.allow(9101, "10.0.0.0/8", "metrics", id_suffix="mon")],
        "allow.id_suffix: is already used by a rule of this layer, got 'mon'; give each rule its own suffix"),
    "a plain str for the provided TLS key": (
        lambda s: layer(s, platform=replace(platform_context(), tls=Tls(
            source=TlsSource.PROVIDED, certificate=Secret(ref="${var.tls_cert}"),
            private_key="-----BEGIN PRIVATE KEY-----"))),  # type: ignore[arg-type]
        "props.platform.tls.private_key: must be a Secret, never a plain str, got a text (not shown); keep the value "
        'in a sensitive Terraform variable and write Secret(ref="${var.<name>}") (from mailstrata.types import '
        "Secret)"),
    "a literal password inside a Secret": (
        lambda s: layer(s, platform=replace(platform_context(), webmail=Webmail(
            database=Database(password=Secret(ref="hunter2"))))),
        "props.platform.webmail.database.password.ref: must be a Terraform reference such as ${var.<name>}, got a "
        'literal text (not shown); keep the value in a sensitive Terraform variable and write Secret(ref="${var.'
        '<name>}") (from mailstrata.types import Secret)'),
    "a plain str for the DKIM key of the NFS server's platform": (
        lambda s: share(s, mode=StorageMode.CINDER_SERVER, export=None, server=CinderServerProps(
            platform=replace(platform_context(), dkim=DkimKey(selector="mail", private_key="${var.dkim}")),  # type: ignore[arg-type]
            network_id=NETWORK, subnet_id=SUBNET, admin_cidrs=("10.99.0.0/24",))),
        "props.server.platform.dkim.private_key: must be a Secret, never a plain str, got a text (not shown); keep "
        'the value in a sensitive Terraform variable and write Secret(ref="${var.<name>}") (from mailstrata.types '
        "import Secret)"),
    "attributes as a dict": (
        lambda s: ad(s, attributes={"login": "uid"}),
        "props.attributes: must be an AttributeMap, got a dict; write AttributeMap(...) with these values as keyword "
        "arguments (from mailstrata.directory import AttributeMap)"),
}


@pytest.mark.parametrize("misuse", list(MISUSES))
def test_given_a_misuse_when_the_construct_is_built_then_one_clear_error_names_the_prop(misuse: str) -> None:
    build, message = MISUSES[misuse]
    stack = new_stack()

    with pytest.raises(ConfigError) as caught:
        build(stack)

    assert [str(p) for p in caught.value.problems] == [message]


def test_given_several_wrong_props_when_the_layer_is_built_then_all_are_reported_at_once() -> None:
    stack = new_stack()

    with pytest.raises(ConfigError) as caught:
        layer(stack, role="smtp_in", count="3", vips=("id",))

    assert [p.path for p in caught.value.problems] == ["props.role", "props.count", "props.vips[0]"]


def test_given_a_refused_construct_when_refused_then_nothing_was_added_to_the_stack() -> None:
    stack = new_stack()

    with pytest.raises(ConfigError):
        vip(stack, role="smtp_in")

    assert [c.node.id for c in stack.node.children] == []


def test_given_a_plain_str_secret_when_refused_then_the_error_never_shows_it() -> None:
    stack = new_stack()
    ctx = replace(platform_context(), tls=Tls(source=TlsSource.PROVIDED, certificate=Secret(ref="${var.tls_cert}"),
                                              private_key="s3cr3t-key-material"))  # type: ignore[arg-type]

    with pytest.raises(ConfigError) as caught:
        layer(stack, platform=ctx)

    assert [p.path for p in caught.value.problems] == ["props.platform.tls.private_key"]
    assert "s3cr3t" not in str(caught.value)


def test_given_secrets_as_terraform_references_when_the_layer_is_built_then_they_are_accepted() -> None:
    stack = new_stack()
    ctx = replace(platform_context(), tls=Tls(source=TlsSource.PROVIDED, certificate=Secret(ref="${var.tls_cert}"),
                                              private_key=Secret(ref="${var.tls_key}")))

    built = layer(stack, platform=ctx)

    assert built.context.platform.tls.private_key == Secret(ref="${var.tls_key}")
