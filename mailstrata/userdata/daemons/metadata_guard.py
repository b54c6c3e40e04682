"""The metadata guard: on every server, only root may reach the cloud's metadata service.

Why: Nova serves each server its user-data over HTTP at 169.254.169.254 (`/openstack/latest/user_data`,
the EC2-style `/latest/user-data`) and, with IPv6, at fe80::a9fe:a9fe, to any local process that asks. The
user-data holds the platform's secrets (the directory's bind password, the DKIM private key, the webmail
database's password), so without a guard a flaw in amavisd, SpamAssassin's rules, SOGo, nginx or clamd would
be enough to read all of them. cloud-init, the only reader the platform needs, runs as root.

What every layer writes (paths from the OS profile, so the twin can relocate them):

- `paths.metadata_guard` (`/usr/local/sbin/mailstrata-metadata-guard`): for each address, an OUTPUT rule
  `-d <address> -m owner ! --uid-owner 0 -j REJECT`, inserted first in the chain and only when
  `iptables -C` does not find it already (so running it again adds nothing). iptables and ip6tables are
  the interface both OSes share: CentOS 7's legacy tables and Debian 12's iptables-nft accept the same rule.
  The IPv6 rule is added only when the kernel has IPv6 (`/proc/net/if_inet6`); without it the address
  cannot be reached at all and ip6tables would fail.
- `paths.systemd_unit_dir/mailstrata-metadata-guard.service`: runs the script on every boot, in early
  boot (before `sysinit.target`, like cloud-init's own first stage), so it precedes every ordinary service;
  the role's daemons are also named in `Before=`, as some have no default dependencies (Debian's rpcbind
  starts before sysinit.target). REJECT, not DROP: a refused client fails at once instead of waiting for
  its timeout. No firewalld and no iptables-services: CentOS 7's cloud
  image ships neither, and either would be a second owner of the rules.

The setup script enables the unit (`commands.enable_service`: `systemctl enable --now`) as its first
step, so the rule is in place on the first boot too, before the role's steps start the daemons (Debian's
packages start theirs on install, before `runcmd`: those run unguarded until then).

The addresses are stated here, not in `mailstrata.defaults`: no config field, construct or other layer
states them (that module's rule).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

# OpenStack's metadata service (the EC2-compatible address and Nova's IPv6 one). Only this module states
# them; `render_layer(..., metadata_addresses=...)` points the guard elsewhere (the tests use 127.0.0.x).
METADATA_ADDRESSES: tuple[str, ...] = ("169.254.169.254", "fe80::a9fe:a9fe")
UNIT = "mailstrata-metadata-guard.service"
TEMPLATES = "common"


@dataclass(frozen=True, kw_only=True)
class MetadataGuard:
    """The guard's context: where its script and unit go, and the addresses it closes, by family."""

    script: str  # the guard's own path (the unit's ExecStart)
    unit: str  # the unit's name, as the setup script enables it
    unit_path: str
    ipv4: tuple[str, ...]  # each with its prefix length: what iptables -S prints, so -C finds it
    ipv6: tuple[str, ...]
    services: tuple[str, ...]  # the role's daemons' units, ordered after the guard by name as well


def settings(os: OsProfile, addresses: Iterable[str] = METADATA_ADDRESSES) -> MetadataGuard:
    """The guard of `os`'s role; `addresses` are single hosts (IPv4 or IPv6), at least one."""
    given = list(addresses)
    bad = [a for a in given if not _is_address(a)]
    if bad or not given:
        raise ValueError(f"metadata_addresses: must be one or more IPv4 or IPv6 host addresses, got {given!r}"
                         + (f" ({', '.join(map(repr, bad))} is not one)" if bad else ""))
    hosts = [ipaddress.ip_address(a) for a in given]
    return MetadataGuard(
        script=os.paths.metadata_guard,
        unit=UNIT,
        unit_path=f"{os.paths.systemd_unit_dir}/{UNIT}",
        ipv4=tuple(f"{h}/32" for h in hosts if h.version == 4),
        ipv6=tuple(f"{h}/128" for h in hosts if h.version == 6),
        services=tuple(s if "." in s else f"{s}.service" for s in os.services),
    )


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def files(guard: MetadataGuard) -> list[FileSpec]:
    """The guard's script and the unit that runs it on every boot."""
    return [
        FileSpec(
            dest=guard.script,
            template=f"{TEMPLATES}/usr/local/sbin/mailstrata-metadata-guard.j2",
            context={"guard": guard},
            mode="0755",
        ),
        FileSpec(
            dest=guard.unit_path,
            template=f"{TEMPLATES}/etc/systemd/system/mailstrata-metadata-guard.service.j2",
            context={"guard": guard},
        ),
    ]
