"""SELinux on CentOS 7: every port a daemon binds or connects to, and the mail store Dovecot writes, is
allowed by the CentOS 7 targeted policy under the booleans and port labels the rendered user-data sets,
and denied without them.

The judge is the policy itself, as data (`tests/data/centos7-selinux/`, README there): a port's type is
the narrowest `portcon` range holding it unless the user-data labels it; a boolean is its default unless
the user-data sets it; an access is allowed when, for each permission, an allow rule of the domain (every
rule in the domain's list applies to it, whatever attribute `sesearch` names as the source) names the
target type, `port_type` for a port type, or an attribute the type has, with its condition true. A type's
attributes are Debian's refpolicy's (`attributes.txt`; RHEL's are not in the data): where they are not
known, or the rule names an attribute Debian lacks, the rule may or may not apply, and the verdict is
"unknown" unless some permission has no rule at all ("denied").

The accesses come from the rendered files, not from a hand list: Postfix's master.cf listeners, milters,
relays and content filter; the milters' own sockets; amavisd's ports; Dovecot's listeners and mail home;
nginx's listeners, upstreams and aliased files; memcached's port; SOGo's; the NFS server's fixed ports;
the directory's LDAP URLs; the queue and the quarantine on the spool volume (issue 12), whose files are
labelled by their path on the volume under the equivalences the setup script adds. A daemon's domain is the
init transition of its executable's type.

Each judgement runs on the default platform's layers and on the queueing layers with a spool volume
(`variant`), which the setup script gives the profile's `equivalences`.
"""

from __future__ import annotations

import base64
import gzip
import os as os_module
import re
import shlex
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import pytest
import yaml

from mailstrata.roles import Role
from mailstrata.userdata import selinux
from mailstrata.userdata.context import Spool
from mailstrata.userdata.profiles import OsProfile, load_profile
from mailstrata.userdata.render import render_layer
from tests.userdata import _sample

DATA = Path(__file__).resolve().parents[1] / "data" / "centos7-selinux"
DOC = Path(__file__).resolve().parents[2] / "docs" / "selinux.md"
ROLES = list(Role)

# ---- the policy, as data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    text: str
    target: str
    tclass: str
    perms: frozenset[str]
    condition: str | None  # an expression over booleans, or None when the rule always applies
    when: bool  # the rule applies when the condition evaluates to this


_RULE = re.compile(r"^allow (\S+) (\S+):(\S+) (\{ [^}]* \}|\S+);(?: \[ (.*) \]:(True|False))?$")
_BOOL_TOKEN = re.compile(r"^[a-z][a-z0-9_]*$")
_OPS = {"&&": "and", "||": "or", "!": "not", "^": "!=", "==": "==", "!=": "!=", "(": "(", ")": ")"}
# RHEL's file_contexts.subs_dist: these paths are labelled as the path on the right
_SUBS = (("/usr/lib64", "/usr/lib"), ("/lib64", "/lib"), ("/run", "/var/run"))


