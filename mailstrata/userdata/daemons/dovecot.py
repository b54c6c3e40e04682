"""Dovecot: IMAP, POP3 and ManageSieve behind the LB's PROXY pools, LMTP from the local MTA, maildirs on NFS.

Files (templates under `templates/dovecot/`, named by destination path):
- `dovecot.conf`: one self-contained file (the package's conf.d/ is not included): NFS-safe storage,
  LDAP passdb/userdb, the TLS floor, the login services and their listeners, LMTP on a unix socket,
  quota, shared folders (ACL), full-text search and sieve;
- `dovecot-ldap.conf.ext`: the directory in Dovecot's syntax (connection facts, CA choice and filters
  come from `daemons.ldap`);
- from Dovecot 2.3, `ffdhe2048.pem`: the DH group of the DHE suites (2.2 makes its own, see `_dh`);
- the global sieve `spam-to-junk.sieve`, which the role script compiles;
- a systemd drop-in that orders Dovecot after the mailbox share's mount (the role adds it with a share).

OS differences are data: paths, users and the Dovecot version come from the OS profile; the settings the
version changes are the TLS floor (`ssl_min_protocol` from 2.3, the `ssl_protocols` list before) and the
DH parameters (`ssl_dh` from 2.3, `ssl_dh_parameters_length` before). Names must also suit 2.2's parser:
`tests/userdata/test_centos7_settings.py` checks every one against what 2.2.36 knows.

Defect 12 (one user, one server at a time on NFS): with the layer's servers known (`LayerContext.peers`),
every mailstore is also a Dovecot proxy with `proxy_maybe`: a second passdb, a bucket map the placement agent
writes (`daemons/placement.py`, docs/placement.md), names each user's home; the home serves, any other server
proxies to it (IMAP, POP3, ManageSieve and LMTP). Without peers, Dovecot's NFS settings only reduce the races.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata import contract
from mailstrata.roles import Role
from mailstrata.userdata.context import FtsBackend, LayerContext, OverQuota
from mailstrata.userdata.daemons import placement as placement_
from mailstrata.userdata.daemons.ldap import Filters, LdapConnection
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

TLS12_CIPHERS = ":".join((*contract.ECDHE_CIPHERS, *contract.DHE_CIPHERS))  # Dovecot makes its own DH
GLOBAL_SIEVE = "spam-to-junk.sieve"  # runs before every user's own script
DH_PARAMS_FILE = "ffdhe2048.pem"  # Dovecot 2.3's DH group (RFC 7919), beside dovecot.conf
DH_BITS = 2048  # Dovecot 2.2's default is 1024 (Logjam); 2.3 loads DH_PARAMS_FILE instead
# The shared folders' namespace. Not "shared": Dovecot 2.2 reads `namespace shared|private|public {` as 1.x's
# untyped syntax and warns that it is obsolete (config/old-set-parser.c, old_namespace).
SHARED_NAMESPACE = "shared_users"
TEMPLATES = "dovecot"  # this daemon's folder under templates/
CANONICAL_FIELD = "user"  # a passdb/userdb field that replaces the user name for everything after it


@dataclass(frozen=True, kw_only=True)
class Listener:
    """One Dovecot inet_listener."""

    name: str
    port: int
    ssl: bool
    haproxy: bool  # the LB pool of this port sends the PROXY protocol


@dataclass(frozen=True, kw_only=True)
class LoginService:
    name: str  # imap-login, pop3-login, managesieve-login
    listeners: tuple[Listener, ...]


@dataclass(frozen=True, kw_only=True)
class PlacementConf:
    """Dovecot's side of per-user placement (`daemons/placement.py`, docs/placement.md)."""

    map_args: str  # the passwd-file passdb's args: the bucket key, then the map the agent writes
    login_trusted_networks: str  # the layer's servers: proxies that pass the client's address on
    lmtp_port: int  # LMTP on TCP for peers (and lmtp_proxy's own hop when the home is this server)


@dataclass(frozen=True, kw_only=True)
class Mailbox:
    name: str
    special_use: str


