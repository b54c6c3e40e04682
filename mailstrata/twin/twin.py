"""`Twin`: bring the whole platform up on this machine, describe it, take it down.

Stages of `up` (each with its own timeout and an error naming the daemon and its log file):

1. synthesize the stack from the config (smtp_in and mailstore forced to >= 2 servers);
2. one network namespace with only `lo` and every twin address as an alias (verified), and the synthesized
   security groups enforced in it with iptables (`firewall.py`; amphorae on their members' subnet);
3. Samba AD (the directory), then the values Terraform would supply, then dnsmasq (the DNS);
4. every server: its files rendered through the relocated debian12 profile, the setup script the
   servers run at first boot (with systemd's commands made no-ops), then its daemons in the profile's
   order;
5. one HAProxy per load balancer from cdk.tf.json, and a wait until every member is UP.

Each queueing server (smtp-in, smtp-out, mailstore) gets a spool volume, a folder outside its root
(`volumes/<server>-spool`, a slot's Cinder volume) that the twin attaches (bind-mounts) at the spool mount
point before the setup script runs, as Nova attaches the volume before cloud-init does; the script's
spool step binds the volume's folders onto Postfix's queue (and amavisd's quarantine), and the twin mounts
those fstab lines as systemd would. `replace_server`
replaces a server as the cloud does (issue 12): the server stops, its root (its local disk) is gone, and
it is created again, same name and address, from a possibly new config; only the spool volume comes back.

`up` is idempotent: a twin that is already up and healthy is left alone; a broken one is taken down and
started again. `down` stops every process, removes the NFS stand-in mounts, the namespace and its
/etc/netns folder, and leaves only the logs (and the keys the twin keeps between runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from mailstrata.config.model import PlatformConfig
from mailstrata.roles import QUEUEING_ROLES, Role
from mailstrata.twin import dns, firewall, haproxy, netns, process
from mailstrata.twin.addresses import AddressPlan
from mailstrata.twin.platform import (
    Synthesized,
    TwinServer,
    address_plan,
    servers,
    subnet_cidrs,
    synthesize,
    twin_config,
    twin_values,
)
from mailstrata.twin.render import (
    TwinDirectory,
    preinstall,
    render_server,
    twin_context,
    twin_profile,
    write_files,
)
from mailstrata.twin.services import ServiceContext, daemons, mariadb
from mailstrata.twin.terraform import Values
from mailstrata.userdata.profiles import OsProfile, load_profile

T = TypeVar("T")
DEFAULT_ROOT = Path("/var/lib/mailstrata-twin")
ROOT_ENV = "MAILSTRATA_TWIN_ROOT"
NETNS = "mailstrata-twin"
STATE = "state.json"
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# Test data in the twin's DNS (besides what the stack publishes).
SENDER_DOMAIN = "example.net"  # an Internet sender whose SPF allows the twin's Internet
SPF_FAIL_DOMAIN = "spf-fail.example"  # an Internet sender whose SPF allows nobody
# A published TXT value: quoted strings with backslash escapes ("v=DKIM1; ... p=MIIB..." "...").
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")
EXTERNAL_DOMAIN = "external.example"  # an outside recipient domain (relay tests)
LISTED_CLIENT = 66  # 127.200.0.66 is on every DNSBL of the config
SERVER_TIMEOUT = 60.0


class TwinError(RuntimeError):
    """A stage of the twin failed; the message says which and where to look."""


@dataclass(frozen=True, kw_only=True)
class ServerInfo:
    name: str
    role: str
    fqdn: str
    address: str
    root: str
    daemons: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class TwinInfo:
    """What a test needs to talk to a running twin (written to state.json)."""

    netns: str
    root: str
    logs: str
    domains: tuple[str, ...]
    vips: dict[str, str]  # role -> address
    servers: tuple[ServerInfo, ...]
    dns: str
    directory_url: str
    bind_password: str
    users: dict[str, dict[str, str | None]]  # login -> {password, mail, quota}
    groups: dict[str, dict[str, Any]]
    internet: str  # an Internet client network
    listed_client: str
    corporate_client: str
    dkim_selector: str
    dkim_public: dict[str, str]  # domain -> public key PEM
    haproxy_sockets: dict[str, str]  # role -> stats socket
    amphorae: dict[str, str] = field(default_factory=dict)  # role -> the address its HAProxy reaches members from
    # the directory as the servers were rendered with it (host, base_dn, bind_dn, ca_cert_pem): a replacement
    # is rendered with the same one
    directory: dict[str, str] = field(default_factory=dict)
    config: str | None = None  # the config file the twin was started from (None: the embedded default)
    spool: bool = True  # queueing servers keep their queue on a spool volume that outlives them
    volumes: dict[str, str] = field(default_factory=dict)  # server -> its spool volume (a folder)
    security_groups: str = ""  # the iptables rules enforcing the synthesized security groups (a file)
    pids: dict[str, int] = field(default_factory=dict)
    mounts: tuple[str, ...] = ()
    samba_pid: int | None = None
    preload_created: bool = False
    started_in_s: float = 0.0
    stages_s: dict[str, float] = field(default_factory=dict)

    def servers_of(self, role: Role | str) -> list[ServerInfo]:
        return [s for s in self.servers if s.role == str(role)]

    def vip(self, role: Role | str) -> str:
        return self.vips[str(role)]

    @classmethod
    def load(cls, path: Path) -> TwinInfo:
        raw = json.loads(path.read_text())
        raw["servers"] = tuple(ServerInfo(**{**s, "daemons": tuple(s["daemons"])}) for s in raw["servers"])
        raw["domains"] = tuple(raw["domains"])
        raw["mounts"] = tuple(raw.get("mounts", ()))
        return cls(**raw)


def default_root() -> Path:
    return Path(os.environ.get(ROOT_ENV, str(DEFAULT_ROOT)))


@contextlib.contextmanager
def _stage(name: str, timings: dict[str, float]) -> Iterator[None]:
    t0 = time.monotonic()
    try:
        yield
    except (process.DaemonError, netns.NamespaceError, TwinError, firewall.FirewallError):
        raise
    except Exception as exc:
        raise TwinError(f"twin stage {name!r} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        timings[name] = round(time.monotonic() - t0, 2)


def _shim(root: Path, hosts_dir: Path) -> Path:
    """Compile the loopback shim once per source and host folder (a few hundred ms with gcc)."""
    src = (resources.files("mailstrata.twin") / "files" / "loopback_shim.c").read_text()
    digest = hashlib.sha256((src + str(hosts_dir)).encode()).hexdigest()[:12]
    out = root / "lib" / f"loopback_shim-{digest}.so"
    if out.is_file():
        return out
    if shutil.which("gcc") is None:
        raise TwinError("gcc is not installed: the twin compiles its loopback shim (apt-get install gcc libc6-dev)")
    out.parent.mkdir(parents=True, exist_ok=True)
    c = out.with_suffix(".c")
    c.write_text(src)
    proc = subprocess.run(["gcc", "-O2", "-Wall", "-shared", "-fPIC", f'-DHOSTS_DIR="{hosts_dir}"', "-o", str(out),
                           str(c), "-ldl"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TwinError(f"compiling the loopback shim failed:\n{proc.stderr}")
    out.chmod(0o755)
    return out


class Twin:
    """The local twin rooted at `root` (default /var/lib/mailstrata-twin, or $MAILSTRATA_TWIN_ROOT)."""

    def __init__(self, root: Path | None = None, *, config: str | None = None, netns_name: str = NETNS,
                 spool: bool = True) -> None:
        self.root = (root or default_root()).resolve()
        self.config_path = config
        self.netns_name = netns_name
        self.spool = spool  # False: no spool volume; a queueing server's queue is on its local disk
        self.volumes = self.root / "volumes"  # the slots' Cinder volumes
        self._revisions: dict[str, _Revision] = {}
        self.logs = self.root / "logs"
        self.state_path = self.root / STATE
        self.secrets = self.root / "secrets"
        self.shared_root = self.root / "mailstore-shared"  # paths every mailstore sees alike (the NFS client side)

    # ---- state -------------------------------------------------------------------------------------

    def info(self) -> TwinInfo | None:
        """The running twin's description; None when it is down or only partly started."""
        if not self.state_path.is_file() or json.loads(self.state_path.read_text()).get("partial"):
            return None
        return TwinInfo.load(self.state_path)

    def _save(self, info: TwinInfo) -> None:
        self.state_path.write_text(json.dumps(asdict(info), indent=1, sort_keys=True))
        self.state_path.chmod(0o600)  # holds the test users' passwords

    def healthy(self) -> list[str]:
        """Problems of a running twin (empty when everything runs)."""
        info = self.info()
        if info is None:
            return ["the twin is not up"]
        problems = []
        if not netns.exists(info.netns):
            problems.append(f"namespace {info.netns} is missing")
        sup = process.Supervisor(info.netns, self.logs, info.pids)
        problems += [f"{name} (pid {pid}) is not running" for name, pid in info.pids.items() if not sup.alive(name)]
        if info.samba_pid is not None and not _pid_alive(info.samba_pid):
            problems.append(f"samba (pid {info.samba_pid}) is not running")
        return problems

    # ---- up ----------------------------------------------------------------------------------------

    def up(self, *, progress: Callable[[str], None] | None = None) -> TwinInfo:
        say = progress or (lambda _msg: None)
        why = netns.unavailable()
        if why:
            raise TwinError(f"the twin cannot run here: {why}")
        if self.info() is not None:
            problems = self.healthy()
            if not problems:
                say("twin already up")
                info = self.info()
                assert info is not None
                return info
            say("twin partly up (" + "; ".join(problems) + "): taking it down first")
            self.down()
        elif self.state_path.is_file() or netns.exists(self.netns_name):
            say("a previous twin was left partly started: taking it down first")
            self.down()
        t0 = time.monotonic()
        timings: dict[str, float] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        for d in ("servers", "run", "shared", "synth", "infra", "mailstore-shared", "volumes", "revisions"):
            shutil.rmtree(self.root / d, ignore_errors=True)
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True)
        self.logs.chmod(0o755)
        self._partial: dict[str, Any] = {"pids": {}, "mounts": [], "samba_pid": None, "preload_created": False}
        self._volumes: dict[str, str] = {}
        try:
            return self._up(say, timings, t0)
        except BaseException:
            self._write_partial()
            raise

    def _write_partial(self) -> None:
        """Enough state for `down` to clean up after a failed `up`."""
        p = self._partial
        self.state_path.write_text(json.dumps({"partial": True, "netns": self.netns_name, **p}))

    def _up(self, say: Callable[[str], None], timings: dict[str, float], t0: float) -> TwinInfo:
        with _stage("synthesize", timings):
            say("synthesizing the stack")
            cfg = twin_config(self.config_path)
            syn = synthesize(cfg, self.root / "synth")
            plan = address_plan(cfg)
            twin_servers = servers(syn, plan, self.root)
            amphorae = self._amphorae(syn, plan)
        hosts_dir = self.root / "run" / "hosts"
        with _stage("namespace", timings):
            say(f"network namespace {self.netns_name}")
            hosts_dir.mkdir(parents=True)
            for s in twin_servers:
                (hosts_dir / s.fqdn).write_text(s.address + "\n")
            for role, amphora in amphorae.items():
                (hosts_dir / f"amphora-{role.slug}").write_text(amphora + "\n")
            shim = _shim(self.root, hosts_dir)
            self._partial["preload_created"] = not netns.PRELOAD_TARGET.exists()
            hosts = ["127.0.0.1 localhost", f"{plan.directory} dc01.domain01.dom dc01",
                     *(f"{s.address} {s.fqdn} {s.name}" for s in twin_servers)]
            ns = netns.Namespace.create(
                self.netns_name,
                [*plan.all_addresses((s.address for s in twin_servers), amphorae.values()), plan.internet_client(1),
                 plan.internet_client(LISTED_CLIENT), plan.corporate_client(10)],
                {"resolv.conf": f"nameserver {plan.dns}\n", "hosts": "\n".join(hosts) + "\n",
                 "ld.so.preload": f"{shim}\n"},
            )
        with _stage("security groups", timings):
            say("security groups (iptables)")
            sg_rules = self._security_groups(ns.name, syn, plan, twin_servers)
        sup = process.Supervisor(ns.name, self.logs)
        self._partial["pids"] = sup.pids  # the same dict: filled as daemons start
        with _stage("directory", timings):
            say("Samba AD")
            from mailstrata.twin.samba import SambaAD

            shutil.rmtree(self.root / "samba", ignore_errors=True)
            ad = SambaAD(self.root / "samba", ip=plan.directory, netns=ns.name, tls_names=("dc01.domain01.dom",),
                         log_dir=self.logs / "samba", start_timeout=60)
            ad.start()
            self._partial["samba_pid"] = ad.pid
            directory = TwinDirectory(host="dc01.domain01.dom", base_dn=ad.base_dn, bind_dn=ad.bind_dn,
                                      ca_cert_pem=ad.ca_cert_pem)
            values = twin_values(syn, plan, twin_servers, secrets_dir=self.secrets, bind_password=ad.bind_password,
                                 nfs_server=plan.server(Role.MAILSTORE, 9))
        db_host = self._external_database_host(syn)
        with _stage("dns", timings):
            say("dnsmasq")
            self._start_dns(sup, syn, plan, values, twin_servers, db_host)
        if db_host is not None:
            with _stage("external database", timings):
                say(f"the external SOGo database ({db_host})")
                self._start_external_db(sup, syn, plan, values)
        infos = []
        for s in twin_servers:
            with _stage(f"server {s.name}", timings):
                say(f"server {s.name} ({s.role.value}, {s.address})")
                infos.append(self._server(sup, syn, plan, values, directory, s))
        lbs = self._load_balancers(syn, plan, twin_servers)
        sockets = {}
        with _stage("load balancers", timings):
            say("HAProxy per VIP")
            for role, lb in lbs.items():
                sockets[role.value] = self._start_haproxy(sup, role, lb)
            self._wait_members_up(ns.name, sockets)
        # the platform's one DKIM key signs for every domain (MailPlatformStack.dkim_key)
        platform_key = str(values.lookup(f"tls_private_key.{syn.stack.dkim_key.friendly_unique_id}.public_key_pem"))
        dkim_public = dict.fromkeys(cfg.domains, platform_key)
        info = TwinInfo(
            netns=ns.name, root=str(self.root), logs=str(self.logs), domains=cfg.domains,
            vips={r.value: plan.vip(r) for r in syn.stack.vips}, servers=tuple(infos), dns=plan.dns,
            directory_url=f"ldaps://{plan.directory}:636", bind_password=ad.bind_password,
            users={u.login: {"password": u.password, "mail": u.mail, "quota": u.quota} for u in ad.users.values()},
            groups={n: {"mail": g.mail, "members": list(g.members)} for n, g in ad.groups.items()},
            internet=plan.internet, listed_client=plan.internet_client(LISTED_CLIENT),
            corporate_client=plan.corporate_client(10), dkim_selector=cfg.mail.dkim_selector,
            dkim_public=dkim_public, haproxy_sockets=sockets, pids=dict(sup.pids),
            amphorae={r.value: a for r, a in amphorae.items()}, security_groups=str(sg_rules),
            mounts=tuple(self._partial["mounts"]), samba_pid=ad.pid,
            preload_created=bool(self._partial["preload_created"]), started_in_s=round(time.monotonic() - t0, 1),
            stages_s=timings, directory=asdict(directory), config=self.config_path, spool=self.spool,
            volumes=dict(self._volumes),
        )
        self._revisions[_config_key(cfg)] = _Revision(syn=syn, plan=plan, values=values, servers=twin_servers)
        self._save(info)
        say(f"twin up in {info.started_in_s} s")
        return info

    # ---- pieces ------------------------------------------------------------------------------------

    @staticmethod
    def _external_database_host(syn: Synthesized) -> str | None:
        layer = syn.stack.layers.get(Role.WEBMAIL)
        if layer is None or layer.context.platform.webmail is None:
            return None
        host = layer.context.platform.webmail.database.external_host
        return str(host) if host is not None else None

    def _start_external_db(self, sup: process.Supervisor, syn: Synthesized, plan: AddressPlan,
                           values: Values) -> None:
        """The database the config points SOGo at (a Galera cluster in production): one MariaDB of the twin's
        own, with SOGo's database and account made with the password the twin gave the variable."""
        webmail = syn.stack.layers[Role.WEBMAIL].context.platform.webmail
        db = webmail.database
        password = values.substitute(db.password.ref, syn.resolve)
        base = self.root / "infra" / "sogo-db"
        shutil.rmtree(base, ignore_errors=True)
        datadir = self._mariadb_datadir(base / "data")
        run = base / "run"
        _mkdir(run, "mysql")
        _mkdir(base / "tmp", "mysql")
        socket = run / "mysqld.sock"
        argv = ("mariadbd", "--no-defaults", f"--datadir={datadir}", f"--socket={socket}",
                f"--pid-file={run / 'mariadbd.pid'}", f"--log-error={self.logs / 'sogo-db.log'}", "--user=mysql",
                f"--tmpdir={base / 'tmp'}", f"--bind-address={plan.database}", "--port=3306", "--skip-name-resolve",
                "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                "--max-allowed-packet=64M", "--innodb-file-per-table=1")
        sup.start(process.Daemon(name="sogo-db", argv=argv, log=self.logs / "sogo-db.stdout",
                                 logs=(self.logs / "sogo-db.log",),
                                 ready=process.Ready(unix=(str(socket),), tcp=((plan.database, 3306),)), timeout=60))
        sql = (f"CREATE DATABASE IF NOT EXISTS {db.name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
               f"CREATE USER IF NOT EXISTS '{db.user}'@'%' IDENTIFIED BY '{password}';\n"
               f"GRANT ALL PRIVILEGES ON {db.name}.* TO '{db.user}'@'%';\nFLUSH PRIVILEGES;\n")
        proc = subprocess.run(["ip", "netns", "exec", sup.netns, "mysql", "--no-defaults", "--user=root",
                               f"--socket={socket}"], input=sql, capture_output=True, text=True)
        if proc.returncode != 0:
            raise TwinError(f"creating SOGo's database on the external MariaDB failed: {proc.stderr}")

    def _start_dns(self, sup: process.Supervisor, syn: Synthesized, plan: AddressPlan, values: Values,
                   twin_servers: tuple[TwinServer, ...], db_host: str | None) -> None:
        a: dict[str, str] = {s.fqdn: s.address for s in twin_servers}
        a["dc01.domain01.dom"] = plan.directory
        if db_host is not None:
            a[db_host] = plan.database
        mx: list[tuple[str, str, int]] = []
        txt: list[tuple[str, str | tuple[str, ...]]] = []
        cnames: list[tuple[str, str]] = []
        for rec in values.output("dns_records"):
            name = rec["name"].rstrip(".")
            value = rec["value"]
            if rec["type"] == "A":
                # Not over a server's own name: the records point smtp-out's HELO names at the one egress
                # address, while in the twin each server sends from its own.
                a.setdefault(name, value)
            elif rec["type"] == "MX":
                pref, host = value.split()
                mx.append((name, host.rstrip("."), int(pref)))
            elif rec["type"] == "TXT":
                # served as published: the same strings, split where the stack split them
                txt.append((name, tuple(_UNESCAPE.sub(r"\1", q) for q in _QUOTED.findall(value))))
            elif rec["type"] == "CNAME":
                cnames.append((name, value.rstrip(".")))
        # dnsmasq serves a CNAME only towards names it holds addresses for; the twin flattens each alias
        # (e.g. every domain's DKIM selector -> the platform's one TXT): resolvers get the same answer.
        for alias, target in cnames:
            txt += [(alias, v) for n, v in list(txt) if n == target]
            if target in a:
                a[alias] = a[target]
        internet = plan.internet_client(1)
        a[f"mail.{SENDER_DOMAIN}"] = internet
        a[SENDER_DOMAIN] = internet
        a[SPF_FAIL_DOMAIN] = internet
        a[f"mx.{EXTERNAL_DOMAIN}"] = plan.internet_client(25)
        mx += [(SENDER_DOMAIN, f"mail.{SENDER_DOMAIN}", 10), (EXTERNAL_DOMAIN, f"mx.{EXTERNAL_DOMAIN}", 10)]
        txt += [(SENDER_DOMAIN, f"v=spf1 ip4:{plan.internet} -all"), (SPF_FAIL_DOMAIN, "v=spf1 -all")]
        listed = plan.internet_client(LISTED_CLIENT)
        for zone in syn.config.mail.spam.dnsbls:
            a[dns.dnsbl_name(listed, zone)] = "127.0.0.2"
            txt.append((dns.dnsbl_name(listed, zone), "listed by the mailstrata twin's test data"))
        conf = self.root / "run" / "dnsmasq.conf"
        conf.write_text(dns.dnsmasq_conf(listen=plan.dns, records=dns.Records(a=a, mx=tuple(mx), txt=tuple(txt)),
                                         log_file=str(self.logs / "dnsmasq.log"),
                                         pid_file=str(self.root / "run" / "dnsmasq.pid")))
        sup.start(process.Daemon(name="dnsmasq", argv=("dnsmasq", "-k", "-C", str(conf)),
                                 log=self.logs / "dnsmasq.stdout", logs=(self.logs / "dnsmasq.log",),
                                 ready=process.Ready(tcp=((plan.dns, 53),)), timeout=15))

    def _server(self, sup: process.Supervisor, syn: Synthesized, plan: AddressPlan, values: Values,
                directory: TwinDirectory, s: TwinServer) -> ServerInfo:
        logs = self.logs / s.name
        logs.mkdir(parents=True, exist_ok=True)
        logs.chmod(0o1777)  # daemons write their own logs here as their own users
        profile = self._profile(s, logs)
        base = load_profile("debian12", s.role)
        ctx = twin_context(syn.stack.layers[s.role].context, plan, directory, s, self.shared_root)
        _, files = render_server(syn, values, ctx, profile, s)
        s.root.mkdir(parents=True, exist_ok=True)
        s.root.chmod(0o755)
        preinstall(profile, base, s)
        write_files(files)
        _open_dirs(s.root)
        self._prepare(sup, s, profile, ctx.nfs.mount_point if ctx.nfs else None)
        env = {"MAIL_CONFIG": str(profile.paths["postfix_dir"])} if "postfix_dir" in profile.paths else {}
        svc = ServiceContext(server=s, profile=profile, logs=logs, timeout=SERVER_TIMEOUT)
        webmail = syn.stack.layers[s.role].context.platform.webmail
        if s.role is Role.WEBMAIL and webmail is not None and webmail.database.external_host is None:
            env["MYSQL_UNIX_PORT"] = str(self._mariadb(sup, svc))
        sup.run(f"{s.name}/mailstrata-setup", ["bash", str(profile.paths.setup_script)], host=s.fqdn,
                log=logs / "setup.log", timeout=300, env=env)
        self._fstab_binds(s, profile)
        started = []
        for d in daemons(svc):
            sup.start(d)
            started.append(d.name)
        return ServerInfo(name=s.name, role=s.role.value, fqdn=s.fqdn, address=s.address, root=str(s.root),
                          daemons=tuple(started))

    def _profile(self, s: TwinServer, logs: Path) -> OsProfile:
        """The relocated profile, with every log going to the twin's one logs folder (no syslog here)."""
        from dataclasses import replace

        from mailstrata.userdata.profiles import _Attrs

        p = twin_profile(s.role, s)
        paths = dict(p.paths)
        for key, value in p.paths.items():
            if key.endswith("_log") or key == "dovecot_log":
                paths[key] = str(logs / (Path(str(value)).name if str(value) != "syslog" else "dovecot.log"))
            elif key.endswith("_log_dir"):
                paths[key] = str(logs)
        if "vmail_home" in paths:
            paths["vmail_home"] = str(self.shared_root) + str(load_profile("debian12", s.role).paths["vmail_home"])
        values = dict(p.values)
        if "syslog" in values:
            values["syslog"] = False  # logs go to files: the twin's machine has no syslog
        return replace(p, paths=_Attrs(f"debian12/{s.role}.paths (twin)", paths),
                       values=_Attrs(f"debian12/{s.role}.values (twin)", values))

    def _prepare(self, sup: process.Supervisor, s: TwinServer, p: OsProfile, mount_point: str | None) -> None:
        """What the image and its packages provide on a real server, in the server's root."""
        paths = p.paths
        for value in paths.values():
            # the image's folders (/etc, /var, /run, ...) exist before first boot; so do their twins
            if str(value).startswith(str(self.root)):
                Path(str(value)).parent.mkdir(parents=True, exist_ok=True)
        tls = Path(str(paths.tls_dir))
        tls.mkdir(parents=True, exist_ok=True)
        cached = self.secrets / "tls" / s.name
        if not (cached / "server.key").is_file():
            cached.mkdir(parents=True, exist_ok=True)
            # the same certificate the setup script would make, made once (RSA keys take seconds)
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:3072", "-nodes", "-days", "825",
                            "-subj", f"/CN={s.fqdn}", "-keyout", str(cached / "server.key"), "-out",
                            str(cached / "server.crt")], check=True, capture_output=True)
        for name in ("server.key", "server.crt"):
            shutil.copy2(cached / name, tls / name)
        (tls / "server.key").chmod(0o640)
        for key in ("clamav_db_dir",):
            if key in paths:
                db = Path(str(paths[key]))
                db.mkdir(parents=True, exist_ok=True)
                # no freshclam here: a self-made database holding the EICAR test signature
                (db / "mailstrata-eicar.ndb").write_text(f"Eicar-Test-Signature:0:*:{EICAR.encode().hex()}\n")
                user = str(p.users["clamd"]) if "clamd" in p.users else str(p.users["amavis"])
                _chown_tree(db, user)
        for key in ("clamd_amavis_run_dir",):
            if key in paths:
                _mkdir(Path(str(paths[key])), str(p.users["amavis"]))
        if "clamd_socket" in paths:
            _mkdir(Path(str(paths["clamd_socket"])).parent, str(p.users["clamd"]), 0o775)
        if "opendkim_pid" in paths:
            _mkdir(Path(str(paths["opendkim_pid"])).parent, str(p.users["opendkim"]))
        if "saslauthd_run_dir" in paths:
            _mkdir(Path(str(paths["saslauthd_run_dir"])), "root", 0o755)
        if s.role is Role.WEBMAIL:
            _mkdir(s.root / "run" / "sogo", str(p.users["sogo"]))
            _mkdir(Path("/run/sogo"), str(p.users["sogo"]))  # the sogo user's home (GNUstep writes there)
        if s.role is Role.MAILSTORE:
            _ensure_vmail()
        if mount_point is not None:
            # The NFS export: one shared folder, bind-mounted where each mailstore mounts the share.
            share = self.root / "shared" / "NFSVOL"
            share.mkdir(parents=True, exist_ok=True)
            share.chmod(0o755)
            mp = Path(mount_point)
            mp.mkdir(parents=True, exist_ok=True)
            if str(mp) not in self._partial["mounts"]:
                subprocess.run(["mount", "--bind", str(share), str(mp)], check=True, capture_output=True)
                self._partial["mounts"].append(str(mp))
        if s.role in QUEUEING_ROLES:
            self._attach_spool(s, p)
        if "postfix_dir" in paths:
            self._postfix_paths(sup, s, p)

    # ---- the spool volume ---------------------------------------------------------------------------

    def _attach_spool(self, s: TwinServer, p: OsProfile) -> None:
        """Attach the slot's spool volume at the profile's spool mount point, as Nova attaches the Cinder volume
        before cloud-init runs; the setup script's spool step (daemons/spool.py) then finds it mounted, uses it
        as it is, and binds its folders (Postfix's queue, amavisd's quarantine) where the daemons use them.

        The volume is a folder outside the server's root (`volumes/<server>-spool`) that outlives the server
        (`replace_server` keeps it). Without a spool (`spool=False`) the mount point holds a folder of the
        server's own root instead: its local disk, gone with it.
        """
        if "spool_dir" not in p.paths:
            return
        if self.spool:
            volume = self.volumes / f"{s.name}-spool"
            self._volumes[s.name] = str(volume)
        else:
            volume = s.root / "local-disk-spool"
        volume.mkdir(parents=True, exist_ok=True)
        volume.chmod(0o755)
        mp = Path(str(p.paths.spool_dir))
        mp.mkdir(parents=True, exist_ok=True)
        _bind(volume, mp)

    def _fstab_binds(self, s: TwinServer, p: OsProfile) -> None:
        """Mount the bind lines the setup script wrote to the server's fstab, as systemd does from fstab.

        The script's own `mount --bind` happened in the private mount namespace `ip netns exec` gave it, and
        went with it; the daemons (each started in a namespace of its own, copied from the twin's) see what is
        mounted here.
        """
        fstab = Path(str(p.paths["fstab"])) if "fstab" in p.paths else None
        if fstab is None or not fstab.is_file():
            return
        root = str(s.root) + "/"
        mounted = set(_twin_mounts(s.root))
        for line in fstab.read_text().splitlines():
            f = line.split()
            if len(f) >= 4 and not f[0].startswith("#") and "bind" in f[3].split(",") \
                    and f[0].startswith(root) and f[1].startswith(root) and f[1] not in mounted:
                Path(f[1]).mkdir(parents=True, exist_ok=True)
                _bind(Path(f[0]), Path(f[1]))

    def _postfix_paths(self, sup: process.Supervisor, s: TwinServer, p: OsProfile) -> None:
        """Postfix's own directories and log, where a template leaves Postfix's compiled-in defaults.

        Only paths: a Postfix instance per server needs its own queue and data directory, and logs
        through postlogd into the twin's logs folder (no syslog here).
        """
        pdir = str(p.paths.postfix_dir)
        main = Path(pdir, "main.cf").read_text()
        settings = {"maillog_file": str(self.logs / s.name / "postfix.log"), "maillog_file_prefixes": str(self.logs)}
        if not any(line.startswith("queue_directory") for line in main.splitlines()):
            settings["queue_directory"] = str(s.root / "var/spool/postfix")
        if not any(line.startswith("data_directory") for line in main.splitlines()):
            settings["data_directory"] = str(s.root / "var/lib/postfix")
        with Path(pdir, "main.cf").open("a") as fh:
            fh.write("\n# ---- mailstrata twin: paths only (this server's own queue, data and log) ----\n")
            fh.writelines(f"{k} = {v}\n" for k, v in settings.items())
        master = Path(pdir, "master.cf")
        if "postlogd" not in master.read_text():
            with master.open("a") as fh:
                fh.write("# mailstrata twin: maillog_file is written through postlogd\n"
                         "postlog   unix-dgram n  -       n       -       1       postlogd\n")
        for key in ("queue_directory", "data_directory"):
            d = Path(settings.get(key) or _postconf_value(main, key) or "")
            if str(d):
                d.mkdir(parents=True, exist_ok=True)
        data = Path(settings.get("data_directory") or _postconf_value(main, "data_directory") or "")
        shutil.chown(data, "postfix", "postfix")
        sup.run(f"{s.name}/postfix check", ["postfix", "-c", pdir, "check"], host=s.fqdn,
                log=self.logs / s.name / "setup.log", timeout=60)

    def _mariadb(self, sup: process.Supervisor, svc: ServiceContext) -> Path:
        """A MariaDB data directory made once (cached) and the server started before the setup script,
        which creates SOGo's database in it (in production the script starts the packaged service)."""
        s = svc.server
        datadir = self._mariadb_datadir(s.root / "var/lib/mysql")
        _mkdir(s.root / "var/lib/mysql-tmp", "mysql")
        run = s.root / "run/mysqld"
        _mkdir(run, "mysql")
        socket = run / "mysqld.sock"
        sup.start(mariadb(svc, datadir, socket))
        return socket

    def _mariadb_datadir(self, datadir: Path) -> Path:
        """A fresh MariaDB data directory, copied from one made once by mariadb-install-db (seconds saved)."""
        template = self.root / "cache" / "mariadb-datadir"
        if not (template / "mysql").is_dir():
            shutil.rmtree(template, ignore_errors=True)
            template.mkdir(parents=True)
            _chown_tree(template, "mysql")
            proc = subprocess.run(["mariadb-install-db", "--user=mysql", f"--datadir={template}",
                                   "--auth-root-authentication-method=socket", "--skip-test-db"],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise TwinError(f"mariadb-install-db failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        datadir.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(template, datadir, symlinks=True)
        _chown_tree(datadir, "mysql")
        return datadir

    @staticmethod
    def _amphorae(syn: Synthesized, plan: AddressPlan) -> dict[Role, str]:
        """Each VIP's amphora address: on the subnet its members name in cdk.tf.json (`mailstrata.octavia`)."""
        by_lb_name = {vip.props.name: role for role, vip in syn.stack.vips.items()}
        cidr_of = subnet_cidrs(syn.config)
        out = {}
        for name, subnets in haproxy.member_subnets(syn.doc).items():
            twin = [plan.cidr(cidr_of[s]) if s is not None else None for s in subnets]
            out[by_lb_name[name]] = plan.amphora(by_lb_name[name], twin)
        return out

    def _security_groups(self, ns: str, syn: Synthesized, plan: AddressPlan,
                         twin_servers: tuple[TwinServer, ...]) -> Path:
        """Enforce the synthesized security groups in the namespace (mailstrata/twin/firewall.py); the rules'
        file, for reading."""
        if shutil.which("iptables-restore") is None:
            raise TwinError("iptables is not installed: the twin enforces the security groups with it "
                            "(apt-get install iptables)")
        by_name = {s.name: s.address for s in twin_servers}
        rules = firewall.rule_set(syn.doc, port_address=by_name.get, cidr=plan.cidr)
        path = self.root / "run" / "security-groups.rules"
        path.write_text(rules.iptables())
        firewall.install(ns, rules)
        return path

    def _load_balancers(self, syn: Synthesized, plan: AddressPlan,
                        twin_servers: tuple[TwinServer, ...]) -> dict[Role, haproxy.LoadBalancer]:
        by_lb_name = {vip.props.name: role for role, vip in syn.stack.vips.items()}
        by_server = {s.name: s.address for s in twin_servers}
        lbs = haproxy.load_balancers(
            syn.doc, vip_of=lambda name: plan.vip(by_lb_name[name]), member_address=lambda n: by_server[n],
            cidr=plan.cidr,
        )
        return {by_lb_name[name]: lb for name, lb in lbs.items()}

    def _start_haproxy(self, sup: process.Supervisor, role: Role, lb: haproxy.LoadBalancer) -> str:
        run = self.root / "run" / "haproxy"
        run.mkdir(parents=True, exist_ok=True)
        sock = run / f"{role.slug}.sock"
        cfg = run / f"{role.slug}.cfg"
        cfg.write_text(haproxy.haproxy_cfg(lb, stats_socket=str(sock), pid_file=str(run / f"{role.slug}.pid")))
        check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise TwinError(f"haproxy -c rejects {cfg}:\n{check.stdout}{check.stderr}")
        ports = tuple((lb.vip, lst.port) for lst in lb.listeners)
        # the amphora's host name makes it connect to members from its own address (see the shim)
        sup.start(process.Daemon(name=f"haproxy-{role.slug}", argv=("haproxy", "-db", "-f", str(cfg)),
                                 log=self.logs / f"haproxy-{role.slug}.log", host=f"amphora-{role.slug}",
                                 ready=process.Ready(tcp=ports[:1], unix=(str(sock),)), timeout=15))
        return str(sock)

    def _wait_members_up(self, ns: str, sockets: dict[str, str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            down = [f"{role}: {row}" for role, sock in sockets.items() for row in members_not_up(ns, sock)]
            if not down:
                return
            if time.monotonic() > deadline:
                raise TwinError("load balancer members not UP within "
                                f"{timeout:g} s (see {self.logs}/haproxy-*.log):\n" + "\n".join(down))
            time.sleep(0.5)

    # ---- server faults -----------------------------------------------------------------------------

    def stop_server(self, name: str, *, graceful: bool = False) -> None:
        """Stop every daemon of one server (a failed server, for the fault tests).

        `graceful`: the guest's own orderly shutdown (what Nova's stop does before a delete when the
        instance has `stop_before_destroy`), as the amavisd unit's drop-in orders it (daemons/amavis.py
        `stop_dropin_file`). The content filter goes first, slowly: amavisd gets SIGQUIT
        (Net::Server's slow shutdown: every child finishes the session it is in, re-injection and reply
        included) while Postfix still runs, and the twin waits until it has exited; then `postfix stop`, then
        the rest in the reverse of the start order. A filter transaction cut between amavisd's re-injection
        and its reply leaves the message queued twice (before and after the filter): the rollout test saw
        one such duplicate per run when Postfix and amavisd were simply terminated. Without `graceful` every
        process gets SIGTERM, as when a server fails.
        """
        info = self._require()
        sup = process.Supervisor(info.netns, self.logs, info.pids)
        server = next(s for s in info.servers if s.name == name)
        # the server's processes share their daemons' UTS namespaces (its host name): children included
        uts = {_uts(info.pids[d]) for d in server.daemons if d in info.pids} - {None}
        if graceful:
            self._amavisd_slow_stop(info.netns, uts)
        for d in reversed(server.daemons):
            if graceful and d.endswith("/postfix") and sup.alive(d):
                self._postfix_stop(server, uts)
            sup.stop(d)
        process.kill_all([pid for pid in netns.Namespace(info.netns).pids() if _uts(pid) in uts])
        self._save_pids(info, sup)

    @staticmethod
    def _amavisd_slow_stop(ns: str, uts: set[int | None], timeout: float = 60.0) -> None:
        """SIGQUIT to the server's amavisd parent (not its children), then a wait until every amavisd
        process of the server has exited."""
        def mine() -> dict[int, int]:  # amavisd pid -> its parent
            out = {}
            for pid in netns.Namespace(ns).pids():
                if _uts(pid) in uts and b"amavisd" in _cmdline(pid):
                    out[pid] = _ppid(pid)
            return out

        procs = mine()
        for pid, parent in procs.items():
            if parent not in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + timeout
        while procs and time.monotonic() < deadline:
            time.sleep(0.3)
            procs = mine()

    def _postfix_stop(self, server: ServerInfo, uts: set[int | None], timeout: float = 30.0) -> None:
        """`postfix stop` on `server`, then a wait until none of its Postfix processes is left."""
        pdir = Path(server.root) / "etc/postfix"
        subprocess.run(["postfix", "-c", str(pdir), "stop"], capture_output=True, env={**os.environ,
                                                                                        "MAIL_CONFIG": str(pdir)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = [pid for pid in netns.Namespace(self._require().netns).pids()
                    if _uts(pid) in uts and _is_postfix(pid)]
            if not left:
                return
            time.sleep(0.2)

    def start_server(self, name: str) -> None:
        """Start a stopped server's daemons again, from the files already in its root."""
        info = self._require()
        sup = process.Supervisor(info.netns, self.logs, info.pids)
        server = next(s for s in info.servers if s.name == name)
        role = Role(server.role)
        ts = TwinServer(role=role, index=0, name=server.name, fqdn=server.fqdn, address=server.address,
                        root=Path(server.root))
        svc = ServiceContext(server=ts, profile=self._profile(ts, self.logs / name), logs=self.logs / name,
                             timeout=SERVER_TIMEOUT)
        for d in daemons(svc):
            sup.start(d)
        self._save_pids(info, sup)

    # ---- replacement (issue 12) --------------------------------------------------------------------

    def replace_server(self, name: str, *, config: PlatformConfig | str | None = None, graceful: bool = True,
                       progress: Callable[[str], None] | None = None) -> ServerInfo:
        """Replace one server as the cloud does: destroy it, create it again; return when it runs.

        Destroy: every process of the server stops (as `stop_server`; `graceful`: the guest's orderly
        shutdown first, as `stop_before_destroy` asks of Nova), every mount under its root is
        unmounted (the spool volume detached) and the root, its local disk, is removed. Create: the same name
        and address (destroy-then-create on the slot's Neutron port, so its load-balancer member is the same
        one), its files rendered from `config`'s synthesis (default: the config the twin runs; a
        `PlatformConfig` is used as given, a path goes through `twin_config`), the same directory, secrets and
        address plan; the spool volume attached again before its setup script runs, then its daemons.

        With `spool=False` (the `Twin`'s) no volume outlives the server: a queue it held is gone with it;
        a server whose queue was on a volume loses the volume too (as a volume deleted with its server).
        """
        say = progress or (lambda _msg: None)
        info = self._require()
        old = next((s for s in info.servers if s.name == name), None)
        if old is None:
            names = ", ".join(s.name for s in info.servers)
            raise TwinError(f"replace_server: no server {name!r}; the twin runs {names}")
        rev = self._revision(config, info)
        new = next((s for s in rev.servers if s.name == name), None)
        if new is None or new.address != old.address:
            raise TwinError(f"replace_server: {name} is not in the new config's synthesis at {old.address} "
                            f"(got {new.address if new else 'no such server'}): a rollout keeps every slot's "
                            "name and address; adding or moving servers is not a rollout")
        say(f"{name}: destroying")
        self.stop_server(name, graceful=graceful)
        self._destroy(old)
        info = self._require()
        sup = process.Supervisor(info.netns, self.logs, dict(info.pids))
        self._partial = {"pids": sup.pids, "mounts": list(info.mounts), "samba_pid": info.samba_pid,
                         "preload_created": info.preload_created}
        self._volumes = {k: v for k, v in info.volumes.items() if self.spool or k != name}
        directory = TwinDirectory(**info.directory)
        say(f"{name}: creating")
        created = self._server(sup, rev.syn, rev.plan, rev.values, directory, new)
        from dataclasses import replace

        servers = tuple(created if s.name == name else s for s in info.servers)
        self._save(replace(info, servers=servers, pids=dict(sup.pids), mounts=tuple(self._partial["mounts"]),
                           volumes=dict(self._volumes)))
        return created

    def _destroy(self, server: ServerInfo) -> None:
        """The server's local disk is gone: its mounts detached (deepest first), its root removed."""
        root = Path(server.root)
        for mp in sorted(_twin_mounts(root), key=len, reverse=True):
            proc = subprocess.run(["umount", mp], capture_output=True, text=True)
            if proc.returncode != 0:
                subprocess.run(["umount", "-l", mp], capture_output=True)
        left = _twin_mounts(root)
        if left:  # never remove a folder through a mount: that would empty the volume
            raise TwinError(f"destroying {server.name}: still mounted under its root: {', '.join(left)}")
        shutil.rmtree(root)
        if not self.spool:
            shutil.rmtree(self.volumes / f"{server.name}-spool", ignore_errors=True)

    def _revision(self, config: PlatformConfig | str | None, info: TwinInfo) -> _Revision:
        """A config's synthesis and Terraform values, made once per config while this object lives."""
        cfg = config if isinstance(config, PlatformConfig) else twin_config(config or info.config)
        key = _config_key(cfg)
        if key not in self._revisions:
            outdir = self.root / "revisions" / key / "synth"
            syn = synthesize(cfg, outdir)
            plan = address_plan(cfg)
            twin_servers = servers(syn, plan, self.root)
            values = twin_values(syn, plan, twin_servers, secrets_dir=self.secrets, bind_password=info.bind_password,
                                 nfs_server=plan.server(Role.MAILSTORE, 9))
            self._revisions[key] = _Revision(syn=syn, plan=plan, values=values, servers=twin_servers)
        return self._revisions[key]

    def flush_queues(self, role: Role | str) -> None:
        """`postqueue -f` on every running server of `role`: retry deferred mail now, as an operator would
        after a failure instead of waiting for the next queue run (minimal_backoff_time)."""
        info = self._require()
        sup = process.Supervisor(info.netns, self.logs, info.pids)
        for server in info.servers_of(role):
            name = f"{server.name}/postfix"
            if not sup.alive(name):
                continue
            pdir = str(Path(server.root) / "etc/postfix")
            sup.run(f"{server.name}/postqueue -f", ["postqueue", "-c", pdir, "-f"], host=server.fqdn,
                    log=self.logs / server.name / "ops.log", timeout=30)

    def _save_pids(self, info: TwinInfo, sup: process.Supervisor) -> None:
        from dataclasses import replace

        self._save(replace(info, pids=dict(sup.pids)))

    def _require(self) -> TwinInfo:
        info = self.info()
        if info is None:
            raise TwinError(f"the twin is not up (no {self.state_path}); run `mailstrata twin up`")
        return info

    # ---- down --------------------------------------------------------------------------------------

    def down(self, *, progress: Callable[[str], None] | None = None) -> None:
        say = progress or (lambda _msg: None)
        raw: dict[str, Any] = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}
        name = str(raw.get("netns", self.netns_name))
        pids: dict[str, int] = raw.get("pids", {})
        sup = process.Supervisor(name, self.logs, pids)
        for daemon in reversed(list(pids)):
            say(f"stopping {daemon}")
            sup.stop(daemon, timeout=10)
        samba = raw.get("samba_pid")
        if samba:
            say("stopping samba")
            sup.pids["samba"] = int(samba)
            sup.stop("samba", timeout=10)
        if netns.exists(name):
            ns = netns.Namespace(name)
            for _ in range(3):
                left = ns.pids()
                if not left:
                    break
                say(f"killing {len(left)} leftover process(es) in {name}")
                process.kill_all(left)
                time.sleep(0.3)
        for mp in reversed(raw.get("mounts", [])):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        for mp in _twin_mounts(self.root):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        if netns.exists(name):
            say(f"deleting namespace {name}")
        netns.Namespace(name).delete()
        if raw.get("preload_created") and netns.PRELOAD_TARGET.is_file() \
                and not netns.PRELOAD_TARGET.read_text().strip():
            netns.PRELOAD_TARGET.unlink()
        self.state_path.unlink(missing_ok=True)
        say("twin down")


def members_not_up(ns: str, sock: str) -> list[str]:
    """`backend/server status` of every load-balancer member that is not UP (from HAProxy's stats socket)."""
    def query() -> str:
        return haproxy.runtime(sock, "show stat")

    text = netns.in_netns(ns, query)
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        f = line.split(",")
        if f[1] in ("FRONTEND", "BACKEND"):
            continue
        if not f[17].startswith("UP"):
            out.append(f"{f[0]}/{f[1]} {f[17]}")
    return out


def _uts(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/uts").st_ino
    except OSError:
        return None


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _is_postfix(pid: int) -> bool:
    try:
        return "/postfix/" in os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _mkdir(path: Path, user: str, mode: int = 0o755) -> None:
    path.mkdir(parents=True, exist_ok=True)
    shutil.chown(path, user, user if user != "root" else "root")
    path.chmod(mode)


def _chown_tree(path: Path, user: str) -> None:
    for p in [path, *path.rglob("*")]:
        shutil.chown(p, user, user)


def _open_dirs(root: Path) -> None:
    # cloud-init creates missing parent folders 0755, so daemons' users can reach their files
    for d in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
        if d.stat().st_uid == 0:
            d.chmod(d.stat().st_mode | 0o755)


def _ensure_vmail() -> None:
    """The mail user, uid/gid 5000 on every server (the setup script would create it; done once here)."""
    if subprocess.run(["getent", "group", "vmail"], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "-g", "5000", "vmail"], check=True)
    if subprocess.run(["getent", "passwd", "vmail"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-u", "5000", "-g", "5000", "-M", "-d", "/var/vmail", "-s", "/usr/sbin/nologin",
                        "vmail"], check=True)


def _postconf_value(main: str, key: str) -> str | None:
    for line in main.splitlines():
        if line.startswith(key) and "=" in line and line.split("=", 1)[0].strip() == key:
            return line.split("=", 1)[1].strip()
    return None


def _bind(source: Path, target: Path) -> None:
    """`mount --bind source target` (as the cloud attaches a volume; the server's processes see it)."""
    proc = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise TwinError(f"mount --bind {source} {target} failed: {proc.stderr.strip()}")


def _config_key(cfg: PlatformConfig) -> str:
    return hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:16]


@dataclass
class _Revision:
    """One config's synthesis as the twin renders servers from it (kept while the `Twin` object lives)."""

    syn: Synthesized
    plan: AddressPlan
    values: Values
    servers: tuple[TwinServer, ...]


def _twin_mounts(root: Path) -> list[str]:
    out = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1]
        if target.startswith(str(root) + "/"):
            out.append(target)
    return out