class Policy:
    def __init__(self) -> None:
        self.booleans: dict[str, bool] = {}
        for line in (DATA / "booleans.txt").read_text().splitlines():
            m = re.match(r"^\s*bool (\S+) (true|false);$", line)
            if m:
                self.booleans[m.group(1)] = m.group(2) == "true"
        self.portcon: list[tuple[str, int, int, str]] = []
        for line in (DATA / "portcon.txt").read_text().splitlines():
            m = re.match(r"^\s*portcon (tcp|udp) (\d+)(?:-(\d+))? \w+:\w+:(\w+):", line)
            assert m, line
            lo = int(m.group(2))
            self.portcon.append((m.group(1), lo, int(m.group(3) or lo), m.group(4)))
        self.port_types = {t for *_, t in self.portcon}
        self.rules: dict[str, list[Rule]] = {}
        domain = ""
        for line in gzip.decompress((DATA / "allow.txt.gz").read_bytes()).decode().splitlines():
            if line.startswith("# "):
                domain = line[2:]
                self.rules[domain] = []
                continue
            m = _RULE.match(line)
            assert m, line
            perms = frozenset(m.group(4).strip("{} ").split())
            self.rules[domain].append(Rule(line, m.group(2), m.group(3), perms, m.group(5), m.group(6) != "False"))
        self.attributes: dict[str, frozenset[str] | None] = {}
        for line in (DATA / "attributes.txt").read_text().splitlines():
            name, _, attrs = line.partition(": ")
            self.attributes[name] = None if attrs == "?" else frozenset(attrs.split())
        # attributes Debian's refpolicy has; one it lacks (RHEL's own) may hold any type
        self.known_attributes = frozenset().union(*(a for a in self.attributes.values() if a))
        self.file_contexts: list[tuple[re.Pattern[str], str, str]] = []
        for line in gzip.decompress((DATA / "file_contexts.txt.gz").read_bytes()).decode().splitlines():
            parts = line.split("\t")
            regex, kind, context = (parts[0], "", parts[1]) if len(parts) == 2 else parts
            # <<none>>: setfiles leaves such paths alone (a mount's own labels)
            self.file_contexts.append((re.compile(regex), kind, context.split(":")[2] if ":" in context else context))
        self.init: dict[str, str] = {}
        for line in (DATA / "init-transitions.txt").read_text().splitlines():
            m = re.match(r"^type_transition init_t (\w+):process (\w+);$", line)
            if m:
                self.init[m.group(1)] = m.group(2)

    def port_type(self, proto: str, port: int, labels: Mapping[tuple[str, int], str]) -> str:
        """The type of a port: the user-data's label, else the narrowest policy range holding it."""
        if (proto, port) in labels:
            return labels[(proto, port)]
        ranges = [(hi - lo, t) for p, lo, hi, t in self.portcon if p == proto and lo <= port <= hi]
        return min(ranges)[1]

    def file_type(self, path: str, kind: str = "--") -> str:
        """The type file_contexts gives `path` (kind: `--` file, `-d` folder, `-l` link); the last match wins."""
        for old, new in _SUBS:
            if path == old or path.startswith(old + "/"):
                path = new + path[len(old):]
        found = [t for rx, k, t in self.file_contexts if (not k or k == kind) and rx.fullmatch(path)]
        return found[-1]

    def domain_of(self, executable: str) -> str:
        """The domain `executable` runs in: the one systemd (init_t) starts it in; for a helper its daemon
        starts (Dovecot's auth), the policy's naming convention: FOO_exec_t enters FOO_t."""
        exec_type = self.file_type(executable)
        if exec_type in self.init:
            return self.init[exec_type]
        domain = exec_type.removesuffix("_exec_t") + "_t"
        assert domain in self.rules, f"{executable} ({exec_type}): no domain known"
        return domain

    def _applies(self, rule: Rule, booleans: Mapping[str, bool]) -> bool:
        if rule.condition is None:
            return True
        words = []
        for tok in rule.condition.split():
            if tok in _OPS:
                words.append(_OPS[tok])
            else:
                assert _BOOL_TOKEN.match(tok) and tok in self.booleans, f"unknown boolean {tok} in {rule.text}"
                words.append(repr(booleans[tok]))
        return bool(eval(" ".join(words), {"__builtins__": {}})) == rule.when  # noqa: S307 (tokens checked above)

    def verdict(self, domain: str, target: str, tclass: str, perms: Iterable[str],
                booleans: Mapping[str, bool]) -> tuple[str, list[str]]:
        """("allowed", the rules that grant each permission), ("denied", []) when some permission has no rule
        that could grant it, else ("unknown", the attribute rules that might)."""
        granting: list[str] = []
        maybe: list[str] = []
        missing = []
        attrs = self.attributes.get(target)
        for perm in sorted(set(perms)):
            sure = might = None
            for rule in self.rules[domain]:
                if rule.tclass != tclass or perm not in rule.perms or not self._applies(rule, booleans):
                    continue
                if rule.target == target or (rule.target == "port_type" and target in self.port_types):
                    sure = rule.text
                    break
                if rule.target.endswith("_t") or rule.target == "port_type":
                    continue
                if attrs is not None and rule.target in attrs:
                    sure = sure or rule.text  # an attribute of the type in Debian's refpolicy (attributes.txt)
                elif attrs is None or rule.target not in self.known_attributes:
                    might = might or rule.text
            if sure:
                granting.append(sure)
            elif might:
                maybe.append(might)
            else:
                missing.append(perm)
        if missing:  # one permission no rule could grant is enough
            return "denied", []
        return ("unknown", maybe) if maybe else ("allowed", granting)


@cache
def policy() -> Policy:
    return Policy()


# ---- what the user-data sets -----------------------------------------------------------------------------


def booleans_set(settings: selinux.SelinuxSettings) -> dict[str, bool]:
    return {**policy().booleans, **{b.name: b.value for b in settings.booleans}}


def labels_set(settings: selinux.SelinuxSettings) -> dict[tuple[str, int], str]:
    return {(p.proto, p.port): p.type for p in settings.ports}


def settings_from_script(setup: str) -> selinux.SelinuxSettings:
    """Read back what the rendered setup script does (the commands, not the profile they came from)."""
    booleans = [selinux.Boolean(name=m.group(1), value=m.group(2) == "on", domain="x_t", access="", rule="",
                                reason="")
                for m in re.finditer(r"\|\| setsebool -P (\S+) (on|off)$", setup, re.M)]
    ports = [selinux.PortLabel(type=m.group(1), proto=m.group(2), port=int(m.group(3)), domain="x_t", access="",
                               rule="", reason="")
             for m in re.finditer(r"\|\| semanage port -a -t (\S+) -p (\S+) (\d+)$", setup, re.M)]
    equivalences = [selinux.Equivalence(path=m.group(2), same_as=m.group(1), domain="x_t", access="", rule="",
                                        reason="")
                    for m in re.finditer(r"\|\| semanage fcontext -a -e (\S+) (\S+)$", setup, re.M)]
    return selinux.SelinuxSettings(booleans=tuple(booleans), ports=tuple(ports), equivalences=tuple(equivalences))


def applied(os: OsProfile, files: Mapping[str, str]) -> selinux.SelinuxSettings:
    """The profile's settings the layer's setup script applies (the equivalences only with a spool volume)."""
    return os.selinux.applied(spool=os.paths.spool_script in files)


# ---- the accesses, read from the rendered files ----------------------------------------------------------


@dataclass(frozen=True)
class Access:
    domain: str
    target: str  # "tcp/25" for a port, a path for a file
    tclass: str
    perms: frozenset[str]
    why: str


SERVICES = {"smtp": 25, "submission": 587, "smtps": 465}
BIND = frozenset({"name_bind"})
CONNECT = frozenset({"name_connect"})
# what Dovecot does in a mail home (maildir files, the Lucene index, dovecot.index*): create, rename, lock
DIR_RW = frozenset({"search", "getattr", "open", "read", "write", "add_name", "remove_name", "create"})
FILE_RW = frozenset({"create", "open", "read", "write", "append", "getattr", "setattr", "rename", "unlink",
                     "lock", "link"})