@dataclass(frozen=True, kw_only=True)
class DovecotConf:
    """Everything `dovecot.conf` needs; one value per setting, computed here."""

    base_dir: str
    state_dir: str
    log_path: str
    protocols: str
    vmail_uid: int
    ldap_conf: str
    ssl_cert: str
    ssl_key: str
    tls_floor_key: str  # ssl_min_protocol (2.3) or ssl_protocols (2.2)
    tls_floor_value: str
    dh_key: str  # ssl_dh (2.3) or ssl_dh_parameters_length (2.2)
    dh_value: str
    dh_file: str | None  # the PEM that ssl_dh reads (2.3); None where Dovecot makes its own (2.2)
    shared_namespace: str
    cipher_list: str
    login_services: tuple[LoginService, ...]
    haproxy_trusted_networks: str  # empty when no listener is behind a PROXY pool
    lmtp_socket: str
    postfix_user: str
    postmaster_address: str
    mailboxes: tuple[Mailbox, ...]
    mail_plugins: str
    fts: str
    fts_key: str  # fts_lucene or fts_solr
    fts_value: str
    quota_rules: tuple[str, ...]
    quota_full_tempfail: bool
    acl_shared_dict: str
    sieve_before: str
    placement: PlacementConf | None  # None: one server, or the layer's servers are not known


@dataclass(frozen=True, kw_only=True)
class DovecotLdap:
    """`dovecot-ldap.conf.ext`: one file for passdb and userdb (auth binds are made on their own connection)."""

    connection: LdapConnection
    pass_filter: str
    pass_attrs: str
    user_filter: str
    user_attrs: str
    iterate_attrs: str
    iterate_filter: str

    @property
    def uris(self) -> str:
        """Dovecot's `uris`: the URLs, space-separated, tried in order."""
        return " ".join(self.connection.urls)


# ---- helpers ----------------------------------------------------------------------------------------



def _tls_floor(os: OsProfile) -> tuple[str, str]:
    # Dovecot 2.3 replaced ssl_protocols by ssl_min_protocol; 2.2 only knows the exclusion list.
    if os.version_at_least("dovecot", "2.3"):
        return "ssl_min_protocol", contract.TLS_MIN_VERSION
    return "ssl_protocols", " ".join(f"!{p}" for p in contract.TLS_BELOW_FLOOR)


def _dh(os: OsProfile) -> tuple[str, str, str | None]:
    """The DH parameters of the DHE suites in `ssl_cipher_list`: (setting, value, file to write or None).

    Dovecot 2.3 has none built in (a DHE handshake fails without `ssl_dh`): it reads RFC 7919 ffdhe2048.
    Dovecot 2.2 cannot read a file: its ssl-params process generates the group, 1024 bits unless told, into
    state_dir/ssl-parameters.dat, and generates it anew when the file lacks the configured length (the rpm's
    %post made a 1024-bit one). Until that is done, new TLS handshakes wait: once per server, at first start
    (ssl-params/ssl-params.c and main.c of 2.2.36)."""
    if os.version_at_least("dovecot", "2.3"):
        path = f"{os.paths.dovecot_dir}/{DH_PARAMS_FILE}"
        return "ssl_dh", f"<{path}", path
    return "ssl_dh_parameters_length", str(DH_BITS), None


def _login_services(ctx: LayerContext) -> tuple[LoginService, ...]:
    def listener(name: str, port: int, ssl: bool) -> Listener:
        return Listener(name=name, port=port, ssl=ssl, haproxy=port in ctx.proxy_ports)

    def peer(service: str) -> tuple[Listener, ...]:
        # With placement, the port where the other mailstores' proxies reach a user's home: plain (they send
        # no PROXY header; the login itself is STARTTLS), no LB in front.
        if not placement_.enabled(ctx):
            return ()
        return (Listener(name=f"{service}_peer", port=placement_.PEER_PORTS[service], ssl=False, haproxy=False),)

    return (
        LoginService(name="imap-login",
                     listeners=(listener("imap", contract.IMAP, False), listener("imaps", contract.IMAPS, True),
                                *peer("imap"))),
        LoginService(name="pop3-login",
                     listeners=(listener("pop3", contract.POP3, False), listener("pop3s", contract.POP3S, True),
                                *peer("pop3"))),
        LoginService(name="managesieve-login",
                     listeners=(listener("sieve", contract.MANAGESIEVE, False), *peer("sieve"))),
    )


