"""The directory as every daemon reaches it: one connection type, one CA choice, one filter builder.

Each consumer (Postfix `ldap_table(5)`, Dovecot's `dovecot-ldap.conf.ext`, saslauthd, SOGo) writes the
same `LdapConnection` in its own syntax; the syntax lives with the daemon, the facts live here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.userdata.profiles import OsProfile


def directory_ca_file(directory: DirectorySettings, os: OsProfile) -> str | None:
    """The CA file that verifies the directory's certificate: the directory's own CA when the config gives
    one (written by every layer at `paths.directory_ca`), else the system bundle; None with plain LDAP."""
    if not directory.uses_tls:
        return None
    return str(os.paths.directory_ca) if directory.ca_cert_pem is not None else str(os.paths.ca_bundle)


@dataclass(frozen=True, kw_only=True)
class LdapConnection:
    """How one daemon reaches the directory: URLs (tried in order), TLS and the read-only bind."""

    urls: tuple[str, ...]
    start_tls: bool  # ldap:// upgraded with StartTLS; LDAPS is in the URL scheme
    ca_file: str | None  # None: plain LDAP, nothing to verify
    base_dn: str
    bind_dn: str
    bind_password: str  # a Terraform reference; only ever written to 0600/0640 files

    @classmethod
    def of(cls, directory: DirectorySettings, os: OsProfile) -> LdapConnection:
        return cls(
            urls=directory.urls,
            start_tls=directory.tls is LdapTls.STARTTLS,
            ca_file=directory_ca_file(directory, os),
            base_dn=directory.base_dn,
            bind_dn=directory.bind_dn,
            bind_password=directory.bind_password.ref,
        )

    @property
    def uses_tls(self) -> bool:
        return self.ca_file is not None

    @property
    def hosts(self) -> tuple[str, ...]:
        """Host names (or host:port) of the URLs, for daemons that want hosts rather than URLs."""
        return tuple(urlsplit(u).netloc for u in self.urls)


@dataclass(frozen=True)
class Filters:
    """Every LDAP search filter the platform sends, built from the directory's attribute map and domains."""

    directory: DirectorySettings

    def _in_domains(self) -> str:
        """An entry whose mail address is in a served domain (one term, or an OR of them)."""
        mail = self.directory.attributes.mail
        terms = "".join(f"({mail}=*@{d})" for d in self.directory.domains)
        return f"(|{terms})" if len(self.directory.domains) > 1 else terms

    def person_by_mail(self, value: str) -> str:
        """A person whose mail attribute is `value` (Postfix's `%s`: a recipient or sender address)."""
        a = self.directory.attributes
        return f"(&(objectClass={a.person_class})({a.mail}={value}))"

    def group_by_mail(self, value: str) -> str:
        """A group (distribution list) whose mail attribute is `value`."""
        a = self.directory.attributes
        return f"(&(objectClass={a.group_class})({a.mail}={value}))"

    def person_by_login(self, login: str) -> str:
        """The seed's user filter: the login name whose mail is login@<any served domain>."""
        a = self.directory.attributes
        alts = "".join(f"(&({a.login}={login})({a.mail}={login}@{d}))" for d in self.directory.domains)
        return f"(|{alts})" if len(self.directory.domains) > 1 else alts

    def mail_user(self, login: str) -> str:
        """A person whose login is `login` and who has a mailbox in a served domain.

        Narrower than the seed's `sAMAccountName=%U`: service accounts (the bind account itself) and users
        without a mailbox cannot authenticate.
        """
        a = self.directory.attributes
        return f"(&(objectClass={a.person_class})({a.login}={login}){self._in_domains()})"

    def mail_users(self) -> str:
        """Every person with a mailbox in a served domain (for iterating over users)."""
        a = self.directory.attributes
        return f"(&(objectClass={a.person_class}){self._in_domains()})"