FILE_READ = frozenset({"open", "read", "getattr"})
DIR_READ = frozenset({"search", "getattr", "open", "read"})


def _port(text: str, default: int | None = None) -> int:
    m = re.search(r":(\d+)$", text)
    if m:
        return int(m.group(1))
    assert default is not None, text
    return default


def _ldap_ports(text: str) -> list[int]:
    return [int(p) if p else (636 if s == "ldaps" else 389)
            for s, p in re.findall(r"\b(ldaps?)://[^\s:/\"]+(?::(\d+))?", text)]


def postfix_accesses(files: Mapping[str, str]) -> list[Access]:
    out: list[Access] = []
    master, main = files["/etc/postfix/master.cf"], files["/etc/postfix/main.cf"]
    for line in master.splitlines():
        fields = line.split()
        if len(fields) >= 8 and not line[0].isspace() and not line.startswith("#") and fields[1] == "inet":
            name = fields[0].rsplit(":", 1)[-1]
            port = int(name) if name.isdigit() else SERVICES[name]
            out.append(Access("postfix_master_t", f"tcp/{port}", "tcp_socket", BIND, f"master.cf {fields[0]}"))
    conf = dict(re.findall(r"(?m)^(\w+) = (.*)$", main))
    for key, domain in (("smtpd_milters", "postfix_smtpd_t"), ("non_smtpd_milters", "postfix_cleanup_t")):
        for port in re.findall(r"inet:[^\s,]+:(\d+)", conf.get(key, "")):
            out.append(Access(domain, f"tcp/{port}", "tcp_socket", CONNECT, f"main.cf {key}"))
    # the smtp client: the content filter, the relay host, transport entries (port 25 when none is given)
    targets = [conf[k] for k in ("content_filter", "relayhost", "smtp_fallback_relay") if conf.get(k)]
    if "/etc/postfix/transport" in files:
        targets += [ln.split()[1] for ln in files["/etc/postfix/transport"].splitlines()
                    if ln.strip() and not ln.startswith("#")]
    targets.append("smtp:[internet]")  # smtp_out delivers to the world's MX hosts on 25
    for t in targets:
        out.append(Access("postfix_smtp_t", f"tcp/{_port(t, 25)}", "tcp_socket", CONNECT, f"smtp client to {t}"))
    for path, text in files.items():
        if path.startswith("/etc/postfix/ldap-") and path.endswith(".cf"):
            # a proxy: map is opened by proxymap (master's domain); a plain ldap: map by smtpd itself
            for port in _ldap_ports(text):
                for domain in ("postfix_master_t", "postfix_smtpd_t"):
                    out.append(Access(domain, f"tcp/{port}", "tcp_socket", CONNECT, f"LDAP map {path}"))
    return out


