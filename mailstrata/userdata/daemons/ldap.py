"""The directory as every daemon reaches it: one connection type, one CA choice, one filter builder.

Each consumer (Postfix `ldap_table(5)`, Dovecot's `dovecot-ldap.conf.ext`, saslauthd, SOGo) writes the
same `LdapConnection` in its own syntax; the syntax lives with the daemon, the facts live here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from mailstrata.directory import DirectorySettings, LdapTls
from mailstrata.userdata.profiles import OsProfile

ALIAS_PREFIX = "smtp:"  # proxyAddresses: "SMTP:" marks the primary address, "smtp:" an alias; AD matches either


# A secret's ref that is one Terraform reference (`${var.ad_bind_password}`), not a literal value.
_ONE_REFERENCE = re.compile(r"\$\{(?P<expr>var\.[A-Za-z_][\w-]*)\}")


def quoted_secret(ref: str) -> str:
    """`ref`'s value as a double-quoted string with backslash escapes (`\\` and `\"`): the quoting Dovecot's
    ext files and OpenStep property lists (sogo.conf) share.

    Dovecot 2.2.36 and 2.3 read dovecot-ldap.conf.ext with lib-settings (`settings.c`): a value in double
    quotes is taken whole and unescaped with `str_unescape` (a backslash keeps the next character as it
    is). Unquoted, a `#` starts a comment, a `\\` at the end joins the next line, quotes at both ends are
    taken off, and 2.3 expands `$ENV:name`. A Terraform reference (`${var.x}`) is escaped by Terraform at
    apply time (`replace()`, where the value is known); any other `ref` is a literal value (check-ad,
    tests) and is escaped here.
    """
    m = _ONE_REFERENCE.fullmatch(ref)
    if m is None:
        return '"' + ref.replace("\\", "\\\\").replace('"', '\\"') + '"'
    # HCL string literals: "\\" is one backslash, "\\\\" two, "\"" a quote, "\\\"" a backslash and a quote.
    # The backslashes are doubled first, so the ones added before quotes stay single.
    expr = m.group("expr")
    return '"${replace(replace(' + expr + r', "\\", "\\\\"), "\"", "\\\"")}"'


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
    def bind_password_quoted(self) -> str:
        """The bind password as a double-quoted, backslash-escaped string (Dovecot ext files, sogo.conf).

        Postfix's ldap_table(5) and saslauthd.conf take `bind_password` as it is: both read the rest of
        the line verbatim (no quoting, no comments after the value). Neither keeps whitespace at the ends
        of the value, which is why the AdBinding variable refuses a password that starts or ends with it.
        """
        return quoted_secret(self.bind_password)

    @property
    def hosts(self) -> tuple[str, ...]:
        """Host names (or host:port) of the URLs, for daemons that want hosts rather than URLs."""
        return tuple(urlsplit(u).netloc for u in self.urls)


@dataclass(frozen=True)
class Filters:
    """Every LDAP search filter the platform sends, built from the directory's attribute map and domains.

    Identity, one rule for every consumer (Dovecot, Postfix, saslauthd, SOGo):
    - A person's canonical name is their primary address, the `mail` attribute. A mailbox, a login and a
      delivery are looked up by that full address, never by its local part: `jsmith@domain02.dom` is not
      the `jsmith` of domain01.dom.
    - Aliases are the `smtp:` values of `proxyAddresses`, as AD (Exchange) holds them: `SMTP:<primary>` and
      `smtp:<alias>`. AD matches the attribute case-insensitively, so one `smtp:` term finds both; other
      prefixes (`X500:`, `SIP:`) are no addresses and never match. An alias is accepted as a recipient and
      rewritten to the primary address (Postfix's virtual aliases); it is not a login.
    - A login is the primary address, or the account name (`sAMAccountName`) only when it identifies one
      entry: AD keeps account names unique in the domain, and the account-name term is taken only for a
      value without "@" (`(!(login=*@*))`), so no value can match one person's address and another
      person's account name. Should a login still match two entries, Dovecot ("pass_filter matched
      multiple objects, aborting") and saslauthd ("Duplicate entries found") refuse it; SOGo's bindFields
      lookup has no "@" guard and was not tried with a duplicate (sogo.py).
    """

    directory: DirectorySettings

    def _in_domains(self) -> str:
        """An entry whose mail address is in a served domain (one term, or an OR of them)."""
        mail = self.directory.attributes.mail
        terms = "".join(f"({mail}=*@{d})" for d in self.directory.domains)
        return f"(|{terms})" if len(self.directory.domains) > 1 else terms

    def _alias(self, value: str) -> str:
        """`value` among the entry's SMTP addresses in proxyAddresses (primary or alias; case-insensitive)."""
        return f"({self.directory.attributes.aliases}={ALIAS_PREFIX}{value})"

    def mailbox(self, value: str) -> str:
        """A person whose primary address is `value`: a mailbox (Postfix's virtual_mailbox_maps, and the
        recipient check before aliases are expanded)."""
        a = self.directory.attributes
        return f"(&(objectClass={a.person_class})({a.mail}={value}))"

    def person_by_mail(self, value: str) -> str:
        """A person whose primary address or one of whose aliases is `value` (the owner of an envelope
        sender: a user may send from an alias)."""
        a = self.directory.attributes
        return f"(&(objectClass={a.person_class})(|({a.mail}={value}){self._alias(value)}))"

    def group_by_mail(self, value: str) -> str:
        """A group (distribution list) whose address or one of whose aliases is `value`."""
        a = self.directory.attributes
        return f"(&(objectClass={a.group_class})(|({a.mail}={value}){self._alias(value)}))"

    def alias_owner(self, value: str) -> str:
        """A person for whom `value` is an alias, not the primary address (which needs no rewriting)."""
        a = self.directory.attributes
        return f"(&(objectClass={a.person_class}){self._alias(value)}(!({a.mail}={value})))"

    def alias(self, value: str) -> str:
        """What Postfix's virtual aliases rewrite: a group's address (to its members) or a person's alias
        (to their primary address)."""
        return f"(|{self.group_by_mail(value)}{self.alias_owner(value)})"

    def mail_user(self, login: str) -> str:
        """A person with a mailbox in a served domain whose primary address, or (unambiguous) account
        name, is `login`: for logins (Dovecot, saslauthd) and for delivery (Dovecot's userdb).

        Narrower than the seed's `sAMAccountName=%U`: service accounts (the bind account itself) and users
        without a mailbox cannot authenticate; and a local part alone identifies no one.
        """
        a = self.directory.attributes
        account = f"(&({a.login}={login})(!({a.login}=*@*)))"
        return f"(&(objectClass={a.person_class})(|({a.mail}={login}){account}){self._in_domains()})"

    def mail_users(self) -> str:
        """Every person with a mailbox in a served domain (for iterating over users)."""
        a = self.directory.attributes
        return f"(&(objectClass={a.person_class}){self._in_domains()})"
