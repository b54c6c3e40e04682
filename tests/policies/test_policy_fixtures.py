"""Each check on its pass and fail fixture, run in-process with checkov's terraform_json runner.

GIVEN a check's fixture WHEN checkov runs only that check on it THEN the exact resources pass and fail.
Resources that are not applicable (UNKNOWN) appear in neither list.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.policies.conftest import Scan

ScanFn = Callable[[Path, str], "Scan"]
FixtureFn = Callable[[str, str], Path]

SG = "openstack_networking_secgroup_rule_v2"
POOL = "openstack_lb_pool_v2"
LISTENER = "openstack_lb_listener_v2"
INSTANCE = "openstack_compute_instance_v2"
FIP = "openstack_networking_floatingip_v2"
FIP_ASSOC = "openstack_networking_floatingip_associate_v2"

# (check, fixture) -> (resources that pass, resources that fail), in file order.
EXPECTED: dict[tuple[str, str], tuple[list[str], list[str]]] = {
    ("CKV_MAILSTRATA_1", "pass"): (
        [
            f"{SG}.smtp_in_smtp_v4",
            f"{SG}.smtp_in_smtp_v6",
            f"{SG}.webmail_https",
            f"{SG}.mailstore_imap_from_webmail",
            f"{SG}.mailstore_ssh_admin",
        ],
        [],
    ),
    ("CKV_MAILSTRATA_1", "fail"): (
        [f"{SG}.smtp_in_smtp_v4"],
        [
            f"{SG}.smtp_in_all_tcp_ports",
            f"{SG}.webmail_no_remote_any_protocol",
            f"{SG}.smtp_out_smtp_world",
            f"{SG}.webmail_http_world",
            f"{SG}.smtp_in_smtp_udp",
            f"{SG}.https_without_marker",
            f"{SG}.smtp_in_port_range",
            f"{SG}.mailstore_ssh_world",
        ],
    ),
    ("CKV_MAILSTRATA_2", "pass"): (
        [
            f"{SG}.mailstore_ssh_admin",
            f"{SG}.smtp_in_ssh_admin_v6",
            f"{SG}.nfs_all_tcp_admin",
            f"{SG}.webmail_ssh_admin_var",
        ],
        [],
    ),
    ("CKV_MAILSTRATA_2", "fail"): (
        [f"{SG}.mailstore_ssh_admin"],
        [
            f"{SG}.mailstore_ssh_world",
            f"{SG}.mailstore_ssh_no_admin_marker",
            f"{SG}.smtp_in_ssh_from_group",
            f"{SG}.webmail_range_world",
            f"{SG}.mailstore_all_from_group",
            f"{SG}.ssh_no_remote",
        ],
    ),
    ("CKV_MAILSTRATA_3", "pass"): (
        [f"{POOL}.smtp_in_25_proxy", f"{POOL}.smtp_in_25_proxyv2", f"{POOL}.smtp_in_no_port_proxyv2"],
        [],
    ),
    ("CKV_MAILSTRATA_3", "fail"): (
        [f"{POOL}.smtp_in_25_proxyv2"],
        [f"{POOL}.smtp_in_25_tcp", f"{POOL}.smtp_in_no_port_tcp", f"{POOL}.smtp_in_25_lowercase_proxy"],
    ),
    ("CKV_MAILSTRATA_4", "pass"): (
        [
            "provider.openstack",
            f"{INSTANCE}.smtp_in_01",
            f"{INSTANCE}.mailstore_01",
            "random_password.admin",
            "tls_private_key.dkim_domain01",
            "tls_self_signed_cert.webmail",
            "openstack_db_user_v1.sogo",
            "openstack_keymanager_secret_v1.ldap_bind",
        ],
        [],
    ),
    ("CKV_MAILSTRATA_4", "fail"): (
        ["random_password.admin"],
        [
            "provider.openstack",
            f"{INSTANCE}.smtp_in_01",
            f"{INSTANCE}.mailstore_01",
            f"{INSTANCE}.smtp_out_01",
            f"{INSTANCE}.smtp_out_02",
            f"{INSTANCE}.smtp_in_02",
            f"{INSTANCE}.webmail_01",
            "tls_self_signed_cert.webmail",
            "openstack_db_user_v1.sogo",
        ],
    ),
    ("CKV_MAILSTRATA_5", "pass"): (
        [
            f"{LISTENER}.mailstore_pop3",
            f"{LISTENER}.mailstore_imap",
            f"{LISTENER}.mailstore_imaps",
            f"{LISTENER}.mailstore_pop3s",
            f"{LISTENER}.mailstore_sieve",
            f"{LISTENER}.mailstore_imap_var",
        ],
        [],
    ),
    ("CKV_MAILSTRATA_5", "fail"): (
        [f"{LISTENER}.mailstore_pop3s"],
        [
            f"{LISTENER}.mailstore_imap_defaults",
            f"{LISTENER}.mailstore_imaps_short_member",
            f"{LISTENER}.mailstore_sieve_short_client",
            f"{LISTENER}.mailstore_pop3_one_ms_short",
        ],
    ),
    ("CKV_MAILSTRATA_6", "pass"): (
        [f"{FIP}.smtp_in_vip", f"{FIP}.webmail_vip", f"{FIP_ASSOC}.smtp_in_vip", f"{FIP_ASSOC}.webmail_vip"],
        [],
    ),
    ("CKV_MAILSTRATA_6", "fail"): (
        [f"{FIP}.smtp_in_vip", f"{FIP_ASSOC}.smtp_in_vip"],
        [
            f"{FIP}.mailstore_vip",
            f"{FIP}.no_description",
            f"{FIP}.no_marker",
            f"{FIP_ASSOC}.mailstore_vip",
            f"{FIP_ASSOC}.literal_address",
        ],
    ),
}

# The exact (passed, failed) counts, as the brief for each fixture states them.
EXPECTED_COUNTS: dict[tuple[str, str], tuple[int, int]] = {
    ("CKV_MAILSTRATA_1", "pass"): (5, 0),
    ("CKV_MAILSTRATA_1", "fail"): (1, 8),
    ("CKV_MAILSTRATA_2", "pass"): (4, 0),
    ("CKV_MAILSTRATA_2", "fail"): (1, 6),
    ("CKV_MAILSTRATA_3", "pass"): (3, 0),
    ("CKV_MAILSTRATA_3", "fail"): (1, 3),
    ("CKV_MAILSTRATA_4", "pass"): (8, 0),
    ("CKV_MAILSTRATA_4", "fail"): (1, 9),
    ("CKV_MAILSTRATA_5", "pass"): (6, 0),
    ("CKV_MAILSTRATA_5", "fail"): (1, 4),
    ("CKV_MAILSTRATA_6", "pass"): (4, 0),
    ("CKV_MAILSTRATA_6", "fail"): (2, 5),
}

CASES = sorted(EXPECTED)


@pytest.mark.parametrize(("check_id", "kind"), CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_fixture_counts(scan: ScanFn, fixture_file: FixtureFn, check_id: str, kind: str) -> None:
    result = scan(fixture_file(check_id, kind), check_id)
    assert result.counts == EXPECTED_COUNTS[(check_id, kind)]


@pytest.mark.parametrize(("check_id", "kind"), CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_fixture_resources(scan: ScanFn, fixture_file: FixtureFn, check_id: str, kind: str) -> None:
    result = scan(fixture_file(check_id, kind), check_id)
    passed, failed = EXPECTED[(check_id, kind)]
    assert sorted(result.passed) == sorted(passed)
    assert sorted(result.failed) == sorted(failed)


def test_expected_counts_agree_with_expected_resources() -> None:
    assert {case: (len(p), len(f)) for case, (p, f) in EXPECTED.items()} == EXPECTED_COUNTS


# --- messages: what is wrong, and the fix --------------------------------------------------------------


def _details(scan: ScanFn, fixture_file: FixtureFn, check_id: str, address: str) -> list[str]:
    return scan(fixture_file(check_id, "fail"), check_id).details[address]


def test_world_open_all_ports_message(scan: ScanFn, fixture_file: FixtureFn) -> None:
    assert _details(scan, fixture_file, "CKV_MAILSTRATA_1", f"{SG}.smtp_in_all_tcp_ports") == [
        "remote_ip_prefix 0.0.0.0/0 opens tcp (all ports) to the world on role smtp_in; only tcp 25 on "
        "smtp_in and tcp 443 on webmail may be; set remote_ip_prefix to the networks that need access, "
        "or remote_group_id"
    ]


def test_world_open_without_marker_message_says_role_unknown(scan: ScanFn, fixture_file: FixtureFn) -> None:
    (message,) = _details(scan, fixture_file, "CKV_MAILSTRATA_1", f"{SG}.https_without_marker")
    assert "on role unknown (no mailstrata/<role> marker in the description)" in message


def test_ssh_message_lists_every_problem(scan: ScanFn, fixture_file: FixtureFn) -> None:
    assert _details(scan, fixture_file, "CKV_MAILSTRATA_2", f"{SG}.webmail_range_world") == [
        "rule allows SSH (tcp 20..30) but its description lacks the admin marker "
        "(`mailstrata/<role>/22/admin: ...`) and its remote_ip_prefix ::/0 is the whole Internet; "
        "allow port 22 only from the admin CIDRs, with the /admin marker"
    ]


def test_proxy_message_names_protocol(scan: ScanFn, fixture_file: FixtureFn) -> None:
    (message,) = _details(scan, fixture_file, "CKV_MAILSTRATA_3", f"{POOL}.smtp_in_25_tcp")
    assert message.startswith("smtp_in pool on port 25 has protocol 'TCP'; set protocol to PROXYV2 (or PROXY)")


def test_secret_in_local_is_reported_at_the_instance_with_local_and_line(scan: ScanFn, fixture_file: FixtureFn) -> None:
    assert _details(scan, fixture_file, "CKV_MAILSTRATA_4", f"{INSTANCE}.smtp_in_01") == [
        "user_data via local.user_data_smtp_in[5]: `bind_pw` set to a literal value; pass it as a sensitive "
        "variable or a random_password/tls_private_key reference, or fetch it at boot (e.g. from Barbican)"
    ]


def test_secret_in_a_local_used_by_a_local_is_found(scan: ScanFn, fixture_file: FixtureFn) -> None:
    (message,) = _details(scan, fixture_file, "CKV_MAILSTRATA_4", f"{INSTANCE}.smtp_out_02")
    assert message.startswith("user_data via local.saslauthd_conf[5]: `ldap_bind_pw` set to a literal value")


def test_secret_messages_never_show_the_secret(scan: ScanFn, fixture_file: FixtureFn) -> None:
    details = scan(fixture_file("CKV_MAILSTRATA_4", "fail"), "CKV_MAILSTRATA_4").details
    text = "\n".join(line for lines in details.values() for line in lines)
    assert "s3cret" not in text
    assert "hunter2" not in text
    assert "MIIE" not in text


def test_timeout_message_names_default(scan: ScanFn, fixture_file: FixtureFn) -> None:
    assert _details(scan, fixture_file, "CKV_MAILSTRATA_5", f"{LISTENER}.mailstore_imap_defaults") == [
        "mailstore listener on port 143: timeout_client_data is not set (Octavia's default is 50000 ms); "
        "timeout_member_data is not set (Octavia's default is 50000 ms); set both to at least 1800000 "
        "(30 min) so IMAP IDLE sessions are not cut"
    ]


def test_association_message_names_the_floating_ip(scan: ScanFn, fixture_file: FixtureFn) -> None:
    (message,) = _details(scan, fixture_file, "CKV_MAILSTRATA_6", f"{FIP_ASSOC}.mailstore_vip")
    assert message.startswith(f"associated floating IP {FIP}.mailstore_vip has role mailstore;")