def role_accesses(role: Role, files: Mapping[str, str], cloud_config: Mapping, os: OsProfile) -> list[Access]:
    """Every access the role's daemons need, read from the role's rendered files."""
    p = policy()
    out: list[Access] = []
    if "/etc/postfix/master.cf" in files:
        out += postfix_accesses(files)
    if "/etc/mail/clamav-milter.conf" in files:
        m = re.search(r"(?m)^MilterSocket inet:(\d+)", files["/etc/mail/clamav-milter.conf"])
        assert m
        out.append(Access(p.domain_of("/usr/sbin/clamav-milter"), f"tcp/{m.group(1)}", "tcp_socket", BIND,
                          "clamav-milter MilterSocket"))
    if "/etc/opendkim.conf" in files:
        m = re.search(r"(?m)^Socket\s+inet:(\d+)", files["/etc/opendkim.conf"])
        assert m
        out.append(Access(p.domain_of("/usr/sbin/opendkim"), f"tcp/{m.group(1)}", "tcp_socket", BIND,
                          "opendkim Socket"))
    for path, text in files.items():
        if path.startswith(os.paths.systemd_unit_dir) and path.endswith(".service"):
            m = re.search(r"(?m)^ExecStart=(.*)$", text)
            if m and "--listen" in m.group(1):
                argv = shlex.split(m.group(1))
                domain = p.domain_of(argv[0])
                port = _port(argv[argv.index("--listen") + 1])
                out.append(Access(domain, f"tcp/{port}", "tcp_socket", BIND, f"{Path(path).name} --listen"))
    if "/etc/saslauthd.conf" in files:
        for port in _ldap_ports(files["/etc/saslauthd.conf"]):
            out.append(Access(p.domain_of("/usr/sbin/saslauthd"), f"tcp/{port}", "tcp_socket", CONNECT,
                              "saslauthd ldap_servers"))
    if os.paths.get("amavisd_conf") in files:
        conf = files[os.paths.amavisd_conf]
        amavis = p.domain_of("/usr/sbin/amavisd")
        listen = re.search(r"(?m)^\$inet_socket_port\s*=\s*([^;]*);", conf)
        assert listen, "amavisd listens on a TCP port"
        for port in re.findall(r"\d+", listen.group(1)):  # a number or a list of them
            out.append(Access(amavis, f"tcp/{port}", "tcp_socket", BIND, "amavisd $inet_socket_port"))
        for key, port in re.findall(r"(?m)^\$(forward_method|notify_method)\s*= 'smtp:\[[^]]+\]:(\d+)';", conf):
            out.append(Access(amavis, f"tcp/{port}", "tcp_socket", CONNECT, f"amavisd ${key}"))
    if "/etc/dovecot/dovecot.conf" in files:
        out += dovecot_accesses(files, cloud_config, os)
    if os.paths.get("nginx_conf") in files:
        conf = files[os.paths.nginx_conf]
        httpd = p.domain_of("/usr/sbin/nginx")
        for port in sorted(set(re.findall(r"(?m)^\s*listen\s+(?:\S*:)?(\d+)\b", conf))):
            out.append(Access(httpd, f"tcp/{port}", "tcp_socket", BIND, "nginx listen"))
        for port in sorted(set(re.findall(r"(?m)^\s*proxy_pass https?://[^/:;]+:(\d+)", conf))):
            out.append(Access(httpd, f"tcp/{port}", "tcp_socket", CONNECT, "nginx proxy_pass"))
        for path in sorted(set(re.findall(r"(?m)^\s*(?:alias|root) ([^;]+);", conf))):
            if path.endswith("/"):  # a folder: nginx searches it and reads the files in it
                out.append(Access(httpd, path, "dir", DIR_READ, "nginx alias/root"))
                path += "file"
            out.append(Access(httpd, path, "file", FILE_READ, "nginx alias/root"))
            if path in files:
                # cloud-init may write it before the package makes its folder: then it has the type of
                # the top folder (/etc: etc_t) until a restorecon
                inherited = p.file_type("/" + path.split("/")[1], "-d")
                out.append(Access(httpd, f"{path}@{inherited}", "file", FILE_READ,
                                  "nginx alias, as cloud-init wrote it"))
    if os.paths.get("mariadb_conf") in files:
        for port in re.findall(r"(?m)^port = (\d+)$", files[os.paths.mariadb_conf]):
            out.append(Access(p.domain_of("/usr/libexec/mysqld"), f"tcp/{port}", "tcp_socket", BIND, "MariaDB port"))
    if "/etc/freshclam.conf" in files and re.search(r"(?m)^DatabaseMirror ", files["/etc/freshclam.conf"]):
        # freshclam (0.103) downloads over HTTPS, and HTTP where a mirror redirects to it
        for port in (443, 80):
            out.append(Access(p.domain_of("/usr/bin/freshclam"), f"tcp/{port}", "tcp_socket", CONNECT,
                              "freshclam DatabaseMirror"))
    if os.paths.get("memcached_sysconfig") in files:
        m = re.search(r'(?m)^PORT="(\d+)"', files[os.paths.memcached_sysconfig])
        assert m
        out.append(Access(p.domain_of("/usr/bin/memcached"), f"tcp/{m.group(1)}", "tcp_socket", BIND,
                          "memcached PORT"))
    if os.paths.get("sogo_conf") in files:
        m = re.search(r'(?m)^\s*WOPort = "[^":]*:(\d+)";', files[os.paths.sogo_conf])
        assert m
        out.append(Access(p.domain_of("/usr/sbin/sogod"), f"tcp/{m.group(1)}", "tcp_socket", BIND, "SOGo WOPort"))
    if os.paths.get("nfs_ports_conf") in files:
        conf = files[os.paths.nfs_ports_conf]
        for key, exe in (("MOUNTD_PORT", "/usr/sbin/rpc.mountd"), ("STATD_PORT", "/usr/sbin/rpc.statd")):
            for port in re.findall(rf"(?m)^{key}=(\d+)", conf):
                out.append(Access(p.domain_of(exe), f"tcp/{port}", "tcp_socket", BIND, f"/etc/sysconfig/nfs {key}"))
        for path, text in files.items():
            for port in re.findall(r"nlm_tcpport=(\d+)", text) if path.startswith(os.paths.modprobe_dir) else []:
                out.append(Access("kernel_t", f"tcp/{port}", "tcp_socket", BIND, "lockd nlm_tcpport"))
    if os.paths.spool_script in files:
        out += spool_accesses(files[os.paths.spool_script], os)
    assert out or role is Role.NFS_SERVER, f"{role.value}: no access found in its files"
    return out


# What a daemon writes in each folder the spool volume keeps (a profile path): its domain, and a file below.
SPOOL_WRITERS = {
    "postfix_queue_dir": ("/usr/libexec/postfix/cleanup", "incoming/<file>"),  # cleanup writes new queue files
    "amavis_quarantine_dir": ("/usr/sbin/amavisd", "<file>"),  # amavisd quarantines discarded mail
}


def spool_accesses(script: str, os: OsProfile) -> list[Access]:
    """The files daemons write in the spool volume's folders, named by their path on the volume (a relabel
    names them so), read from the setup step's mount point and binds."""
    p = policy()
    mount = re.search(r"(?m)^MOUNT=(\S+)$", script)
    binds = re.findall(r"(?m)^bind_dir (\S+) (\S+)$", script)
    assert mount and binds, "the spool step names its mount point and binds"
    out = []
    for name, dest in binds:
        key = next((k for k in SPOOL_WRITERS if os.paths.get(k) == dest), None)
        assert key, f"{dest} is kept on the spool volume: say who writes there (SPOOL_WRITERS)"
        exe, below = SPOOL_WRITERS[key]
        out.append(Access(p.domain_of(exe), f"{mount.group(1)}/{name}/{below}", "file", FILE_RW,
                          f"{key} on the spool volume"))
    return out


