"""The synthesized security groups, enforced in the twin's namespace with iptables.

The twin reads the `openstack_networking_secgroup_v2` and `openstack_networking_secgroup_rule_v2`
resources of `cdk.tf.json` and the `security_group_ids` of every `openstack_networking_port_v2` (the
servers' instances attach those ports), and installs what Neutron would enforce on each port, in the
namespace's own iptables (the namespace has only `lo`: a port is its server's twin address):

| Neutron (security groups) | the twin (iptables `filter` table, INPUT chain) |
| --- | --- |
| a port with security groups: ingress default deny | a chain per guarded address (`-d ADDRESS/32`), ending in DROP |
| stateful: replies and related traffic pass | `-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT` first |
| rules are allow rules only; a port's groups add up | one ACCEPT per rule of each of the port's groups |
| `remote_ip_prefix` | `-s` the twin network of that CIDR (`AddressPlan.cidr`); 0.0.0.0/0: any source |
| `remote_group_id` | `-s` each twin address of the ports carrying that group (their fixed IPs) |
| no remote at all | any source |
| `protocol`, `port_range_min`/`max` | `-p`, `--dport MIN:MAX` |
| default egress rules (allow all, made with every group) | no OUTPUT rules |
| traffic of a server to itself (never leaves the VM) | `-s ADDRESS/32` to `ADDRESS` accepted |

Neutron (openstack/neutron doc/source/admin/intro-os-networking.rst, "Security groups"): "Security groups
use a default deny policy and only contain rules that allow specific traffic. Each port can reference one
or more security groups in an additive fashion"; "Security group rules are stateful. Thus, allowing
ingress TCP port 22 ... automatically creates rules that allow return egress traffic"; a new group gets
rules allowing all egress (neutron-lib api-ref "Create security group": "default security group rules").
A rule's `remote_group_id` is the fixed IPs of the ports in that group: the iptables driver keeps one ipset
per remote group filled with its members' addresses (neutron/agent/linux/iptables_firewall.py
`_update_ipset_members`, `sg_members`), and "ipsets for empty groups are not created": such a rule admits
nobody.

Not reproduced, and refused rather than guessed: egress rules of a group made without its default
egress rules (`delete_default_rules`), and stateless groups (`stateful = false`). IPv6 rules are left out
(the twin is IPv4 only). Ports whose server the twin does not run (the NFS server of Cinder mode) get no
chain. The VIP ports keep Octavia's own group (the listeners' ports, opened to `allowed_cidrs`), which the
twin's HAProxy enforces with its ACL; the amphorae's member-side ports carry Octavia's project group (only
their egress matters here: allowed).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SECGROUP = "openstack_networking_secgroup_v2"
_REF = re.compile(r"^\$\{(?P<type>[\w]+)\.(?P<name>[\w.-]+?)\.id\}$")
ANYWHERE = ("0.0.0.0/0",)


class FirewallError(ValueError):
    """The synthesized security groups cannot be enforced as written (names the resource)."""


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One ingress rule, with its sources in twin addresses (None: any source)."""

    key: str  # the rule's resource key in cdk.tf.json
    group: str  # the security group's resource key
    protocol: str | None
    port_min: int | None
    port_max: int | None
    sources: tuple[str, ...] | None


@dataclass(frozen=True, kw_only=True)
class GuardedPort:
    name: str  # the Neutron port's name (its server's)
    address: str  # its twin address
    groups: tuple[str, ...]  # security group resource keys


