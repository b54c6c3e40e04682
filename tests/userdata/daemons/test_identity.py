"""Identity (issue 9): every consumer of the directory knows a person by their full address.

The filters come from one place (`mailstrata.userdata.daemons.ldap.Filters`); these tests check their shape,
then run them through the real consumers against the real Samba AD of the twin (mailstrata/twin/samba.py),
inside a private network namespace: saslauthd (SMTP-out's logins), Postfix's LDAP tables (SMTP-in's
recipient check and SMTP-out's sender-login map, asked by `postmap -q`) and Dovecot's iterate filter as a
paged search (`ldapsearch -E pr=...`). Dovecot's own logins and deliveries are in
tests/userdata/roles/test_mailstore.py (they need the running mailstore).

The directory holds jsmith@domain01.dom (login jsmith) and jsmith@domain02.dom (login jsmith02), two
people; jdoe, whose address is john.doe@domain01.dom, with the aliases jd@domain01.dom and
john.doe@domain02.dom in proxyAddresses (SMTP:/smtp:, and an X500: value); and 1,100 bulk users.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstrata.directory import AttributeMap, DirectorySettings, LdapTls
from mailstrata.roles import Role
from mailstrata.types import Secret
from mailstrata.userdata.daemons.ldap import Filters
from mailstrata.userdata.profiles import load_profile
from mailstrata.userdata.render import render_layer
from tests.support.requires import requires
from tests.support.samba_ad import SEED_USERS, SambaAD, bulk_users, private_netns
from tests.support.server_view import ServerView, write_tree
from tests.userdata import _sample
from tests.userdata.roles.test_smtp_out import SAMPLE, Saslauthd, _samba_files, running_saslauthd, server_files

DOMAINS = ("domain01.dom", "domain02.dom")
DIRECTORY = DirectorySettings(
    urls=("ldaps://dc1.domain01.dom",), tls=LdapTls.LDAPS, base_dn="dc=domain01,dc=dom",
    bind_dn="cn=correoapp,ou=mailapps,dc=domain01,dc=dom", bind_password=Secret(ref="${var.ad_bind_password}"),
    domains=DOMAINS,
)  # fmt: skip
IN_DOMAINS = "(|(mail=*@domain01.dom)(mail=*@domain02.dom))"


# ---- the filters, built in one place -----------------------------------------------------------------


def test_a_login_is_the_address_or_an_account_name_without_at() -> None:
    assert Filters(DIRECTORY).mail_user("%u") == (
        f"(&(objectClass=person)(|(mail=%u)(&(sAMAccountName=%u)(!(sAMAccountName=*@*)))){IN_DOMAINS})"
    )


def test_a_mailbox_is_a_primary_address_only() -> None:
    assert Filters(DIRECTORY).mailbox("%s") == "(&(objectClass=person)(mail=%s))"


def test_a_sender_is_owned_by_the_person_with_that_address_or_alias() -> None:
    assert Filters(DIRECTORY).person_by_mail("%s") == (
        "(&(objectClass=person)(|(mail=%s)(proxyAddresses=smtp:%s)))"
    )


def test_aliases_are_groups_and_peoples_other_addresses() -> None:
    assert Filters(DIRECTORY).alias("%s") == (
        "(|(&(objectClass=group)(|(mail=%s)(proxyAddresses=smtp:%s)))"
        "(&(objectClass=person)(proxyAddresses=smtp:%s)(!(mail=%s))))"
    )


def test_the_attribute_map_names_the_alias_attribute() -> None:
    directory = DirectorySettings(**{**DIRECTORY.__dict__, "attributes": AttributeMap(aliases="otherMailbox")})
    assert Filters(directory).alias_owner("%s") == "(&(objectClass=person)(otherMailbox=smtp:%s)(!(mail=%s)))"


def test_no_filter_matches_a_local_part_alone() -> None:
    # The seed's filter compared `mail` with `%n@<domain>` (the login cut at "@", any served domain).
    f = Filters(DIRECTORY)
    texts = [f.mail_user("%u"), f.mailbox("%s"), f.person_by_mail("%s"), f.alias("%s"), f.mail_users()]
    assert [t for t in texts if re.search(r"%[nU]", t)] == []


# ---- against the real directory ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaAD]:
    requires("samba", "samba-tool", "ip", "openssl", root=True)
    with (
        private_netns(f"mstest-id-{os.getpid()}") as netns,
        SambaAD(tmp_path_factory.mktemp("identity-ad"), netns=netns) as dc,
    ):
        yield dc


def _directory(ad: SambaAD) -> DirectorySettings:
    return DirectorySettings(
        urls=(ad.ldaps_url,), tls=LdapTls.LDAPS, base_dn=ad.base_dn, bind_dn=ad.bind_dn,
        bind_password=Secret(ref="${var.ad_bind_password}"), domains=ad.domains, ca_cert_pem=ad.ca_cert_pem,
    )  # fmt: skip


def _view(ad: SambaAD, role: Role, base: Path) -> ServerView:
    """`role`'s files rendered for the test directory, seen at their real paths."""
    ctx = _sample.context(role).with_platform(directory=_directory(ad))
    files = server_files(ctx, {**SAMPLE, "var.ad_bind_password": ad.bind_password}, load_profile("centos7", role))
    return ServerView(write_tree(files, base / "root"), base / "scratch")


