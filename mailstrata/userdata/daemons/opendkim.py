"""OpenDKIM: signs the mail leaving the platform with the platform's one key, for every served domain.

Choices, each with its reason:
- One DKIM key for every mail domain (the seed: one per domain, and in fact one per server), as large
  providers do: the signature says d=<the sender's domain>, s=<selector>, and each domain's
  `<selector>._domainkey.<domain>` is a CNAME to the one TXT record the platform publishes in its own
  zone. A key per domain costs 2.2 KB of user-data per domain, which no compression removes: 30 domains
  went over Nova's 64 KB limit. With one key the user-data grows by a table line per domain. The KeyTable
  names the key once with the domain `%` (OpenDKIM's "the sender's domain"); the SigningTable, rendered by
  a loop over the served domains, decides which senders are signed.
- `Mode s` (the seed: `sv`): OpenDKIM runs where mail leaves the platform, from our own users;
  verification belongs to SMTP-in, where SpamAssassin checks DKIM on inbound mail. It signs mail from the
  internal hosts (InternalHosts) and everything the submission listener passes (MacroList
  daemon_name|<originating daemon name>).

Agreements with Postfix, named here so that the Postfix side reads them instead of repeating them:
- `milter_socket(os)`: where OpenDKIM listens (libmilter's `inet:PORT@HOST`); Postfix names it in
  `smtpd_milters` and `non_smtpd_milters`.
- `trusted_hosts(internal_hosts)`: whose mail is ours to sign: the hosts Postfix lets relay without AUTH
  (`mynetworks`), plus IPv6 loopback.
- `originating_daemon_name`: the submission listener's `milter_macro_daemon_name` in master.cf; the role
  passes the one value to both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailstrata.errors import Problems
from mailstrata.userdata.context import DkimKey, LayerContext
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

KEY_NAME = "platform"  # the KeyTable's name for the one key
LOOPBACK_V6 = "::1"  # this host itself over IPv6 (the internal networks hold IPv4 loopback)


@dataclass(frozen=True, kw_only=True)
class OpenDkim:
    """opendkim.conf: where it listens, who it runs as, and the tables it reads."""

    socket: str
    user: str
    pid_file: str
    key_table: str
    signing_table: str
    trusted_hosts: str  # the file of InternalHosts and ExternalIgnoreList
    originating_daemon_name: str


@dataclass(frozen=True, kw_only=True)
class DkimTables:
    """KeyTable and SigningTable: the one key, named once; every served domain signs with it."""

    key_name: str
    selector: str
    key_file: str
    domains: tuple[str, ...]  # SigningTable: the From domains signed, each as d=itself


@dataclass(frozen=True, kw_only=True)
class TrustedHosts:
    hosts: tuple[str, ...]


def milter_socket(os: OsProfile) -> str:
    """OpenDKIM's socket in libmilter's syntax (`inet:PORT@HOST` or `local:/path`), as Postfix must name it."""
    return str(os.values.opendkim_socket)


def trusted_hosts(internal_hosts: Sequence[str]) -> tuple[str, ...]:
    """InternalHosts (whose mail is signed) for the given internal networks, Postfix's `mynetworks`."""
    return (*internal_hosts, LOOPBACK_V6)


def settings(os: OsProfile, *, originating_daemon_name: str) -> OpenDkim:
    opendkim_dir = str(os.paths.opendkim_dir)
    return OpenDkim(
        socket=milter_socket(os),
        user=str(os.users.opendkim),
        pid_file=str(os.paths.opendkim_pid),
        key_table=f"{opendkim_dir}/KeyTable",
        signing_table=f"{opendkim_dir}/SigningTable",
        trusted_hosts=f"{opendkim_dir}/TrustedHosts",
        originating_daemon_name=originating_daemon_name,
    )


def dkim_tables(ctx: LayerContext, os: OsProfile) -> DkimTables:
    """The platform key, signing mail from every served domain (d= the sender's domain)."""
    key = _dkim_key(ctx)
    return DkimTables(
        key_name=KEY_NAME,
        selector=key.selector,
        key_file=f"{os.paths.opendkim_keys_dir}/{key.selector}.private",
        domains=ctx.platform.domains,
    )


def _dkim_key(ctx: LayerContext) -> DkimKey:
    if ctx.platform.dkim is None:
        problems = Problems()
        problems.add("dkim", "smtp_out signs every served domain's mail with the platform's DKIM key, got none; "
                             "give the context a DkimKey")
        problems.raise_if_any()
    assert ctx.platform.dkim is not None
    return ctx.platform.dkim


def _tpl(path: str) -> str:
    return f"opendkim{path}.j2"


def files(
    ctx: LayerContext, os: OsProfile, *, internal_hosts: Sequence[str], originating_daemon_name: str
) -> list[FileSpec]:
    """opendkim.conf and its three tables (the private key is `key_file`'s).

    `internal_hosts`: the networks whose mail is signed (the role's `mynetworks`);
    `originating_daemon_name`: the submission listener's `milter_macro_daemon_name`.
    """
    conf = settings(os, originating_daemon_name=originating_daemon_name)
    tables = dkim_tables(ctx, os)
    return [
        FileSpec(dest=str(os.paths.opendkim_conf), template=_tpl("/etc/opendkim.conf"), context={"dkim": conf}),
        FileSpec(dest=conf.key_table, template=_tpl("/etc/opendkim/KeyTable"), context={"tables": tables}),
        FileSpec(dest=conf.signing_table, template=_tpl("/etc/opendkim/SigningTable"), context={"tables": tables}),
        FileSpec(
            dest=conf.trusted_hosts,
            template=_tpl("/etc/opendkim/TrustedHosts"),
            context={"trusted": TrustedHosts(hosts=trusted_hosts(internal_hosts))},
        ),
    ]


def key_file(ctx: LayerContext, os: OsProfile) -> FileSpec:
    """The platform's private key, readable by OpenDKIM only.

    One key for every domain, the same on every server: Terraform makes it, cloud-init writes it (base64).
    """
    user = str(os.users.opendkim)
    return FileSpec(dest=dkim_tables(ctx, os).key_file, secret=_dkim_key(ctx).private_key,
                    owner=f"{user}:{user}", mode="0600")
