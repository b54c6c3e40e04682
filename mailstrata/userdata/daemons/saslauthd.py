"""Cyrus SASL for Postfix smtpd: passwords checked by saslauthd, which binds to the directory as the user.

Choices, each with its reason:
- SASL is Cyrus saslauthd with its LDAP backend (as the seed) rather than Dovecot's auth service: SMTP-out
  has no Dovecot, and `testsaslauthd` checks the rendered LDAP settings on their own.
- saslauthd only accepts people with a mailbox in a served domain (the seed: any `sAMAccountName`), so
  service accounts such as the bind account cannot relay, and finds them by the whole login (`%u`): the
  primary address, or the account name where it is unambiguous (`Filters.mail_user`). The seed's `%U`
  (the login cut at "@") made jsmith@domain02.dom log in as domain01's jsmith.
- No credential cache: a password changed or an account disabled in the directory counts at once.

OS differences: where Postfix reads its SASL application file (`paths.sasl_config_dir`: CentOS's
/etc/sasl2, Debian's /etc/postfix/sasl), and the service's environment file, whose place and variable
names are the OS's (CentOS's /etc/sysconfig/saslauthd, Debian's /etc/default/saslauthd; the template
mirrors the profile's path).
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.directory import DirectorySettings
from mailstrata.userdata.daemons.ldap import Filters, LdapConnection
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

MECHANISMS = ("PLAIN", "LOGIN")  # both need TLS (smtpd_tls_auth_only); LOGIN for old Outlook clients


@dataclass(frozen=True, kw_only=True)
class SaslSmtpd:
    """Postfix smtpd's Cyrus SASL application file (smtpd.conf): which mechanisms, checked where."""

    mech_list: tuple[str, ...]
    saslauthd_path: str


@dataclass(frozen=True, kw_only=True)
class Saslauthd:
    """saslauthd.conf: its LDAP backend."""

    ldap: LdapConnection
    filter: str  # %u is the login as typed: an address or an account name


@dataclass(frozen=True, kw_only=True)
class SaslauthdSysconfig:
    """The service's environment file: the socket directory and the LDAP settings file."""

    socket_dir: str
    config_file: str


def _tpl(path: str) -> str:
    return f"saslauthd{path}.j2"


def files(directory: DirectorySettings, os: OsProfile) -> list[FileSpec]:
    """Postfix's smtpd.conf, saslauthd.conf (LDAP) and the service's environment file."""
    p = os.paths
    return [
        FileSpec(
            dest=f"{p.sasl_config_dir}/smtpd.conf",
            template=_tpl("/etc/sasl2/smtpd.conf"),
            context={"sasl": SaslSmtpd(mech_list=MECHANISMS, saslauthd_path=f"{p.saslauthd_run_dir}/mux")},
        ),
        FileSpec(
            dest=str(p.saslauthd_conf),
            template=_tpl("/etc/saslauthd.conf"),
            context={
                "saslauthd": Saslauthd(ldap=LdapConnection.of(directory, os), filter=Filters(directory).mail_user("%u"))
            },
            mode="0600",  # holds the bind password; saslauthd runs as root
        ),
        FileSpec(
            dest=str(p.saslauthd_sysconfig),
            template=_tpl(str(p.saslauthd_sysconfig).removeprefix(os.root)),
            context={
                "sysconfig": SaslauthdSysconfig(socket_dir=str(p.saslauthd_run_dir), config_file=str(p.saslauthd_conf))
            },
        ),
    ]