@dataclass(frozen=True, kw_only=True)
class RuleSet:
    ports: tuple[GuardedPort, ...]
    rules: tuple[Rule, ...]

    def rules_of(self, port: GuardedPort) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.group in port.groups)

    def iptables(self) -> str:
        """The rule set as `iptables-restore` input (the filter table only)."""
        lines = ["# mailstrata twin: the synthesized security groups (mailstrata/twin/firewall.py)", "*filter",
                 ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
        chains = {p.address: f"port-{i:02d}" for i, p in enumerate(self.ports, start=1)}
        lines += [f":{chain} - [0:0]" for chain in chains.values()]
        for port in self.ports:
            chain = chains[port.address]
            lines.append(f"-A INPUT -d {port.address}/32 -m comment --comment {_quote(port.name)} -j {chain}")
            lines += [f"-A {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                      f"-A {chain} -m conntrack --ctstate INVALID -j DROP",
                      f"-A {chain} -s {port.address}/32 -j ACCEPT"]
            for rule in self.rules_of(port):
                match = ""
                if rule.protocol is not None:
                    match += f" -p {rule.protocol}"
                    if rule.port_min is not None and rule.protocol in ("tcp", "udp"):
                        top = rule.port_max if rule.port_max is not None else rule.port_min
                        match += f" --dport {rule.port_min}" + (f":{top}" if top != rule.port_min else "")
                for src in rule.sources if rule.sources is not None else (None,):
                    source = f" -s {src}" if src is not None else ""
                    lines.append(f"-A {chain}{source}{match} -m comment --comment {_quote(rule.key)} -j ACCEPT")
            lines.append(f"-A {chain} -j DROP")
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'")[:200] + '"'


def _group_key(value: Any, where: str) -> str:
    m = _REF.match(str(value))
    if not m or m.group("type") != SECGROUP:
        raise FirewallError(f"{where}: expected a reference to a {SECGROUP}, got {value!r}")
    return m.group("name")


def rule_set(doc: Mapping[str, Any], *, port_address: Callable[[str], str | None],
             cidr: Callable[[str], str]) -> RuleSet:
    """What Neutron would enforce on the twin's ports, from `doc` (a cdk.tf.json).

    `port_address(port name)`: the twin address of a port's server, None for a server the twin does not run;
    `cidr(production cidr)`: the twin network of a CIDR the config names.
    """
    res = doc.get("resource", {})
    groups = res.get(SECGROUP, {})
    for key, g in groups.items():
        if g.get("stateful") is False:
            raise FirewallError(f"{SECGROUP}.{key}: stateful = false is not reproduced by the twin (its rules are "
                                "stateful, as Neutron's default)")
        if g.get("delete_default_rules"):
            raise FirewallError(f"{SECGROUP}.{key}: delete_default_rules drops the default egress rules, and the "
                                "twin does not reproduce egress rules; keep the defaults")
    ports = []
    for key, port in sorted(res.get("openstack_networking_port_v2", {}).items()):
        sgs = tuple(_group_key(g, f"openstack_networking_port_v2.{key}.security_group_ids")
                    for g in port.get("security_group_ids") or ())
        address = port_address(str(port.get("name", "")))
        if sgs and address is not None:
            ports.append(GuardedPort(name=str(port.get("name")), address=address, groups=sgs))
    members = {g: tuple(p.address for p in ports if g in p.groups) for g in groups}
    rules = []
    for key, r in sorted(res.get("openstack_networking_secgroup_rule_v2", {}).items()):
        where = f"openstack_networking_secgroup_rule_v2.{key}"
        group = _group_key(r.get("security_group_id"), f"{where}.security_group_id")
        if r.get("direction") != "ingress" or r.get("ethertype", "IPv4") != "IPv4":
            continue  # egress: the default allow-all stands; IPv6: the twin has none
        sources: tuple[str, ...] | None
        if r.get("remote_group_id"):
            remote = _group_key(r["remote_group_id"], f"{where}.remote_group_id")
            sources = tuple(f"{a}/32" for a in members.get(remote, ()))
            if not sources:
                continue  # a group with no twin port admits nobody
        elif r.get("remote_ip_prefix") and r["remote_ip_prefix"] not in ANYWHERE:
            try:
                sources = (cidr(r["remote_ip_prefix"]),)
            except KeyError as exc:
                raise FirewallError(f"{where}.remote_ip_prefix: {exc.args[0]}") from None
        else:
            sources = None
        protocol = r.get("protocol") or None
        rules.append(Rule(key=key, group=group, protocol=protocol,
                          port_min=int(r["port_range_min"]) if r.get("port_range_min") is not None else None,
                          port_max=int(r["port_range_max"]) if r.get("port_range_max") is not None else None,
                          sources=sources))
    return RuleSet(ports=tuple(ports), rules=tuple(rules))


def install(netns_name: str, rules: RuleSet) -> None:
    """Replace the filter table of namespace `netns_name` with `rules` (one atomic iptables-restore)."""
    proc = subprocess.run(["ip", "netns", "exec", netns_name, "iptables-restore"], input=rules.iptables(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise FirewallError(f"iptables-restore in {netns_name} refused the security groups: {proc.stderr.strip()}")