def _postmap(ad: SambaAD, view: ServerView, table: str, key: str) -> str | None:
    assert ad.netns is not None
    proc = view.run(["postmap", "-q", key, f"ldap:/etc/postfix/{table}"], netns=ad.netns)
    assert proc.returncode in (0, 1) and proc.stderr == "", proc.stderr
    return proc.stdout.strip() if proc.returncode == 0 else None


@pytest.fixture(scope="module")
def saslauthd(ad: SambaAD, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Saslauthd]:
    with running_saslauthd(ad, LdapTls.LDAPS, tmp_path_factory.mktemp("id-sasl")) as sasl:
        yield sasl


@pytest.fixture(scope="module")
def smtp_out(ad: SambaAD, tmp_path_factory: pytest.TempPathFactory) -> ServerView:
    requires("postmap")
    base = tmp_path_factory.mktemp("id-out")  # (SMTP-out's rendering needs the DKIM key's stand-in too)
    return ServerView(write_tree(_samba_files(ad, LdapTls.LDAPS), base / "root"), base / "scratch")


@pytest.fixture(scope="module")
def smtp_in(ad: SambaAD, tmp_path_factory: pytest.TempPathFactory) -> ServerView:
    requires("postmap")
    return _view(ad, Role.SMTP_IN, tmp_path_factory.mktemp("id-in"))


OK, NO = '0: OK "Success."', '0: NO "authentication failed"'


@pytest.mark.daemons
def test_saslauthd_namesakes_log_in_with_their_own_address_only(ad: SambaAD, saslauthd: Saslauthd) -> None:
    # GIVEN jsmith@domain01.dom (login jsmith) and jsmith@domain02.dom (login jsmith02)
    # WHEN each address is tried with each person's password THEN only the owner's works
    pw = {login: ad.users[login].password for login in ("jsmith", "jsmith02")}
    got = {(addr, who): saslauthd.check(addr, pw[who])
           for addr in ("jsmith@domain01.dom", "jsmith@domain02.dom") for who in pw}  # fmt: skip
    assert got == {
        ("jsmith@domain01.dom", "jsmith"): OK,
        ("jsmith@domain01.dom", "jsmith02"): NO,
        ("jsmith@domain02.dom", "jsmith"): NO,  # the seed's %U made this domain01's jsmith
        ("jsmith@domain02.dom", "jsmith02"): OK,
    }