def dovecot_accesses(files: Mapping[str, str], cloud_config: Mapping, os: OsProfile) -> list[Access]:
    p = policy()
    conf = files["/etc/dovecot/dovecot.conf"]
    dovecot = p.domain_of("/usr/sbin/dovecot")
    out = [Access(dovecot, f"tcp/{port}", "tcp_socket", BIND, "dovecot inet_listener")
           for port in re.findall(r"(?m)^\s*port = (\d+)$", conf)]
    ldap = files["/etc/dovecot/dovecot-ldap.conf.ext"]
    out += [Access(p.domain_of("/usr/libexec/dovecot/auth"), f"tcp/{port}", "tcp_socket", CONNECT, "dovecot-ldap uris")
            for port in _ldap_ports(ldap)]
    # The mail home: mail_location is under ~, the home is below vmail_home, a link into the NFS share.
    assert re.search(r"(?m)^mail_location = maildir:~/", conf)
    homes = re.search(r"=home=(/[^%]*)/%", ldap)
    assert homes and homes.group(1) == os.paths.vmail_home
    role_script = files[os.paths.role_script]
    link = re.search(rf"(?m)^link_vmail_home (\S+) {re.escape(os.paths.vmail_home)}$", role_script)
    assert link, "the role script links vmail_home into the share"
    out.append(Access(dovecot, os.paths.vmail_home, "lnk_file", frozenset({"read"}), "the vmail_home link"))
    for mount in cloud_config.get("mounts", []):
        source, point, fstype, options = mount[:4]
        if link.group(1).startswith(point.rstrip("/") + "/"):
            m = re.search(r"(?:^|,)context=\"?\w+:\w+:(\w+)", options)
            share_type = m.group(1) if m else ("nfs_t" if fstype.startswith("nfs") else None)
            assert share_type, f"{point}: {fstype} share without a known type"
            out.append(Access(dovecot, f"{link.group(1)}/<home>", "dir", DIR_RW, "maildir folders on the share"))
            out.append(Access(dovecot, f"{link.group(1)}/<home>/<file>", "file", FILE_RW, "mail files, indexes"))
            out[-2:] = [replace(a, target=f"{a.target}@{share_type}") for a in out[-2:]]
            break
    else:
        pytest.fail(f"{link.group(1)} is on no mount of the cloud-config")
    return out


def target_type(access: Access, labels: Mapping[tuple[str, int], str],
                equivalences: Iterable[selinux.Equivalence] = ()) -> str:
    p = policy()
    if access.tclass.endswith("_socket"):
        proto, port = access.target.split("/")
        return p.port_type(proto, int(port), labels)
    if "@" in access.target:  # a path on a mount whose files all have one type
        return access.target.rsplit("@", 1)[1]
    kind = {"file": "--", "dir": "-d", "lnk_file": "-l"}[access.tclass]
    path = access.target.rstrip("/")
    for e in equivalences:  # semanage fcontext -e: labelled as the same name under same_as
        if path == e.path or path.startswith(e.path + "/"):
            path = e.same_as + path[len(e.path):]
    return p.file_type(path, kind)


def judge(accesses: Iterable[Access], settings: selinux.SelinuxSettings) -> dict[Access, tuple[str, str, list[str]]]:
    labels, booleans = labels_set(settings), booleans_set(settings)
    out = {}
    for a in accesses:
        t = target_type(a, labels, settings.equivalences)
        verdict, rules = policy().verdict(a.domain, t, a.tclass, a.perms, booleans)
        out[a] = (verdict, t, rules)
    return out


# ---- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(layer_files: Callable[[Role], dict[str, str]], layer_cloud_config: Callable[[Role], dict]):
    def get(role: Role) -> tuple[dict[str, str], dict, OsProfile, list[Access], selinux.SelinuxSettings]:
        files, doc, os = layer_files(role), layer_cloud_config(role), load_profile("centos7", role)
        return files, doc, os, role_accesses(role, files, doc, os), settings_from_script(
            files[os.paths.setup_script])

    return get


QUEUEING = (Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE)


@pytest.fixture(scope="module")
def rendered_spool(layer_cloud_config: Callable[[Role], dict]):
    """A queueing layer rendered with a spool volume (the sample context plus `Spool()`), as `rendered` gives it."""

    @cache
    def get(role: Role) -> tuple[dict[str, str], dict, OsProfile, list[Access], selinux.SelinuxSettings]:
        os = load_profile("centos7", role)
        files = {f.path: f.content for f in render_layer(replace(_sample.context(role), spool=Spool()), os=os).files}
        doc = layer_cloud_config(role)  # the mounts (the NFS share) are the stack's
        return files, doc, os, role_accesses(role, files, doc, os), settings_from_script(files[os.paths.setup_script])

    return get


VARIANTS = [(r, v) for r in ROLES for v in ("stack", "spool") if v == "stack" or r in QUEUEING]


@pytest.fixture
def variant(request: pytest.FixtureRequest, rendered, rendered_spool):
    """`rendered` or `rendered_spool`, by the test's `variant` parameter."""
    return rendered_spool if request.param == "spool" else rendered


# ---- tests -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "variant"), VARIANTS, ids=[f"{r.value}-{v}" for r, v in VARIANTS],
                         indirect=["variant"])
