"""Per-user placement on the mailstore layer (issue 12, item 4): one user, one mailstore at a time.

Dovecot forbids two servers serving one user at once on shared storage, deliveries included; the LB's
round robin (LMTP) and source-IP stickiness (IMAP) cannot hash on the user. So every mailstore is also a
Dovecot proxy (no director: it is gone in 2.4 and adds a ring to run):

- Dovecot hashes the canonical user (the primary address, lower-cased: the LDAP passdb's `user` field) into
  `BUCKETS` buckets with its `N` variable modifier (`%256Nu`, MD5-based, the same in 2.2 and 2.3), and a
  passwd-file passdb keyed `<service>-<bucket>` answers `host=<home> port=<peer port> proxy_maybe=y`.
- `host` is a server's own address: the home serves locally (proxy_maybe), any other server proxies to the
  home's *peer port* (below), where the home serves it.
- The map file is written on each mailstore by a small agent (`mailstrata-placement`, Python 3.6, standard
  library only) with rendezvous hashing over the servers that are healthy (answer on their LMTP peer port)
  and not draining (a flag file on the share): every mailstore computes the same map from the same facts,
  and losing a server moves only its buckets. After a remap the old home kicks the moved users' sessions.

The peer ports are plain (no PROXY header: the LB's ports expect one), for the mailstores only. Logins are
proxied with STARTTLS (`starttls=any-cert`: encrypted, the peer's certificate is not checked; the peers are
the layer's own servers on its own subnet). docs/placement.md has the remap, the bound and the version notes.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata import contract
from mailstrata.roles import Role
from mailstrata.userdata.context import FtsBackend, LayerContext
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

TEMPLATES = "mailstore"  # the templates live with the layer's (templates/mailstore/)
SERVICE = "mailstrata-placement"  # the agent's script and systemd unit
BUCKETS = 256  # users are placed by bucket: enough for an even spread over a handful of servers
INTERVAL_SECONDS = 5  # how often each agent re-reads the facts: the bound of a remap (docs/placement.md)
PROBE_TIMEOUT_SECONDS = 2  # a peer that does not accept a TCP connection on its LMTP port within this is down
METADATA_URL = "http://169.254.169.254/openstack/latest/meta_data.json"  # Nova's; `meta.mailstrata_drain`
METADATA_TIMEOUT_SECONDS = 2  # unreachable or slow: not draining
DRAIN_KEY = "mailstrata_drain"  # Nova server metadata key; "true" drains the server
PYTHON = "/usr/bin/python3"  # CentOS 7.7+ base (3.6) and Debian 12 (3.11)
# Where proxied sessions reach a user's home: plain listeners beside the LB's PROXY-protocol ones (a Dovecot
# proxy sends no PROXY header). Dovecot's service names (`%s`), as the map keys them. LMTP keeps its port.
# Ports CentOS 7's policy already labels pop_port_t (10993, 1109, 220), which Dovecot (dovecot_t) may bind: an
# unlabeled port is unreserved_port_t, which it may not (tests/userdata/test_placement.py asks the policy data).
PEER_PORTS = {"imap": 10993, "pop3": 1109, "sieve": 220, "lmtp": 24}
# Where sessions arrive from outside the layer (`%{real_lport}`, the listener's own port whatever a PROXY header
# or a trusted proxy says): the LB's ports, and 0 for LMTP's unix socket (the local Postfix). Only these are
# in the map; a session on a peer port is not, so the server it reached serves it (the home, per the sender's
# map): never a second hop, so no proxy loop even while two maps disagree.
FRONT_PORTS = {
    "imap": (contract.IMAP, contract.IMAPS),
    "pop3": (contract.POP3, contract.POP3S),
    "sieve": (contract.MANAGESIEVE,),
    "lmtp": (0,),
}
LOGIN_SERVICES = ("imap", "pop3", "sieve")  # proxied logins carry the client's password (pass=%w)


@dataclass(frozen=True, kw_only=True)
class Placement:
    """What Dovecot and the agent share: the map's path and shape, and the facts' locations."""

    map_file: str  # the passwd-file Dovecot reads; written by the agent
    buckets: int
    peer_ports: dict[str, int]
    front_ports: dict[str, tuple[int, ...]]
    config_file: str  # the agent's config (`NAME VALUE` lines)
    script: str
    drain_dir: str  # on the share: <name> exists while that server drains
    drain_request: str  # local: exists while this server is asked to drain (or the metadata key says so)
    peers: tuple[tuple[str, str], ...]  # (name, address), in slot order
    dovecot_config: str
    vmail_uid: int
    homes_dir: str  # the users' homes on the share: <homes_dir>/x/y/<canonical name>
    fts_lock: str  # relative to a home: the Lucene index's write lock ("" with Solr: nothing to repair)
    fts_pending: str  # local: the users whose full-text index waits for a repair (the agent's state)

    @property
    def username_format(self) -> str:
        """The map's key for a request: `<service>-<listener port>-<bucket>`, the bucket in hex (`%x`, no
        padding). `real_lport`, not `lport`: a trusted proxy's ID command replaces lport with its own."""
        return f"%s-%{{real_lport}}-%{self.buckets}Nu"

    def settings_lines(self) -> list[str]:
        """The agent's config, `NAME VALUE...` per line (the agent's parser; `#` starts a comment)."""
        lines = [
            f"buckets {self.buckets}",
            f"interval {INTERVAL_SECONDS}",
            f"probe_timeout {PROBE_TIMEOUT_SECONDS}",
            f"map_file {self.map_file}",
            f"drain_dir {self.drain_dir}",
            f"drain_request {self.drain_request}",
            f"metadata_url {METADATA_URL}",
            f"metadata_timeout {METADATA_TIMEOUT_SECONDS}",
            f"drain_key {DRAIN_KEY}",
            f"dovecot_config {self.dovecot_config}",
            f"vmail_uid {self.vmail_uid}",
            f"homes_dir {self.homes_dir}",
            f"home_depth {contract.HOME_LEVELS}",
            f"fts_lock {self.fts_lock}",
            f"fts_pending {self.fts_pending}",
        ]
        lines += [f"peer_port {s} {port}" for s, port in sorted(self.peer_ports.items())]
        lines += [f"front_ports {s} {' '.join(map(str, ports))}" for s, ports in sorted(self.front_ports.items())]
        lines += [f"login_service {s}" for s in LOGIN_SERVICES]
        lines += [f"peer {n} {a}" for n, a in self.peers]  # slot order; the map does not depend on it
        return lines


