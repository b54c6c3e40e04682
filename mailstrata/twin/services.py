"""How the twin starts each service of the OS profile, without systemd: Debian's units, by hand.

Every entry turns a service name of `debian12/<role>.yaml` (`services:`) into the command line Debian's
systemd unit would run, in the foreground, reading the server's relocated files. The differences from the
units are binaries and paths only, each with its reason:

- Postfix: `postfix -c DIR start-fg` (the unit runs `postfix start` and forks).
- Dovecot: `dovecot -F -c FILE`; amavisd: `amavisd -c FILE foreground` (Debian's unit reads conf.d);
  clamd: `--foreground`; OpenDKIM: `-f -x FILE`; saslauthd: `-d` (foreground) with the options of
  the rendered sysconfig file; clamav-milter: its config has no foreground switch, so the twin runs it
  with `--config-file` and follows its pid file.
- mailstrata-from-check: the rendered unit's ExecStart, as the unit's user and groups (setpriv).
- memcached: Debian's unit's own wrapper (systemd-memcached-wrapper) on the rendered /etc/memcached.conf.
- SOGo: `sogod -WONoDetach YES` with every key of the rendered sogo.conf on the command line (GNUstep reads
  /etc/sogo/sogo.conf at a fixed path; the command line is its highest-priority defaults domain).
- nginx: `-c FILE -g "daemon off;"`.
- chrony and cron are not run: the host keeps time, and the twin's runs are shorter than any cron job.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mailstrata.twin.platform import TwinServer
from mailstrata.twin.process import Daemon, Ready
from mailstrata.userdata.profiles import OsProfile

NOT_RUN = frozenset({"chrony", "cron"})  # why: see the module docstring


@dataclass(frozen=True, kw_only=True)
class ServiceContext:
    server: TwinServer
    profile: OsProfile
    logs: Path  # this server's log folder
    timeout: float


def _p(ctx: ServiceContext, key: str) -> str:
    return str(ctx.profile.paths[key])


def _as_user(user: str, argv: list[str]) -> list[str]:
    # setpriv execs (runuser would fork), so the supervised pid is the daemon's
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv]


def _addr(ctx: ServiceContext, host: str) -> str:
    """Where a daemon told to listen on `host` really listens (each server's 127.0.0.1 is its own address)."""
    return ctx.server.address if host in ("127.0.0.1", "0.0.0.0", "*", "localhost", "") else host


def _conf_value(path: str, key: str, sep: str = r"\s+") -> str | None:
    for line in Path(path).read_text().splitlines():
        m = re.match(rf"^\s*{re.escape(key)}{sep}(.+?)\s*$", line)
        if m and not line.lstrip().startswith("#"):
            return m.group(1)
    return None


def _inet(spec: str, ctx: ServiceContext) -> tuple[str, int]:
    """`inet:PORT@HOST` (libmilter) -> (address, port)."""
    port, _, host = spec.removeprefix("inet:").partition("@")
    return _addr(ctx, host), int(port)


def postfix(ctx: ServiceContext) -> Daemon:
    pdir = _p(ctx, "postfix_dir")
    # Ready when every inet service on the server's own address listens: `smtp` (25), `submission` (587), or a
    # bare port number (smtp-out's internal relay); `host:port` services (amavisd's re-injection) are loopback.
    named = {"smtp": 25, "submission": 587}
    master = Path(pdir, "master.cf").read_text()
    services = re.findall(r"^(\S+)\s+inet\s", master, re.M)
    ports = [named[n] if n in named else int(n) for n in services if n in named or n.isdigit()]
    return Daemon(name=f"{ctx.server.name}/postfix", argv=("postfix", "-c", pdir, "start-fg"),
                  log=ctx.logs / "postfix.stdout", logs=(ctx.logs / "postfix.log",), host=ctx.server.fqdn,
                  ready=Ready(tcp=tuple((ctx.server.address, p) for p in ports)), timeout=ctx.timeout,
                  env={"MAIL_CONFIG": pdir})


def dovecot(ctx: ServiceContext) -> Daemon:
    conf = f"{_p(ctx, 'dovecot_dir')}/dovecot.conf"
    return Daemon(name=f"{ctx.server.name}/dovecot", argv=("dovecot", "-F", "-c", conf),
                  log=ctx.logs / "dovecot.stdout", logs=(ctx.logs / "dovecot.log",), host=ctx.server.fqdn,
                  ready=Ready(tcp=tuple((ctx.server.address, p) for p in (143, 110, 4190, 993, 995))),
                  timeout=ctx.timeout)


def clamd(ctx: ServiceContext) -> Daemon:
    key = "clamd_amavis_conf" if "clamd_amavis_conf" in ctx.profile.paths else "clamd_conf"
    conf = _p(ctx, key)
    socket = _conf_value(conf, "LocalSocket") or ""
    return Daemon(name=f"{ctx.server.name}/clamd", argv=("clamd", "--foreground=yes", f"--config-file={conf}"),
                  log=ctx.logs / "clamd.stdout", logs=(ctx.logs / "clamd.log",), host=ctx.server.fqdn,
                  ready=Ready(unix=(socket,)), timeout=ctx.timeout)


def amavis(ctx: ServiceContext) -> Daemon:
    conf = _p(ctx, "amavisd_conf")
    text = Path(conf).read_text()
    port = int(m.group(1)) if (m := re.search(r"^\$inet_socket_port\s*=\s*(\d+)", text, re.M)) else 10024
    return Daemon(name=f"{ctx.server.name}/amavisd", argv=("amavisd", "-c", conf, "foreground"),
                  log=ctx.logs / "amavisd.stdout", logs=(ctx.logs / "amavis.log",), host=ctx.server.fqdn,
                  ready=Ready(tcp=((ctx.server.address, port),)), timeout=max(ctx.timeout, 90.0))


def saslauthd(ctx: ServiceContext) -> Daemon:
    run_dir = _p(ctx, "saslauthd_run_dir")
    conf = _p(ctx, "saslauthd_conf")
    # the same options the rendered sysconfig file gives the unit (-a ldap -O <conf> -m <run dir>)
    return Daemon(name=f"{ctx.server.name}/saslauthd",
                  argv=("saslauthd", "-d", "-a", "ldap", "-O", conf, "-m", run_dir, "-n", "5"),
                  log=ctx.logs / "saslauthd.log", host=ctx.server.fqdn, ready=Ready(unix=(f"{run_dir}/mux",)),
                  timeout=ctx.timeout)


def clamav_milter(ctx: ServiceContext) -> Daemon:
    conf = _p(ctx, "clamav_milter_conf")
    addr, port = _inet(_conf_value(conf, "MilterSocket") or "inet:7357@127.0.0.1", ctx)
    # `Foreground yes` on the command line: clamav-milter accepts any config option as --option=value
    return Daemon(name=f"{ctx.server.name}/clamav-milter",
                  argv=("clamav-milter", f"--config-file={conf}", "--foreground=yes"),
                  log=ctx.logs / "clamav-milter.log", host=ctx.server.fqdn, ready=Ready(tcp=((addr, port),)),
                  timeout=ctx.timeout)


def opendkim(ctx: ServiceContext) -> Daemon:
    conf = _p(ctx, "opendkim_conf")
    addr, port = _inet(_conf_value(conf, "Socket") or "inet:8891@127.0.0.1", ctx)
    return Daemon(name=f"{ctx.server.name}/opendkim", argv=("opendkim", "-f", "-x", conf),
                  log=ctx.logs / "opendkim.log", host=ctx.server.fqdn, ready=Ready(tcp=((addr, port),)),
                  timeout=ctx.timeout)


def from_check(ctx: ServiceContext) -> Daemon:
    # the rendered unit's ExecStart, as its User with its SupplementaryGroups (Postfix's, to read the map)
    unit = Path(_p(ctx, "systemd_unit_dir"), "mailstrata-from-check.service").read_text()
    keys = dict(ln.split("=", 1) for ln in unit.splitlines() if "=" in ln and not ln.startswith("#"))
    argv = shlex.split(keys["ExecStart"])
    addr, _, port = argv[argv.index("--listen") + 1].rpartition(":")
    return Daemon(name=f"{ctx.server.name}/mailstrata-from-check",
                  argv=("setpriv", f"--reuid={keys['User']}", f"--regid={keys['Group']}",
                        f"--groups={keys['SupplementaryGroups']}", "--", *argv),
                  log=ctx.logs / "mailstrata-from-check.log", host=ctx.server.fqdn,
                  ready=Ready(tcp=((_addr(ctx, addr), int(port)),)), timeout=ctx.timeout)


def _shell_vars(path: str) -> dict[str, str]:
    out = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r'^([A-Z_]+)="?(.*?)"?\s*$', line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


MEMCACHED_WRAPPER = "/usr/share/memcached/scripts/systemd-memcached-wrapper"  # Debian's unit runs it


def memcached(ctx: ServiceContext) -> Daemon:
    """Debian's unit: its own wrapper reads the rendered /etc/memcached.conf (one option per line) and execs
    memcached with those options; the ready check listens where the file's `-l` says."""
    conf = _p(ctx, "memcached_sysconfig")
    opts: list[str] = []
    for line in Path(conf).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-"):
            opts.extend(shlex.split(line))
    host = opts[opts.index("-l") + 1] if "-l" in opts else ""
    port = int(opts[opts.index("-p") + 1]) if "-p" in opts else 11211
    return Daemon(name=f"{ctx.server.name}/memcached", argv=(MEMCACHED_WRAPPER, conf), log=ctx.logs / "memcached.log",
                  host=ctx.server.fqdn, ready=Ready(tcp=((_addr(ctx, host), port),)), timeout=ctx.timeout)


def _strip_comments(text: str) -> str:
    """An OpenStep property list without its // and /* */ comments (quoted strings kept whole)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else n
        elif text.startswith("/*", i):
            i = text.find("*/", i) + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def plist_pairs(text: str) -> list[tuple[str, str]]:
    """Top-level `key = value;` pairs of an OpenStep property list, values as written (comments dropped)."""
    text = _strip_comments(text)
    body = text[text.index("{") + 1: text.rindex("}")]
    pairs, i, n = [], 0, len(body)
    while i < n:
        m = re.compile(r"\s*([A-Za-z0-9_.]+)\s*=\s*").match(body, i)
        if not m:
            if body[i:].strip() == "":
                break
            raise ValueError(f"sogo.conf: cannot read the property list near {body[i:i + 40]!r}")
        key, i = m.group(1), m.end()
        depth, start, quoted = 0, i, False
        while i < n:
            c = body[i]
            if quoted:
                if c == "\\":
                    i += 1
                elif c == '"':
                    quoted = False
            elif c == '"':
                quoted = True
            elif c in "({":
                depth += 1
            elif c in ")}":
                depth -= 1
            elif c == ";" and depth == 0:
                break
            i += 1
        pairs.append((key, body[start:i].strip()))
        i += 1
    return pairs


def sogo(ctx: ServiceContext) -> Daemon:
    conf = Path(_p(ctx, "sogo_conf"))
    pairs = plist_pairs(conf.read_text())
    args: list[str] = ["sogod", "-WONoDetach", "YES", "-WOLogFile", str(ctx.logs / "sogo.log"),
                       "-WOPidFile", str(ctx.server.root / "run/sogo/sogo.pid")]
    port = "127.0.0.1:20000"
    for key, value in pairs:
        if key == "WOPort":
            port = value.strip('"')
        args += [f"-{key}", value]
    host, _, p = port.rpartition(":")
    # the unit's EnvironmentFile (PREFORK, USER, and libldap's LDAPTLS_CACERT / LDAPTLS_REQCERT)
    env = {**_shell_vars(_p(ctx, "sogo_sysconfig")), "HOME": "/run/sogo"}
    return Daemon(name=f"{ctx.server.name}/sogo", argv=tuple(_as_user(str(ctx.profile.users.sogo), args)),
                  log=ctx.logs / "sogo.stdout", logs=(ctx.logs / "sogo.log",), host=ctx.server.fqdn,
                  ready=Ready(tcp=((_addr(ctx, host), int(p)),)), timeout=ctx.timeout, env=env)


def nginx(ctx: ServiceContext) -> Daemon:
    conf = _p(ctx, "nginx_conf")
    text = Path(conf).read_text()
    ports = sorted({int(p) for p in re.findall(r"^\s*listen\s+(?:[\d.]+:)?(\d+)", text, re.M)})
    return Daemon(name=f"{ctx.server.name}/nginx", argv=("nginx", "-c", conf, "-g", "daemon off;"),
                  log=ctx.logs / "nginx.stdout", logs=(ctx.logs / "error.log",), host=ctx.server.fqdn,
                  ready=Ready(tcp=tuple((ctx.server.address, p) for p in ports)), timeout=ctx.timeout)


def mariadb(ctx: ServiceContext, datadir: Path, socket: Path) -> Daemon:
    conf = _p(ctx, "mariadb_conf")
    port = int(_conf_value(conf, "port", r"\s*=\s*") or 3306)
    bind = _conf_value(conf, "bind-address", r"\s*=\s*") or "127.0.0.1"
    argv = ("mariadbd", f"--defaults-file={conf}", f"--datadir={datadir}", f"--socket={socket}",
            f"--pid-file={socket.parent / 'mariadbd.pid'}", f"--log-error={ctx.logs / 'mariadb.log'}",
            "--user=mysql", f"--tmpdir={datadir.parent / 'mysql-tmp'}")
    return Daemon(name=f"{ctx.server.name}/mariadb", argv=argv, log=ctx.logs / "mariadb.stdout",
                  logs=(ctx.logs / "mariadb.log",), host=ctx.server.fqdn,
                  ready=Ready(unix=(str(socket),), tcp=((_addr(ctx, bind), port),)), timeout=max(ctx.timeout, 60.0))


SERVICES: Mapping[str, Callable[[ServiceContext], Daemon]] = {
    "postfix": postfix,
    "dovecot": dovecot,
    "clamav-daemon": clamd,
    "amavis": amavis,
    "saslauthd": saslauthd,
    "clamav-milter": clamav_milter,
    "opendkim": opendkim,
    "mailstrata-from-check": from_check,
    "memcached": memcached,
    "sogo": sogo,
    "nginx": nginx,
}


def placement(ctx: ServiceContext) -> Daemon | None:
    """The mailstores' placement agent (daemons/placement.py), when the render has one: its unit's ExecStart.
    Its unit's ExecStartPre (`--once`, the first map before Dovecot starts) is what `Ready(files=...)` waits
    for: the agent's first round writes the map."""
    conf = Path(f"{_p(ctx, 'dovecot_dir')}/mailstrata-placement.conf")
    script = Path(f"{ctx.profile.root}/usr/local/sbin/mailstrata-placement")
    if not conf.is_file() or not script.is_file():
        return None
    map_file = _conf_value(str(conf), "map_file")
    # `--self`: the twin's servers share one namespace, where every peer's address is local, so the agent cannot
    # tell which peer it is by binding (it would then neither publish its drain request nor kick moved users)
    argv = ("python3", "-u", str(script), "--config", str(conf), "--self", ctx.server.name)
    return Daemon(name=f"{ctx.server.name}/placement", argv=argv,
                  log=ctx.logs / "placement.log", host=ctx.server.fqdn,
                  ready=Ready(files=(map_file,) if map_file else ()), timeout=ctx.timeout)


def daemons(ctx: ServiceContext) -> list[Daemon]:
    """The server's daemons in the profile's start order; an unknown service is an error naming it. The
    placement agent, when rendered, comes before Dovecot, as its unit says (Before=dovecot.service)."""
    out = []
    for name in ctx.profile.services:
        if name in NOT_RUN:
            continue
        if name not in SERVICES:
            raise KeyError(f"{ctx.server.name}: the twin does not know how to start service {name!r} "
                           f"(add it to mailstrata/twin/services.py)")
        if name == "dovecot" and (agent := placement(ctx)) is not None:
            out.append(agent)
        out.append(SERVICES[name](ctx))
    return out