def test_every_access_the_daemons_need_is_allowed_under_what_the_user_data_sets(role: Role, variant) -> None:
    # GIVEN the role's rendered CentOS user-data: the accesses its files ask for, the setup script's settings
    _, _, _, accesses, settings = variant(role)
    # WHEN the policy judges each under the booleans and port labels the setup script sets
    got = judge(accesses, settings)
    # THEN every one is allowed by a rule of the domain
    refused = {f"{a.domain} {a.tclass} {a.target} ({t}, {a.why})": v for a, (v, t, _) in got.items() if v != "allowed"}
    assert refused == {}


@pytest.mark.parametrize(("role", "variant"), VARIANTS, ids=[f"{r.value}-{v}" for r, v in VARIANTS],
                         indirect=["variant"])
def test_each_label_and_boolean_is_needed_and_grants_by_the_rule_it_names(role: Role, variant) -> None:
    # GIVEN the role's settings from the profile, and the accesses its files ask for
    files, _, os, accesses, settings = variant(role)
    mine_applied = applied(os, files)
    assert [e.change for e in settings.equivalences] == [e.change for e in mine_applied.equivalences]
    for grant in mine_applied.grants:
        # WHEN that one change is undone: a label left out, a boolean at the other value (a boolean the
        # profile sets to the policy's default is pinned so that an image with it flipped still works)
        rest = selinux.SelinuxSettings(
            booleans=tuple(replace(b, value=not b.value) if b is grant else b for b in os.selinux.booleans),
            ports=tuple(p for p in os.selinux.ports if p is not grant),
            equivalences=tuple(e for e in mine_applied.equivalences if e is not grant),
        )
        # THEN some access of its domain is denied without it, and allowed with it by the rule it names
        mine = [a for a in accesses if a.domain == grant.domain]
        without, with_it = judge(mine, rest), judge(mine, mine_applied)
        needed = [a for a in mine if without[a][0] == "denied" and with_it[a][0] == "allowed"]
        assert needed, f"{role.value}: {grant.change} changes no verdict of {grant.domain}"
        if isinstance(grant, selinux.PortLabel):
            needed = [a for a in needed if a.target == f"{grant.proto}/{grant.port}"]
            assert needed, f"{role.value}: {grant.change} is not the port the access needs"
        assert any(grant.rule in with_it[a][2] for a in needed), (grant.rule, [with_it[a][2] for a in needed])


@pytest.mark.parametrize(("role", "variant"), VARIANTS, ids=[f"{r.value}-{v}" for r, v in VARIANTS],
                         indirect=["variant"])
def test_without_the_settings_the_policy_denies_what_they_are_for(role: Role, variant) -> None:
    # GIVEN the role's accesses; WHEN judged with the policy's defaults only (as on main before issue 10)
    files, _, os, accesses, _ = variant(role)
    bare = judge(accesses, selinux.SelinuxSettings())
    denied = sorted(f"{a.domain} {a.target}" for a, (v, _, _) in bare.items() if v != "allowed")
    # THEN exactly the accesses the profile's changes are for are refused
    expected = sorted({f"{a.domain} {a.target}" for a in accesses for g in applied(os, files).grants
                       if a.domain == g.domain and bare[a][0] != "allowed"})
    assert denied == expected
    assert bool(denied) == bool(applied(os, files))


def test_the_known_refusals_on_a_bare_policy() -> None:
    # The facts the issue names, judged directly: nginx to sogod, clamav-milter's port, Postfix's relay port,
    # Dovecot on NFS.
    p, none = policy(), booleans_set(selinux.SelinuxSettings())
    assert p.port_type("tcp", 20000, {}) == "unreserved_port_t"
    assert p.verdict("httpd_t", "unreserved_port_t", "tcp_socket", CONNECT, none)[0] == "denied"
    assert p.verdict("antivirus_t", "unreserved_port_t", "tcp_socket", BIND, none)[0] == "denied"
    assert p.verdict("postfix_master_t", "unreserved_port_t", "tcp_socket", BIND, none)[0] == "denied"
    assert p.verdict("dovecot_t", "nfs_t", "file", {"create", "write"}, none)[0] == "denied"
    assert p.verdict("httpd_t", "unreserved_port_t", "tcp_socket", CONNECT,
                     {**none, "httpd_can_network_connect": True})[0] == "allowed"


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_debian_has_no_selinux_and_its_setup_script_none(role: Role) -> None:
    assert not load_profile("debian12", role).selinux


@pytest.mark.parametrize(("role", "variant"), VARIANTS, ids=[f"{r.value}-{v}" for r, v in VARIANTS],
                         indirect=["variant"])
def test_setup_applies_selinux_before_the_role_steps_and_the_services(role: Role, variant) -> None:
    files, _, os, _, _ = variant(role)
    setup = files[os.paths.setup_script]
    if not applied(os, files):
        assert "selinuxenabled" not in setup
        return
    assert "setenforce" not in setup
    start = setup.index("if selinuxenabled; then")
    first_service = setup.index(f"{os.commands.enable_service} {os.services[0]}\n")
    assert start < setup.index(f"\n{os.paths.role_script}\n") < first_service
    # semanage is in policycoreutils-python; setsebool in policycoreutils, which every image has
    assert ("policycoreutils-python" in os.packages) == bool(os.selinux.ports or os.selinux.fcontexts
                                                             or os.selinux.equivalences)