def _placement(ctx: LayerContext, os: OsProfile) -> PlacementConf | None:
    if not placement_.enabled(ctx):
        return None
    p = placement_.settings(ctx, os)
    return PlacementConf(
        map_args=f"username_format={p.username_format} {p.map_file}",
        login_trusted_networks=" ".join(ctx.platform.networks.of(Role.MAILSTORE)),
        lmtp_port=p.peer_ports["lmtp"],
    )


def _solr_url(url: str) -> str:
    # Dovecot appends "select?..." and "update" to the URL as given.
    return url if url.endswith("/") else url + "/"


def quota_rules(ctx: LayerContext) -> tuple[str, ...]:
    """The default rule for every mailbox, and the extra room Trash gets so that deleting still works."""
    q = ctx.platform.quota
    return (f"*:storage={q.default_storage}:messages={q.default_messages}", f"Trash:storage=+{q.trash_extra}")


def global_sieve(os: OsProfile) -> str:
    """Where the global sieve lives; the role script compiles it (`sievec`) as root."""
    return f"{os.paths.sieve_global_dir}/{GLOBAL_SIEVE}"


# ---- per-file contexts ------------------------------------------------------------------------------


def dovecot_conf(ctx: LayerContext, os: OsProfile, *, lmtp_socket: str) -> DovecotConf:
    """`lmtp_socket`: the LMTP socket, relative to Postfix's queue directory (where its lmtp client runs)."""
    services = _login_services(ctx)
    proxied = any(lst.haproxy for s in services for lst in s.listeners)
    floor_key, floor_value = _tls_floor(os)
    dh_key, dh_value, dh_file = _dh(os)
    vmail = str(os.paths.vmail_home)
    if ctx.platform.fts is FtsBackend.SOLR:
        fts_plugin, fts_key, fts_value = "fts_solr", "fts_solr", f"url={_solr_url(ctx.platform.solr_url)}"
    else:
        # "@" and "." split words too, so a search for a part of an address finds it (the seed's choice).
        # CentOS 7 has the plugin: its dovecot.spec (2.2.36-x.el7) configures --with-lucene for RHEL > 6 and
        # ships every *_plugin.so, lib21_fts_lucene_plugin.so included, in the dovecot package itself.
        fts_plugin, fts_key, fts_value = "fts_lucene", "fts_lucene", "whitespace_chars=@."
    return DovecotConf(
        base_dir=str(os.paths.dovecot_base_dir),
        state_dir=str(os.paths.dovecot_state_dir),
        log_path=str(os.paths.dovecot_log),
        protocols="imap pop3 lmtp sieve",
        vmail_uid=ctx.platform.vmail_uid,
        ldap_conf=f"{os.paths.dovecot_dir}/dovecot-ldap.conf.ext",
        ssl_cert=f"{os.paths.tls_dir}/server.crt",
        ssl_key=f"{os.paths.tls_dir}/server.key",
        tls_floor_key=floor_key,
        tls_floor_value=floor_value,
        dh_key=dh_key,
        dh_value=dh_value,
        dh_file=dh_file,
        shared_namespace=SHARED_NAMESPACE,
        cipher_list=TLS12_CIPHERS,
        login_services=services,
        haproxy_trusted_networks=" ".join(ctx.proxy_sources()) if proxied else "",
        lmtp_socket=f"{os.paths.postfix_queue_dir}/{lmtp_socket}",
        postfix_user=str(os.users.postfix),
        postmaster_address=f"postmaster@{ctx.platform.primary_domain}",
        mailboxes=(
            *(Mailbox(name=f, special_use=f"\\{f}")
              for f in (contract.DRAFTS, contract.JUNK, contract.TRASH, contract.SENT)),
            Mailbox(name="Sent Messages", special_use="\\Sent"),
        ),
        mail_plugins=f"acl quota fts {fts_plugin}",
        fts=ctx.platform.fts.value,
        fts_key=fts_key,
        fts_value=fts_value,
        quota_rules=quota_rules(ctx),
        quota_full_tempfail=ctx.platform.quota.over_quota is OverQuota.DEFER,
        acl_shared_dict=f"file:{vmail}/shared-mailboxes.db",
        sieve_before=global_sieve(os),
        placement=_placement(ctx, os),
    )


