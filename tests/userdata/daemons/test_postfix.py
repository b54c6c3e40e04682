"""The Postfix room: the three roles' Postfix read by Postfix itself, and what they share written once.

Each role's `main.cf` and `master.cf` (rendered for Debian 12, whose Postfix 3.7 runs here) go through
`postconf -n` / `postconf -M` in a folder of their own; the tests compare Postfix's parsed view across the
roles. The role-specific behaviour is tested with each role (tests/userdata/roles/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailstrata import contract
from mailstrata.roles import Role
from mailstrata.userdata.daemons import postfix
from mailstrata.userdata.profiles import load_profile
from mailstrata.userdata.render import render_layer
from tests.support.daemons import postconf, postconf_master
from tests.userdata import _sample

ROLES = (Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE)
SERVER_TLS = ("smtpd_tls_security_level", "smtpd_tls_protocols", "smtpd_tls_mandatory_protocols", "smtpd_tls_ciphers",
              "smtpd_tls_mandatory_ciphers", "smtpd_tls_exclude_ciphers", "tls_preempt_cipherlist",
              "smtpd_tls_dh1024_param_file", "smtpd_tls_cert_file", "smtpd_tls_key_file")
LIMITS = ("smtpd_recipient_limit", "message_size_limit", "smtpd_error_sleep_time", "smtpd_soft_error_limit",
          "smtpd_hard_error_limit", "smtpd_client_connection_count_limit", "smtpd_client_connection_rate_limit",
          "default_process_limit", "bounce_queue_lifetime", "maximal_queue_lifetime")


def _write(role: Role, root: Path) -> Path:
    """main.cf and master.cf of `role` (Debian 12) in a folder of their own; the LDAP tables beside them."""
    profile = load_profile("debian12", role)
    ud = render_layer(_sample.context(role), os=profile)
    folder = root / role.value
    folder.mkdir()
    for f in ud.files:
        if f.path.startswith(f"{profile.paths.postfix_dir}/") and not f.b64:
            (folder / Path(f.path).name).write_text(f.content)
    # postconf resolves `proxy:ldap:` tables by their path: point them at the copies in this folder.
    main = folder / "main.cf"
    main.write_text(main.read_text().replace(f"ldap:{profile.paths.postfix_dir}/", f"ldap:{folder}/"))
    return folder


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> dict[Role, dict[str, str]]:
    root = tmp_path_factory.mktemp("postfix")
    return {role: postconf(_write(role, root)) for role in ROLES}


@pytest.mark.daemons
def test_given_the_three_roles_when_postfix_reads_them_then_the_server_tls_policy_is_the_same(
        views: dict[Role, dict[str, str]]) -> None:
    policies = {role: tuple(views[role].get(k) for k in SERVER_TLS) for role in ROLES}
    assert len(set(policies.values())) == 1, policies
    assert views[Role.SMTP_IN]["smtpd_tls_protocols"] == ", ".join(f"!{p}" for p in contract.TLS_BELOW_FLOOR)


@pytest.mark.daemons
def test_given_the_three_roles_when_postfix_reads_them_then_the_limits_are_the_same(
        views: dict[Role, dict[str, str]]) -> None:
    assert len({tuple(views[role].get(k) for k in LIMITS) for role in ROLES}) == 1


@pytest.mark.daemons
def test_given_the_three_roles_when_postfix_reads_them_then_only_smtp_out_accepts_old_tls_towards_the_internet(
        views: dict[Role, dict[str, str]]) -> None:
    assert {role: views[role]["smtp_tls_protocols"] for role in ROLES} == {
        Role.SMTP_IN: ", ".join(postfix.TLS_FLOOR),
        Role.SMTP_OUT: ", ".join(postfix.INTERNET_CLIENT_PROTOCOLS),
        Role.MAILSTORE: ", ".join(postfix.TLS_FLOOR),
    }


@pytest.mark.daemons
def test_given_the_three_roles_when_postfix_reads_master_cf_then_each_has_every_stock_service(
        tmp_path: Path) -> None:
    stock = {f"{s.name}/{s.type}" for s in postfix.stock_services(load_profile("debian12", Role.SMTP_IN))}
    for role in ROLES:
        services = postconf_master(_write(role, tmp_path))
        assert stock <= set(services), (role, stock - set(services))


@pytest.mark.daemons
def test_given_the_three_roles_when_their_ldap_tables_are_read_then_each_is_one_renderers_output(
        tmp_path: Path) -> None:
    tables = {}
    for role in ROLES:
        folder = _write(role, tmp_path)
        for table in folder.glob("ldap-*.cf"):
            tables[f"{role}/{table.name}"] = table.read_text()
    assert sorted(tables) == ["mailstore/ldap-groups.cf", "mailstore/ldap-people.cf", "smtp_in/ldap-groups.cf",
                              "smtp_in/ldap-people.cf", "smtp_out/ldap-sender-login.cf"]
    assert all("from postfix/etc/postfix/ldap-table.cf.j2" in text for text in tables.values())
    # the same connection block (URLs, TLS, bind) in every table
    blocks = {text.split("search_base", 1)[0].split("\n", 2)[2] for text in tables.values()}
    assert len(blocks) == 1, blocks