def enabled(ctx: LayerContext) -> bool:
    """Placement runs on a mailstore layer that knows its servers (`LayerContext.peers`)."""
    return ctx.role is Role.MAILSTORE and bool(ctx.peers)


def settings(ctx: LayerContext, os: OsProfile) -> Placement:
    run = f"{os.root}/run/mailstrata"  # tmpfs on both OSes; the twin moves it under its root
    return Placement(
        # Where Dovecot's auth process may read it on CentOS 7: /var/lib/* is var_lib_t, which dovecot_auth_t
        # reads; /run/* is var_run_t, which it may not (docs/placement.md). It outlives a reboot: the unit
        # rewrites it before Dovecot starts.
        map_file=f"{os.paths.state_dir}/placement/map.passwd",
        buckets=BUCKETS,
        peer_ports=dict(PEER_PORTS),
        front_ports=dict(FRONT_PORTS),
        config_file=f"{os.paths.dovecot_dir}/mailstrata-placement.conf",
        script=f"{os.root}/usr/local/sbin/{SERVICE}",
        # In the vmail tree on the share (vmail-owned: root may be squashed there); homes are hashed two
        # levels deep (x/y/user), so this name never collides with one.
        drain_dir=f"{os.paths.vmail_home}/.mailstrata/draining",
        drain_request=f"{run}/drain",
        peers=tuple((p.name, p.address) for p in ctx.peers),
        dovecot_config=f"{os.paths.dovecot_dir}/dovecot.conf",
        vmail_uid=ctx.platform.vmail_uid,
        homes_dir=str(os.paths.vmail_home),
        fts_lock=contract.LUCENE_WRITE_LOCK if ctx.platform.fts is FtsBackend.LUCENE else "",
        fts_pending=f"{os.paths.state_dir}/placement/fts-pending.json",
    )


def files(ctx: LayerContext, os: OsProfile) -> list[FileSpec]:
    """The agent, its config and its systemd unit (none without placement)."""
    if not enabled(ctx):
        return []
    p = settings(ctx, os)
    return [
        FileSpec(dest=p.script, template=f"{TEMPLATES}/usr/local/sbin/{SERVICE}.j2", mode="0755"),
        FileSpec(dest=p.config_file, template=f"{TEMPLATES}/etc/dovecot/{SERVICE}.conf.j2",
                 context={"placement": p}),
        FileSpec(dest=f"{os.paths.systemd_unit_dir}/{SERVICE}.service",
                 template=f"{TEMPLATES}/etc/systemd/system/{SERVICE}.service.j2",
                 context={"placement": p, "python": PYTHON}),
    ]
