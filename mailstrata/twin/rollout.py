"""`TwinCloud`: the rollout engine's cloud (issue 12) over the twin, with Octavia's and Nova's behaviour.

The twin's "Octavia" is one HAProxy per VIP (`haproxy.py`); this module drives it through HAProxy's runtime
API on the amphora's admin socket, as Octavia's amphora agent ends up driving HAProxy:

| Cloud call | Octavia | the twin |
| --- | --- | --- |
| `drain(slot)` | member `weight = 0`: open sessions go on, no new ones | `set server <pool>/<slot> weight 0` |
| `undrain(slot)` | member `weight = 1` (the stack's weight) | `set server <pool>/<slot> weight 1` |
| `sessions(slot)` | the member's current sessions | `show stat` column `scur`, summed over pools |
| `members(layer)` | each member's `operating_status` | `show stat` `status`/`weight`, mapped as Octavia does |
| `replace(slot)` | members disabled; destroy, create on the same port; enabled | `maint`, `replace_server`, `ready` |

Member `operating_status`, as Octavia derives it from HAProxy's `show stat` (octavia commit 0e6ea11c):

- octavia/amphorae/backends/utils/haproxy_query.py `get_pool_status`: a member whose status is `UP` with
  weight 0 is reported `DRAIN` ("Due to a bug in some versions of HAProxy, DRAIN mode isn't calculated
  correctly, but we can spoof the correct value here");
- octavia/amphorae/drivers/health/heartbeat_udp.py (the health manager's `_process_status`): `UP...` ->
  ONLINE, `DOWN...` -> ERROR (a failing health check), `DRAIN` -> DRAINING, `MAINT` -> OFFLINE (a member with
  `admin_state_up = false`, which Octavia writes as `disabled`), `no check` -> NO_MONITOR.

So a drained member whose health check passes is DRAINING, a failing one ERROR whatever its weight.
HAProxy's transitional states (`UP 1/3` going down, `DOWN 1/3` coming up) count as their first word, as
Octavia's `startswith` does; `DRAIN 1/3` (a drained member failing checks) is still DRAINING here, where
Octavia would keep the member's previous status.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mailstrata.config.model import PlatformConfig
from mailstrata.roles import Role
from mailstrata.rollout import Cloud, Member, MemberStatus
from mailstrata.twin import haproxy, netns
from mailstrata.twin.twin import Twin, TwinError, TwinInfo

__all__ = ["Cloud", "Member", "MemberStatus", "TwinCloud", "operating_status"]

WEIGHT = 1  # the weight the stack gives every member (openstack_lb_members_v2), written by haproxy_cfg


def operating_status(status: str, weight: str) -> MemberStatus:
    """A member's Octavia operating_status from HAProxy's `show stat` status and weight (module docstring)."""
    word = status.split(" ")[0]
    if word == "UP":
        return MemberStatus.DRAINING if status == "UP" and weight == "0" else MemberStatus.ONLINE
    if word == "DOWN":
        return MemberStatus.ERROR
    if word == "DRAIN":
        return MemberStatus.DRAINING
    if word == "MAINT":
        return MemberStatus.OFFLINE
    if status == "no check":
        return MemberStatus.NO_MONITOR
    raise TwinError(f"HAProxy member status {status!r} has no Octavia operating_status")


class TwinCloud:
    """The `Cloud` of the rollout engine (`mailstrata.rollout`) over a running twin.

    `config` is the config replacements are created from (the change being rolled out): a `PlatformConfig`
    or a file; None rolls the config the twin runs (a replacement with no change).
    """

    def __init__(self, twin: Twin, *, config: PlatformConfig | str | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.twin = twin
        self.config = config
        self.progress = progress

    # ---- reading --------------------------------------------------------------------------------------

    def _info(self) -> TwinInfo:
        info = self.twin.info()
        if info is None:
            raise TwinError(f"the twin is not up (no {self.twin.state_path})")
        return info

    def _role_of(self, slot: str) -> Role:
        server = next((s for s in self._info().servers if s.name == slot), None)
        if server is None:
            raise TwinError(f"no server slot {slot!r} in the twin")
        return Role(server.role)

    def _rows(self, role: Role) -> tuple[list[dict[str, str]], dict[str, int]]:
        info = self._info()
        sock = info.haproxy_sockets.get(role.value)
        if sock is None:
            raise TwinError(f"layer {role.value} has no load balancer in the twin")
        text = netns.in_netns(info.netns, haproxy.runtime, sock, "show stat")
        rows = [r for r in haproxy.stat_rows(text) if r.get("svname") not in ("FRONTEND", "BACKEND")]
        return rows, haproxy.backend_ports(Path(sock).with_suffix(".cfg").read_text())

    def members(self, layer: Role | str) -> list[Member]:
        role = Role(layer)
        rows, ports = self._rows(role)
        return [Member(pool=f"{role.slug}:{ports[r['pxname']]}", slot=r["svname"],
                       status=operating_status(r["status"], r["weight"])) for r in rows]

    def sessions(self, slot: str) -> int | None:
        rows, _ = self._rows(self._role_of(slot))
        mine = [r for r in rows if r["svname"] == slot]
        if not mine or any(not r.get("scur", "").isdigit() for r in mine):
            return None
        return sum(int(r["scur"]) for r in mine)

    # ---- acting ---------------------------------------------------------------------------------------

    def _set_weight(self, slot: str, weight: int) -> None:
        role = self._role_of(slot)
        rows, _ = self._rows(role)
        sock = self._info().haproxy_sockets[role.value]
        for r in rows:
            if r["svname"] == slot:
                out = netns.in_netns(self._info().netns, haproxy.runtime, sock,
                                     f"set server {r['pxname']}/{slot} weight {weight}").strip()
                if out:  # HAProxy answers nothing on success
                    raise TwinError(f"set server {r['pxname']}/{slot} weight {weight}: {out}")

    def drain(self, slot: str) -> None:
        """Octavia: member weight 0 (sessions open go on, no new ones). The server's Nova metadata
        `mailstrata_drain = "true"` (what `var.mailstrata_drain` sets) reaches a mailstore's placement agent
        through the metadata service, which the twin has not: the agent's other source, the local drain
        request file, stands in for it."""
        self._set_weight(slot, 0)
        self._drain_request(slot, True)

    def undrain(self, slot: str) -> None:
        self._set_weight(slot, WEIGHT)
        self._drain_request(slot, False)

    def _drain_request(self, slot: str, on: bool) -> None:
        server = next(s for s in self._info().servers if s.name == slot)
        flag = Path(server.root) / "run" / "mailstrata" / "drain"  # daemons/placement.py `drain_request`
        if Role(server.role) is not Role.MAILSTORE:
            return
        if on:
            flag.parent.mkdir(parents=True, exist_ok=True)
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def replace(self, slot: str) -> None:
        """Destroy the server and create its replacement (same port and address); return once it runs. Its
        members are disabled meanwhile (`var.mailstrata_offline`: Octavia's `admin_state_up = false`, HAProxy's
        maintenance), so no client reaches it, not even one that source-IP persistence sticks to it."""
        self.set_admin_state(slot, False)
        try:
            self.twin.replace_server(slot, config=self.config, progress=self.progress)
        finally:
            self.set_admin_state(slot, True)

    # ---- members' admin state (the replacement's, and tests that need a next hop to defer) --------------

    def set_admin_state(self, slot: str, up: bool, *, port: int | None = None) -> None:
        """Octavia's member `admin_state_up` (false: HAProxy `disabled`, reported OFFLINE), in the pools of
        `port` only, or all of the slot's pools."""
        role = self._role_of(slot)
        rows, ports = self._rows(role)
        sock = self._info().haproxy_sockets[role.value]
        for r in rows:
            if r["svname"] == slot and (port is None or ports[r["pxname"]] == port):
                state = "ready" if up else "maint"
                netns.in_netns(self._info().netns, haproxy.runtime, sock,
                               f"set server {r['pxname']}/{slot} state {state}")
