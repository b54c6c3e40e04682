"""The directory (Active Directory, Samba 4 AD or plain LDAP) every layer authenticates against.

`DirectorySettings` is the one typed object that `AdBinding` hands to every layer's templates and that
`mailstrata check-ad` and the local twin use. It holds no cdktf objects, so it can be imported without
the jsii runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit


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


@dataclass(frozen=True, kw_only=True)
class DirectorySettings:
    """Everything a template or a preflight check needs to talk to the directory.

    `bind_password` is a Terraform reference (``${var.ad_bind_password}``) at synth time and a real value
    only inside the local twin or `check-ad`; it is never a literal in the synthesized JSON.
    """

    urls: tuple[str, ...]
    tls: LdapTls
    base_dn: str
    bind_dn: str
    bind_password: str = field(repr=False)
    domains: tuple[str, ...]
    attributes: AttributeMap = field(default_factory=AttributeMap)
    ca_cert_pem: str | None = field(default=None, repr=False)

    @property
    def hosts(self) -> tuple[str, ...]:
        """Host names (or host:port) of the URLs, for daemons that want hosts rather than URLs."""
        return tuple(urlsplit(u).netloc for u in self.urls)

    @property
    def uses_tls(self) -> bool:
        return self.tls is not LdapTls.PLAIN

    def mail_filter(self, value: str) -> str:
        """An LDAP filter matching `value` against the mail attribute in any served domain."""
        a = self.attributes
        return f"(&(objectClass={a.person_class})({a.mail}={value}))"

    def login_filter(self, login: str) -> str:
        """The seed's user filter: the login name whose mail is login@<any served domain>."""
        a = self.attributes
        alts = "".join(f"(&({a.login}={login})({a.mail}={login}@{d}))" for d in self.domains)
        return f"(|{alts})" if len(self.domains) > 1 else alts