def dovecot_ldap(ctx: LayerContext, os: OsProfile) -> DovecotLdap:
    d = ctx.platform.directory
    a = d.attributes
    filters = Filters(d)
    vmail = str(os.paths.vmail_home)
    # The full login (auth_username_format = %Lu): the primary address, or the account name where it is
    # unambiguous (Filters.mail_user). Never the local part alone: jsmith@domain02.dom is not domain01's jsmith.
    login = filters.mail_user("%u")
    # The canonical name is the primary address, lower-cased: whatever was typed (address or account name)
    # or delivered to, the user and everything derived from it (home, shared folders, ACLs) are the same.
    canonical = f"%L{{ldap:{a.mail}}}"
    return DovecotLdap(
        connection=LdapConnection.of(d, os),
        pass_filter=login,
        pass_attrs=f"={CANONICAL_FIELD}={canonical}",
        user_filter=login,
        # The home is hashed from the canonical name itself, not from %u (the name as typed), so both
        # logins of one person reach one mailbox. The quota attribute holds bytes. It uses the
        # `attribute=field=template` form on purpose: that field is left out when the attribute is absent,
        # so the default rule applies, whereas `=quota_rule=*:bytes=%{ldap:...}` gives such a user
        # "*:bytes=", which fails every login.
        user_attrs=(f"={CANONICAL_FIELD}={canonical}, "
                    f"=home={vmail}/%1LM{{ldap:{a.mail}}}/%2.1LM{{ldap:{a.mail}}}/{canonical}, "
                    f"{a.quota}=quota_rule=*:bytes=%$"),
        iterate_attrs=f"{a.mail}=user",
        iterate_filter=filters.mail_users(),
    )


# ---- the daemon's files -----------------------------------------------------------------------------


def files(ctx: LayerContext, os: OsProfile, *, lmtp_socket: str) -> list[FileSpec]:
    """Dovecot's files on a mailbox server.

    `lmtp_socket`: where the local Postfix delivers over LMTP, relative to its queue directory (the
    role's contract between its two daemons). The drop-in that waits for a mount is `systemd_dropin`.
    """
    conf = dovecot_conf(ctx, os, lmtp_socket=lmtp_socket)
    dh = [FileSpec(dest=conf.dh_file, template=f"{TEMPLATES}/etc/dovecot/{DH_PARAMS_FILE}.j2")] if conf.dh_file else []
    return dh + [
        FileSpec(
            dest=f"{os.paths.dovecot_dir}/dovecot.conf",
            template=f"{TEMPLATES}/etc/dovecot/dovecot.conf.j2",
            context={"dovecot": conf},
        ),
        # The bind password is inline: Dovecot reads this file as root before dropping privileges
        # (upstream's own advice is 0600 root), so no group needs to read it.
        FileSpec(
            dest=conf.ldap_conf,
            template=f"{TEMPLATES}/etc/dovecot/dovecot-ldap.conf.ext.j2",
            context={"ldap": dovecot_ldap(ctx, os)},
            mode="0600",
        ),
        FileSpec(
            dest=conf.sieve_before,
            template=f"{TEMPLATES}/etc/dovecot/sieve/{GLOBAL_SIEVE}.j2",
        ),
    ]


def systemd_dropin(os: OsProfile, *, requires_mount: str | None, placement: placement_.Placement | None = None,
                   ) -> FileSpec:
    """A drop-in that keeps Dovecot from starting before `requires_mount` (the mailbox share) is mounted and,
    with `placement`, before the placement agent has written the first map."""
    return FileSpec(
        dest=f"{os.paths.systemd_unit_dir}/dovecot.service.d/mailstrata.conf",
        template=f"{TEMPLATES}/etc/systemd/system/dovecot.service.d/mailstrata.conf.j2",
        context={"mount_point": requires_mount,
                 "placement_map": placement.map_file if placement else None,
                 "placement_unit": f"{placement_.SERVICE}.service"},
    )
