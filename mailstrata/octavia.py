"""Where Octavia's amphorae connect to pool members from: one model for the security groups, the daemons'
trusted PROXY sources and the local twin.

What Octavia does (openstack/octavia, master as fetched for issue 10):

- The member API: a member's `subnet_id` is "the subnet ID the member service is accessible from"; "If you
  omit the `subnet_id` parameter, the `vip_subnet_id` for the parent load balancer will be used for the
  member subnet UUID" (api-ref/source/v2/member.inc, api-ref/source/parameters.yaml `subnet_id`).
- The controller plugs the amphora into every member subnet: `CalculateAmphoraDelta` seeds the wanted
  subnets with the VIP subnet and adds `member.subnet_id` of every member that names one
  (octavia/controller/worker/v2/tasks/network_tasks.py); `HandleNetworkDelta` then creates a port on the
  member's network (`create_port(network_id, name='octavia-lb-member-<amphora id>')`, no fixed IP and no
  security group given: Neutron picks the address and the port gets Octavia's project's default group)
  and adds a fixed IP on the member subnet (`plug_fixed_ip(port_id, subnet_id)`, no address given)
  (octavia/network/drivers/neutron/allowed_address_pairs.py `create_port`, neutron/base.py `plug_fixed_ip`).
- The amphora agent moves that interface into the `amphora-haproxy` namespace where HAProxy runs
  (octavia/amphorae/backends/agent/api_server/plug.py `plug_network`) and gives it each fixed IP with the
  subnet's prefix length (octavia/amphorae/backends/utils/interface_file.py `PortInterfaceFile`): the member
  subnet is then directly connected, so HAProxy's connections to a member in it, health checks included,
  leave from the amphora's address on the member subnet.

So: to a member that names a subnet, the amphora connects from an address in that subnet (allocated by
Neutron, not predictable, on a port whose security group is Octavia's, so `remote_group_id` cannot name
it); to a member that names none, from its address on the VIP subnet. Security groups must admit the
load-balancer ports from those subnets, and the members' daemons trust PROXY headers from them alone.
"""

from __future__ import annotations

from collections.abc import Iterable


def amphora_source_subnets(*, member_subnets: Iterable[str | None], vip_subnets: Iterable[str]) -> tuple[str, ...]:
    """The subnets an amphora's HAProxy connects to these members from, in first-seen order, without repeats.

    `member_subnets`: the subnet each member names (its `subnet_id`, or that subnet's CIDR), None for a
    member that names none; `vip_subnets`: the load balancer's VIP subnet(s), in the same notation. A member
    naming its subnet is reached from the amphora's port there; one naming none, from the VIP subnet.
    Works alike on subnet IDs and on CIDRs.
    """
    vips = tuple(vip_subnets)
    out: list[str] = []
    for subnet in member_subnets:
        out += [subnet] if subnet is not None else list(vips)
    return tuple(dict.fromkeys(out))
