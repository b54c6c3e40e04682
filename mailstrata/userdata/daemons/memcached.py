"""memcached: SOGo's session and LDAP cache, on loopback only.

One setting, two file formats, chosen by the OS profile (`values.memcached_format`):

- `sysconfig` (CentOS 7): shell variables in `/etc/sysconfig/memcached`, which memcached.service expands
  into `memcached -u $USER -p $PORT -m $CACHESIZE -c $MAXCONN $OPTIONS`.
- `options` (Debian 12): `/etc/memcached.conf`, one command-line option per line, `#` starting a comment;
  memcached.service runs `systemd-memcached-wrapper /etc/memcached.conf`, which joins the lines into
  memcached's command line (it drops `-d` and `-h` and the `logfile` directive).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

HOST = "127.0.0.1"  # only sogod on the same host uses it
PORT = 11211
ADDRESS = f"{HOST}:{PORT}"


class Format(StrEnum):
    """The file format of the OS's memcached settings (`values.memcached_format` in the OS profile)."""

    SYSCONFIG = "sysconfig"  # shell variables for the unit's command line
    OPTIONS = "options"  # one command-line option per line (Debian's /etc/memcached.conf)


TEMPLATES = {
    Format.SYSCONFIG: "memcached/etc/sysconfig/memcached.j2",
    Format.OPTIONS: "memcached/etc/memcached.conf.j2",
}


@dataclass(frozen=True, kw_only=True)
class Memcached:
    """memcached's settings, whatever the file format."""

    port: int = PORT
    user: str
    max_connections: int = 1024
    cache_mb: int = 64
    # Loopback only, and no UDP: memcached 1.4 listens on every address and on UDP by default, which makes
    # it an amplifier for reflection attacks.
    listen: str = HOST
    udp_port: int = 0  # 0: no UDP

    @property
    def options(self) -> str:
        """The options beyond user, port, memory and connections (CentOS's OPTIONS variable)."""
        return f"-l {self.listen} -U {self.udp_port}"


def settings(os: OsProfile) -> Memcached:
    return Memcached(user=os.users.memcached)


def conf_file(os: OsProfile, memcached: Memcached | None = None) -> FileSpec:
    """The OS's memcached settings file (`paths.memcached_sysconfig`), in the OS's format."""
    fmt = Format(os.values.memcached_format)
    return FileSpec(
        dest=os.paths.memcached_sysconfig,
        template=TEMPLATES[fmt],
        context={"memcached": memcached or settings(os)},
    )