def test_profile_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^x\.ports\[0\]\.reason: must be a non-empty string"):
        selinux.parse("x", {"ports": [{"proto": "tcp", "port": 1, "type": "a_t", "domain": "b_t", "access": "a",
                                       "rule": "r"}]})
    with pytest.raises(ValueError, match=r"^x: port set twice: tcp/1$"):
        p = {"proto": "tcp", "port": 1, "type": "a_t", "domain": "b_t", "access": "a", "rule": "r", "reason": "y"}
        selinux.merged("x", {"ports": [p]}, {"ports": [p]})
    with pytest.raises(ValueError, match=r"^x\.equivalences\[0\]: needs an absolute path and the absolute path"):
        selinux.parse("x", {"equivalences": [{"path": "/a", "same_as": "b", "domain": "b_t", "access": "a",
                                              "rule": "r", "reason": "y"}]})
    with pytest.raises(ValueError, match=r"^x: equivalence set twice: /a$"):
        e = {"path": "/a", "same_as": "/b", "domain": "b_t", "access": "a", "rule": "r", "reason": "y"}
        selinux.merged("x", {"equivalences": [e]}, {"equivalences": [e]})


def doc_table() -> str:
    return selinux.markdown_table(
        (role.value, g) for role in ROLES for g in load_profile("centos7", role).selinux.grants)


def test_docs_table_matches_the_profiles() -> None:
    assert doc_table() in DOC.read_text(), "docs/selinux.md: paste mailstrata.userdata.selinux.markdown_table's output"


def access_table(rendered) -> str:
    """Every access the tests judge, with the type and the rule that allows it (docs/selinux.md)."""
    lines = ["| role | domain | access | target type | allowed by |", "| --- | --- | --- | --- | --- |"]
    for role in ROLES:
        _, _, _, accesses, settings = rendered(role)
        seen = set()
        for a, (_, t, rules) in judge(accesses, settings).items():
            what = f"{a.tclass} {a.target.split('@')[0]} ({a.why})"
            if (a.domain, a.target, a.tclass) in seen:
                continue
            seen.add((a.domain, a.target, a.tclass))
            rule = rules[0] if rules else "-"
            lines.append(f"| {role.value} | `{a.domain}` | {what} | `{t}` | `{rule}` |".replace("||", "\\|\\|"))
    return "\n".join(lines) + "\n"


def test_docs_access_table_matches_the_rendered_files(rendered) -> None:
    assert access_table(rendered) in DOC.read_text(), "docs/selinux.md: paste access_table's output"


def _render_for_docs() -> Callable[[Role], tuple]:
    """The same inputs as the `rendered` fixture, without pytest (for `python -m` below)."""

    @cache
    def get(role: Role) -> tuple:
        doc = yaml.safe_load(_sample.cloud_config_text(role))
        files = {f["path"]: base64.b64decode(f["content"]).decode(errors="replace") if f.get("encoding") == "b64"
                 else f.get("content", "") for f in doc["write_files"]}
        os = load_profile("centos7", role)
        return files, doc, os, role_accesses(role, files, doc, os), settings_from_script(files[os.paths.setup_script])

    return get


if __name__ == "__main__":
    # Regenerates docs/selinux.md's two tables: python -m tests.userdata.test_selinux
    print(doc_table())  # noqa: T201
    print(access_table(_render_for_docs()))  # noqa: T201


# ---- the setup script's SELinux block, run ---------------------------------------------------------------
# semanage and setsebool do not run on Debian: stand-ins keep the policy's local state in a folder, refuse
# as the real ones do (`semanage port -m` of a port not yet labelled, `-a` of one already labelled) and
# log each call, so the block's own logic (check first, fail loudly) runs in bash as rendered.
_STUBS = {
    "selinuxenabled": 'exit "${SELINUX_DISABLED:-0}"',
    "getsebool": 'echo "$1 --> $(cat "$STATE/bool.$1" 2>/dev/null || echo off)"',
    "setsebool": 'echo "setsebool $*" >> "$STATE/log"; echo "$3" > "$STATE/bool.$2"',
    "semanage": """echo "semanage $*" >> "$STATE/log"
case "$1 $2 $3" in
  "port -m -t"|"port -a -t") f="$STATE/port.$6.$7" ;;
  "fcontext -m -e"|"fcontext -a -e") f="$STATE/equal.${5//\\//_}" ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
if [ "$2" = -m ]; then [ -e "$f" ] || { echo "ValueError: $1 $5 $6 $7 is not defined" >&2; exit 1; }; fi
if [ "$2" = -a ]; then
  [ -n "${SEMANAGE_BROKEN:-}" ] && { echo "libsemanage: could not lock the policy store" >&2; exit 1; }
  [ -e "$f" ] && { echo "ValueError: $1 $5 $6 $7 already defined" >&2; exit 1; }
fi
echo "$4" > "$f"
""",
    "restorecon": 'echo "restorecon $*" >> "$STATE/log"',
}


def _run_block(setup: str, tmp_path: Path, **env: str) -> tuple[int, list[str], str]:
    block = setup[setup.index("if selinuxenabled; then"):]
    block = block[:block.index("\nfi\n") + 4]
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir(exist_ok=True)
    state.mkdir(exist_ok=True)
    for name, body in _STUBS.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + body + "\n")
        (bin_dir / name).chmod(0o755)
    script = 'set -euo pipefail\nlog() { echo "mailstrata-setup: $*"; }\n' + block + 'echo "block done"\n'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:{os_module.environ['PATH']}", "STATE": str(state), **env})
    log = (state / "log").read_text().splitlines() if (state / "log").exists() else []
    (state / "log").unlink(missing_ok=True)
    return proc.returncode, log, proc.stdout + proc.stderr


