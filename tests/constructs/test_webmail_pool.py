"""The webmail VIP's pools send the PROXY protocol, so nginx and SOGo see the browser's address.

Read from the default platform's synthesized `cdk.tf.json` (what Terraform hands Octavia): a pool with
protocol PROXY on a TCP listener is Octavia's "PROXY protocol v1 to the member" (the amphora's HAProxy
writes `send-proxy` on each member line). Health checks of such a pool carry the PROXY line too, as long as
no member names a monitor_port or monitor_address; the webmail monitors stay HTTP(S) on /healthz.
"""

from __future__ import annotations

from typing import Any

from tests.support.synth import default_platform, resources

WEBMAIL = "mailstrata/webmail/"


def _by_port(rtype: str) -> dict[int, tuple[str, dict[str, Any]]]:
    """The webmail VIP's resources of `rtype`, by port (from their policy marker): {port: (key, resource)}."""
    out: dict[int, tuple[str, dict[str, Any]]] = {}
    for key, r in resources(default_platform(), rtype).items():
        desc = r.get("description", "")
        if desc.startswith(WEBMAIL):
            out[int(desc[len(WEBMAIL):].split(":", 1)[0])] = (key, r)
    return out


def test_given_the_default_platform_when_synthesized_then_both_webmail_pools_send_proxy_v1() -> None:
    pools = _by_port("openstack_lb_pool_v2")

    assert {port: pool["protocol"] for port, (_, pool) in pools.items()} == {80: "PROXY", 443: "PROXY"}


def test_given_the_default_platform_when_synthesized_then_the_webmail_listeners_stay_tcp() -> None:
    listeners = _by_port("openstack_lb_listener_v2")

    # Octavia accepts a PROXY pool only behind a TCP listener (TLS passes through to nginx).
    assert {port: lst["protocol"] for port, (_, lst) in listeners.items()} == {80: "TCP", 443: "TCP"}


def test_given_the_default_platform_when_synthesized_then_https_keeps_source_ip_persistence() -> None:
    pools = _by_port("openstack_lb_pool_v2")

    assert (pools[443][1].get("persistence"), pools[443][1]["lb_method"]) == (
        {"type": "SOURCE_IP"}, "LEAST_CONNECTIONS"
    )


def test_given_the_default_platform_when_synthesized_then_monitors_check_healthz_through_the_pool() -> None:
    pools = {key: port for port, (key, _) in _by_port("openstack_lb_pool_v2").items()}
    monitors = [m for m in resources(default_platform(), "openstack_lb_monitor_v2").values()
                if m["pool_id"].split(".")[1] in pools]

    assert sorted((pools[m["pool_id"].split(".")[1]], m["type"], m["url_path"]) for m in monitors) == [
        (80, "HTTP", "/healthz"), (443, "HTTPS", "/healthz")
    ]


def test_given_the_default_platform_when_synthesized_then_no_webmail_member_diverts_its_health_check() -> None:
    # A monitor_port or monitor_address would make HAProxy drop the PROXY line from the checks, and
    # nginx (which requires it on 80 and 443) would then fail every check.
    pools = {key for _, (key, _) in _by_port("openstack_lb_pool_v2").items()}
    members = [m for r in resources(default_platform(), "openstack_lb_members_v2").values()
               if r["pool_id"].split(".")[1] in pools for m in r["member"]]

    assert members and not [m for m in members if {"monitor_port", "monitor_address"} & set(m)]
