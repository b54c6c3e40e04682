"""The directory (Active Directory, Samba 4 AD or plain LDAP) every layer authenticates against.

`DirectorySettings` is the one typed object that `AdBinding` hands to every layer's templates and that
`mailstrata check-ad` and the local twin use. It holds no cdktf objects, so it can be imported without
the jsii runtime. `DirectorySettings.build` is its one constructor from the config-level fields: the config
model, `AdBinding`, `check-ad` and the twin all call it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from mailstrata.types import Secret


class LdapTls(StrEnum):
    """How the servers protect the LDAP connection to the directory."""

    PLAIN = "plain"  # only for labs; the bind password crosses the network in clear
    STARTTLS = "starttls"  # ldap://host:389 upgraded with StartTLS
    LDAPS = "ldaps"  # ldaps://host:636


@dataclass(frozen=True, kw_only=True)
class AttributeMap:
    """Which directory attributes and classes the platform reads. Defaults match Microsoft AD."""

    login: str = "sAMAccountName"
    mail: str = "mail"
    quota: str = "info"  # holds the mailbox quota in bytes, as in the seed
    person_class: str = "person"
    group_class: str = "group"
    member: str = "member"
    display_name: str = "displayName"
    # a person's (and a group's) other addresses, AD's way: multi-valued "SMTP:<primary>", "smtp:<alias>"
    aliases: str = "proxyAddresses"


@dataclass(frozen=True, kw_only=True)
class DirectorySettings:
    """Everything a template or a preflight check needs to talk to the directory.

    `bind_password` is a `Secret`: a Terraform reference (``${var.ad_bind_password}``) at synth time, the real
    value only inside `check-ad`; it is never a literal in the synthesized JSON.
    """

    urls: tuple[str, ...]
    tls: LdapTls
    base_dn: str
    bind_dn: str
    bind_password: Secret = field(repr=False)
    domains: tuple[str, ...]
    attributes: AttributeMap = field(default_factory=AttributeMap)
    ca_cert_pem: str | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        *,
        urls: Iterable[str],
        tls: LdapTls,
        base_dn: str,
        bind_dn: str,
        bind_password: Secret,
        domains: Iterable[str],
        attributes: AttributeMap | None = None,
        ca_cert_file: str | Path | None = None,
        ca_cert_pem: str | None = None,
    ) -> DirectorySettings:
        """The settings from the fields a config's `directory` section holds, plus the served `domains` and the
        `bind_password` (a Terraform reference such as ``${var.ad_bind_password}``, or the real value in
        `check-ad` and the twin).

        The CA is `ca_cert_pem`, or the PEM file `ca_cert_file` (read here, as UTF-8), not both. Default: no
        CA (the servers' system trust store). `attributes` default: Microsoft AD's (`AttributeMap()`).
        """
        if ca_cert_file is not None and ca_cert_pem is not None:
            raise TypeError("DirectorySettings.build: give ca_cert_file or ca_cert_pem, not both")
        if ca_cert_file is not None:
            ca_cert_pem = Path(ca_cert_file).read_text(encoding="utf-8")
        return cls(
            urls=tuple(urls),
            tls=tls,
            base_dn=base_dn,
            bind_dn=bind_dn,
            bind_password=bind_password,
            domains=tuple(domains),
            attributes=attributes if attributes is not None else AttributeMap(),
            ca_cert_pem=ca_cert_pem,
        )

    @property
    def uses_tls(self) -> bool:
        return self.tls is not LdapTls.PLAIN