BLOCK_VARIANTS = [(r, v) for r, v in VARIANTS if load_profile("centos7", r).selinux.applied(spool=v == "spool")]


@pytest.mark.parametrize(("role", "variant"), BLOCK_VARIANTS, ids=[f"{r.value}-{v}" for r, v in BLOCK_VARIANTS],
                         indirect=["variant"])
def test_the_selinux_block_sets_each_change_once_and_a_second_run_changes_nothing(role: Role, variant,
                                                                                  tmp_path: Path) -> None:
    files, _, os, _, _ = variant(role)
    setup = files[os.paths.setup_script]
    se = applied(os, files)
    # WHEN the block runs on a fresh image, then again
    first, second = _run_block(setup, tmp_path), _run_block(setup, tmp_path)
    # THEN the first run labels each port, sets each boolean that is not already set and adds each
    # equivalence; the second sets no boolean and only re-states what it finds (semanage -m); both relabel
    assert first[0] == 0 and first[2].endswith("block done\n"), first[2]
    assert [c for c in first[1] if " -a " in c or c.startswith("setsebool")] == [
        *(f"setsebool -P {b.name} {'on' if b.value else 'off'}" for b in se.booleans),
        *(f"semanage port -a -t {p.type} -p {p.proto} {p.port}" for p in se.ports),
        *(f"semanage fcontext -a -e {e.same_as} {e.path}" for e in se.equivalences),
    ]
    relabels = [f"restorecon -R {e.path}" for e in se.equivalences]
    assert [c for c in first[1] if c.startswith("restorecon")] == relabels
    assert second[0] == 0, second[2]
    assert second[1] == [*(f"semanage port -m -t {p.type} -p {p.proto} {p.port}" for p in se.ports),
                         *(x for e in se.equivalences
                           for x in (f"semanage fcontext -m -e {e.same_as} {e.path}", f"restorecon -R {e.path}"))]


def test_the_selinux_block_stops_the_setup_when_semanage_fails(rendered, tmp_path: Path) -> None:
    files, _, os, _, _ = rendered(Role.SMTP_OUT)
    code, _, out = _run_block(files[os.paths.setup_script], tmp_path, SEMANAGE_BROKEN="1")
    assert code != 0 and "block done" not in out and "could not lock the policy store" in out


def test_the_selinux_block_sets_nothing_where_selinux_is_disabled(rendered, tmp_path: Path) -> None:
    files, _, os, _, _ = rendered(Role.WEBMAIL)
    code, log, out = _run_block(files[os.paths.setup_script], tmp_path, SELINUX_DISABLED="1")
    assert (code, log, "SELinux is disabled: nothing to label" in out) == (0, [], True)


def test_a_local_mariadb_binds_a_port_mysqld_may_bind() -> None:
    # GIVEN the webmail layer with its own MariaDB (the sample platform's database is external)
    ctx = _sample.context(Role.WEBMAIL)
    assert ctx.platform.webmail is not None
    webmail = replace(ctx.platform.webmail, database=replace(ctx.platform.webmail.database, external_host=None))
    os = load_profile("centos7", Role.WEBMAIL)
    ud = render_layer(ctx.with_platform(webmail=webmail), os=os)
    files = {f.path: f.content for f in ud.files}
    # WHEN its accesses are judged under what its setup script sets
    accesses = [a for a in role_accesses(Role.WEBMAIL, files, {}, os) if a.domain == "mysqld_t"]
    got = judge(accesses, settings_from_script(files[os.paths.setup_script]))
    # THEN MariaDB's port is among them, and allowed
    assert [(a.target, v) for a, (v, _, _) in got.items()] == [("tcp/3306", "allowed")]


# A profile path (file or folder) -> the executable of the daemon that reads what the role writes there.
READERS = {
    "postfix_dir": "/usr/libexec/postfix/master",
    "dovecot_dir": "/usr/sbin/dovecot",
    "nginx_conf": "/usr/sbin/nginx",
    "mta_sts_policy": "/usr/sbin/nginx",
    "opendkim_conf": "/usr/sbin/opendkim",
    "opendkim_dir": "/usr/sbin/opendkim",
    "clamav_milter_conf": "/usr/sbin/clamav-milter",
    "clamd_conf": "/usr/sbin/clamd",
    "clamd_amavis_conf": "/usr/sbin/clamd",
    "amavisd_conf": "/usr/sbin/amavisd",
    "saslauthd_conf": "/usr/sbin/saslauthd",
    "tls_dir": "/usr/libexec/postfix/master",
}


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_each_daemon_may_read_the_files_written_for_it_whatever_type_they_get(role: Role, rendered) -> None:
    # GIVEN each file the role writes where a confined daemon reads it (its profile path)
    files, _, os, _, settings = rendered(role)
    p, booleans = policy(), booleans_set(settings)
    checked, refused = 0, []
    for key, exe in READERS.items():
        base = os.paths.get(key)
        if base is None:
            continue
        domain = p.domain_of(exe)
        for path in [f for f in files if f == base or f.startswith(base.rstrip("/") + "/")]:
            # WHEN it has the type file_contexts gives it, or /etc's (cloud-init wrote it before the
            # package made its folder)
            for t in {p.file_type(path), p.file_type("/" + path.split("/")[1], "-d")}:
                checked += 1
                if p.verdict(domain, t, "file", FILE_READ, booleans)[0] != "allowed":
                    refused.append(f"{domain} {path} ({t})")
    # THEN the daemon may read it either way
    assert refused == []
    assert checked or role is Role.NFS_SERVER