@pytest.mark.daemons
def test_saslauthd_takes_the_address_or_the_account_name(ad: SambaAD, saslauthd: Saslauthd) -> None:
    # GIVEN jdoe, whose address is john.doe@domain01.dom WHEN he logs in THEN the address and the account
    # name work; the local part and an alias are no logins
    pw = ad.users["jdoe"].password
    got = {login: saslauthd.check(login, pw)
           for login in ("john.doe@domain01.dom", "jdoe", "john.doe", "jd@domain01.dom")}  # fmt: skip
    assert got == {"john.doe@domain01.dom": OK, "jdoe": OK, "john.doe": NO, "jd@domain01.dom": NO}


@pytest.mark.daemons
def test_sender_login_map_lets_a_user_send_from_an_alias(ad: SambaAD, smtp_out: ServerView) -> None:
    # SMTP-out's smtpd_sender_login_maps: an alias (any case) is owned by its person, who may have logged in
    # with the account name or the primary address; a namesake's address belongs to the namesake.
    keys = ("jd@domain01.dom", "JOHN.DOE@domain02.dom", "john.doe@domain01.dom", "jsmith@domain02.dom")
    assert {k: _postmap(ad, smtp_out, "ldap-sender-login.cf", k) for k in keys} == {
        "jd@domain01.dom": "jdoe,john.doe@domain01.dom",
        "JOHN.DOE@domain02.dom": "jdoe,john.doe@domain01.dom",
        "john.doe@domain01.dom": "jdoe,john.doe@domain01.dom",
        "jsmith@domain02.dom": "jsmith02,jsmith@domain02.dom",
    }


@pytest.mark.daemons
def test_smtp_in_accepts_an_alias_as_a_recipient(ad: SambaAD, smtp_in: ServerView) -> None:
    # SMTP-in's relay_recipient_maps are the people and the aliases tables: an alias is a known recipient
    # (its answer only has to exist there), an X500 value or a stranger is not.
    keys = ("jd@domain01.dom", "john.doe@domain02.dom", "x500@domain01.dom", "nadie@domain02.dom")
    found = {k: (_postmap(ad, smtp_in, "ldap-people.cf", k), _postmap(ad, smtp_in, "ldap-groups.cf", k)) for k in keys}
    assert found == {
        "jd@domain01.dom": (None, "john.doe@domain01.dom"),
        "john.doe@domain02.dom": (None, "john.doe@domain01.dom"),
        "x500@domain01.dom": (None, None),
        "nadie@domain02.dom": (None, None),
    }


@pytest.mark.daemons
def test_dovecots_iterate_filter_paged_finds_every_user(ad: SambaAD, tmp_path: Path) -> None:
    # GIVEN more users than one LDAP page (Samba's and AD's MaxPageSize is 1000) WHEN Dovecot's rendered
    # iterate_filter runs as a paged search THEN every user with a mailbox is found, and only they
    requires("ldapsearch")
    assert ad.netns is not None
    ctx = _sample.context(Role.MAILSTORE).with_platform(directory=_directory(ad))
    conf = render_layer(ctx, os=load_profile("centos7", Role.MAILSTORE)).file("/etc/dovecot/dovecot-ldap.conf.ext")
    iterate = dict(re.findall(r"(?m)^(iterate_\w+) = (.*)$", conf.content))
    assert iterate["iterate_attrs"] == "mail=user"
    proc = subprocess.run(
        ["ip", "netns", "exec", ad.netns, "env", f"LDAPTLS_CACERT={ad.ca_cert_path}", "ldapsearch", "-x", "-LLL",
         "-o", "ldif-wrap=no", "-H", ad.ldaps_url, "-D", ad.bind_dn, "-w", ad.bind_password, "-b", ad.base_dn,
         "-E", "pr=500/noprompt", iterate["iterate_filter"], "mail"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = re.findall(r"(?m)^mail: (.*)$", proc.stdout)
    expected = [u.mail for u in SEED_USERS if u.mail] + [m for _, m in bulk_users()]
    assert len(found) > 1000
    assert sorted(found) == sorted(expected)
