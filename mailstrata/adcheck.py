"""The preflight check behind `mailstrata check-ad`: is the directory ready for the platform?

`run_check` connects to every directory URL the way the platform's daemons will (plain, StartTLS or
LDAPS), binds with the service account, and then, on the first server that accepted the bind, reads
what the daemons will read: the base DN, the users with a mail address in each served domain, their
quota attribute, and the groups that act as distribution lists.

Every line is plain words. Facts (`CheckReport.facts`), exactly:

- ``connect to <url> (<tls>): ok``
- ``bind as <bind DN>: ok``
- ``base DN <base DN>: ok``
- ``users with a mail address in <domain>: <n>``
- ``distribution lists: <mail> (<n> members), ...`` or ``distribution lists: none``
- ``warning: plain LDAP: the bind password crosses the network in clear (use starttls or ldaps)``
- ``warning: TLS certificates are not verified (--insecure-skip-verify)``

Problems (`CheckReport.problems`), exactly:

- ``cannot reach <url>: connection refused``
- ``cannot reach <url>: no answer within <timeout> s``
- ``cannot reach <url>: host name not found``
- ``cannot reach <url>: <the client library's error>``
- ``no directory URL given`` / ``no mail domain given``
- ``<url>: the scheme does not match tls '<tls>' (use <ldap|ldaps>://)``
- ``<url>: not an LDAP URL (e.g. <ldap|ldaps>://dc1.example.com)``
- ``TLS with <url> failed: the server certificate is not signed by a trusted CA (give the directory's
  CA certificate)``
- ``TLS with <url> failed: the server certificate does not name <host> (connect by a name it lists)``
- ``TLS with <url> failed: <the client library's error>``
- ``no bind password for <bind DN>``
- ``the bind password starts or ends with a space or tab, which Postfix and saslauthd drop (set one
  without; the deploy refuses it too)``
- ``the bind password spans several lines; no config file can hold it (set one on one line; the deploy
  refuses it too)``
- ``cannot bind as <bind DN>: invalid credentials (check the bind DN and password)``
- ``cannot bind as <bind DN>: <password expired / account disabled / locked out / ...>``
- ``cannot bind as <bind DN>: the server requires TLS or signing for simple binds (use starttls or
  ldaps)``
- ``base DN <base DN> does not exist``
- ``cannot read base DN <base DN>: <result> (<server message>)``
- ``no users with a mail address in <domain> under <base DN>``
- ``<login>: quota attribute '<attribute>' is '<value>', not a byte count (e.g. <bytes>)``
- ``cannot search <filter> under <base DN>: <result> (<server message>)``
- ``directory search failed: <the client library's error>`` (e.g. the server went away mid-check)

Searches run under the base DN with paging and without chasing referrals: from an AD domain root
the server answers with continuation references to the configuration and DNS partitions, which are
not users and would otherwise be followed (and may not resolve).
"""

from __future__ import annotations

import contextlib
import math
import re
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ldap3 import BASE, NO_ATTRIBUTES, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from mailstrata.directory import DirectorySettings, LdapTls

_PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
_PAGE_SIZE = 500  # below AD's default MaxPageSize of 1000
_EXAMPLE_QUOTA = 2 * 1024**3  # 2 GiB, the recipes' default quota
_BYTE_COUNT = re.compile(r"[0-9]+")
_HUMAN_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)
_INVALID_CREDENTIALS = "invalid credentials (check the bind DN and password)"
# The "data" code of AD's (and Samba's) bind failures, e.g. "80090308: LdapErr: ..., data 52e, v1db1".
_AD_BIND_DATA = {
    "52e": _INVALID_CREDENTIALS,
    "525": _INVALID_CREDENTIALS,  # no such user: AD's own code, but for an operator it is the same fix
    "530": "the account may not log on at this time",
    "531": "the account may not log on from this computer",
    "532": "the password has expired (set a new one)",
    "533": "the account is disabled",
    "701": "the account has expired",
    "773": "the password must be changed before first use (set a new one)",
    "775": "the account is locked out",
}


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    """What `run_check` found: facts to show, and problems that make the check fail."""

    facts: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self) -> str:
        """The report as text: facts, then ``problem: ...`` lines, then ``result: ok`` or a count."""
        lines = [*self.facts, *(f"problem: {p}" for p in self.problems)]
        n = len(self.problems)
        lines.append("result: ok" if n == 0 else f"result: {n} problem{'' if n == 1 else 's'}")
        return "\n".join(lines) + "\n"


@dataclass(kw_only=True)
class _Findings:
    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def report(self) -> CheckReport:
        return CheckReport(facts=tuple(self.facts), problems=tuple(self.problems))


class _SearchFailed(Exception):
    pass


def run_check(settings: DirectorySettings, *, timeout: float = 10.0, verify_tls: bool = True) -> CheckReport:
    """Check the directory described by `settings`; never raises for a directory problem.

    `timeout` bounds each connect and each answer, in seconds. `verify_tls=False` accepts any server
    certificate (for a lab directory with a self-signed one); the report then says so.
    """
    found = _Findings()
    if settings.tls is LdapTls.PLAIN:
        found.facts.append(
            "warning: plain LDAP: the bind password crosses the network in clear (use starttls or ldaps)"
        )
    elif not verify_tls:
        found.facts.append("warning: TLS certificates are not verified (--insecure-skip-verify)")
    if not settings.urls:
        found.problems.append("no directory URL given")
    if not settings.domains:
        found.problems.append("no mail domain given")
    if not settings.bind_password.ref:
        found.problems.append(f"no bind password for {settings.bind_dn}")
    else:
        found.problems.extend(_password_shape(settings.bind_password.ref))
    if found.problems:
        return found.report()

    bound: Connection | None = None
    for url in settings.urls:
        conn = _connect_and_bind(url, settings, timeout=timeout, verify_tls=verify_tls, found=found)
        if conn is None:
            continue
        if bound is None:
            bound = conn  # the directory is replicated: its content is read from one server
        else:
            _close(conn)
    if bound is None:
        return found.report()
    try:
        _check_content(bound, settings, found)
    except LDAPException as exc:
        found.problems.append(f"directory search failed: {exc}")
    finally:
        _close(bound)
    return found.report()


def _password_shape(password: str) -> list[str]:
    """What the deploy's variable validation (`AdBinding`) refuses, said before the directory is even asked:
    the same password works against AD here and would not in the servers' files."""
    if "\n" in password or "\r" in password:
        return ["the bind password spans several lines; no config file can hold it (set one on one line; the "
                "deploy refuses it too)"]
    if password != password.strip(" \t\v\f"):
        return ["the bind password starts or ends with a space or tab, which Postfix and saslauthd drop (set one "
                "without; the deploy refuses it too)"]
    return []


def _connect_and_bind(
    url: str, settings: DirectorySettings, *, timeout: float, verify_tls: bool, found: _Findings
) -> Connection | None:
    parts = urlsplit(url)
    want = "ldaps" if settings.tls is LdapTls.LDAPS else "ldap"
    if parts.scheme.lower() != want:
        found.problems.append(f"{url}: the scheme does not match tls '{settings.tls}' (use {want}://)")
        return None
    try:
        host, port = parts.hostname or "", parts.port or (636 if settings.tls is LdapTls.LDAPS else 389)
    except ValueError:  # a port that is not a number
        host = ""
    if not host:
        found.problems.append(f"{url}: not an LDAP URL (e.g. {want}://dc1.example.com)")
        return None
    tls = None
    if settings.uses_tls:
        tls = Tls(
            validate=ssl.CERT_REQUIRED if verify_tls else ssl.CERT_NONE,
            ca_certs_data=settings.ca_cert_pem,  # None: the system's trusted CAs
        )
    server = Server(
        host,
        port=port,
        use_ssl=settings.tls is LdapTls.LDAPS,
        tls=tls,
        get_info=NONE,
        connect_timeout=timeout,
    )
    conn = Connection(
        server,
        user=settings.bind_dn,
        password=settings.bind_password.ref,
        auto_referrals=False,  # AD refers to partitions that are not users and often do not resolve
        read_only=True,
        receive_timeout=math.ceil(timeout),  # ldap3 packs it into SO_RCVTIMEO as whole seconds: an int
        raise_exceptions=False,
    )
    try:
        conn.open(read_server_info=False)
        if settings.tls is LdapTls.STARTTLS and not conn.start_tls(read_server_info=False):
            found.problems.append(f"TLS with {url} failed: StartTLS refused: {_result_text(conn.result)}")
            _close(conn)
            return None
    except LDAPException as exc:
        found.problems.append(_open_error(url, host, exc, timeout))
        _close(conn)
        return None
    found.facts.append(f"connect to {url} ({settings.tls}): ok")
    try:
        bound = conn.bind()
    except LDAPException as exc:
        found.problems.append(f"cannot bind as {settings.bind_dn}: {exc}")
        _close(conn)
        return None
    if not bound:
        found.problems.append(f"cannot bind as {settings.bind_dn}: {_bind_error(conn.result)}")
        _close(conn)
        return None
    found.facts.append(f"bind as {settings.bind_dn}: ok")
    return conn


def _close(conn: Connection) -> None:
    with contextlib.suppress(LDAPException):  # a socket a failed TLS handshake broke cannot say goodbye
        conn.unbind()


def _open_error(url: str, host: str, exc: LDAPException, timeout: float) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            f"TLS with {url} failed: the server certificate is not signed by a trusted CA "
            "(give the directory's CA certificate)"
        )
    if "doesn't match any name" in text:
        return (
            f"TLS with {url} failed: the server certificate does not name {host} (connect by a name it lists)"
        )
    if "wrap socket error" in text or "ssl wrapping error" in text:
        return f"TLS with {url} failed: {text}"
    lowered = text.lower()
    if "connection refused" in lowered:
        return f"cannot reach {url}: connection refused"
    if "timed out" in lowered:
        return f"cannot reach {url}: no answer within {timeout:g} s"
    if "name or service not known" in lowered or "name resolution" in lowered or "nodename nor" in lowered:
        return f"cannot reach {url}: host name not found"
    return f"cannot reach {url}: {text}"


def _bind_error(result: dict[str, Any] | None) -> str:
    result = result or {}
    code = result.get("result")
    message = str(result.get("message") or "")
    data = re.search(r"\bdata ([0-9a-f]+)\b", message)
    if data and data.group(1) in _AD_BIND_DATA:
        return _AD_BIND_DATA[data.group(1)]
    if code == 49:
        return _INVALID_CREDENTIALS
    if code == 8:
        return "the server requires TLS or signing for simple binds (use starttls or ldaps)"
    return _result_text(result)


def _result_text(result: dict[str, Any] | None) -> str:
    result = result or {}
    description = result.get("description") or f"result {result.get('result')}"
    message = str(result.get("message") or "").strip()
    return f"{description} ({message})" if message else str(description)


def _check_content(conn: Connection, settings: DirectorySettings, found: _Findings) -> None:
    if not _base_dn_exists(conn, settings.base_dn, found):
        return  # everything else is searched under it
    a = settings.attributes
    quota_problems: list[str] = []
    for domain in settings.domains:
        flt = f"(&(objectClass={a.person_class})({a.mail}=*@{escape_filter_chars(domain)}))"
        try:
            users = _paged_search(conn, settings.base_dn, flt, [a.login, a.mail, a.quota])
        except _SearchFailed as exc:
            found.problems.append(str(exc))
            continue
        if users:
            found.facts.append(f"users with a mail address in {domain}: {len(users)}")
        else:
            found.problems.append(f"no users with a mail address in {domain} under {settings.base_dn}")
        for dn, attrs in users:
            for value in attrs.get(a.quota.lower(), []):
                if not _BYTE_COUNT.fullmatch(value):
                    name = (attrs.get(a.login.lower()) or [dn])[0]
                    quota_problems.append(
                        f"{name}: quota attribute '{a.quota}' is '{value}', not a byte count "
                        f"(e.g. {_suggest_bytes(value)})"
                    )
    found.problems.extend(sorted(quota_problems))
    lists: list[str] = []
    for domain in settings.domains:
        flt = f"(&(objectClass={a.group_class})({a.mail}=*@{escape_filter_chars(domain)}))"
        try:
            groups = _paged_search(conn, settings.base_dn, flt, [a.mail, a.member])
        except _SearchFailed as exc:
            found.problems.append(str(exc))
            continue
        for _dn, attrs in groups:
            lists.append(_describe_list(attrs, a.mail.lower(), a.member.lower()))
    found.facts.append(f"distribution lists: {', '.join(sorted(lists)) if lists else 'none'}")


def _base_dn_exists(conn: Connection, base_dn: str, found: _Findings) -> bool:
    conn.search(base_dn, "(objectClass=*)", search_scope=BASE, attributes=[NO_ATTRIBUTES])
    result = conn.result or {}
    entries = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
    if result.get("result") == 0 and entries:
        found.facts.append(f"base DN {base_dn}: ok")
        return True
    if result.get("result") in (32, 10):  # noSuchObject, or a referral: it is not in this directory
        found.problems.append(f"base DN {base_dn} does not exist")
    else:
        found.problems.append(f"cannot read base DN {base_dn}: {_result_text(result)}")
    return False


def _paged_search(
    conn: Connection, base_dn: str, flt: str, attributes: list[str]
) -> list[tuple[str, dict[str, list[str]]]]:
    """Entries (DN, lower-case attribute name -> values) of a paged subtree search; references dropped."""
    entries: list[tuple[str, dict[str, list[str]]]] = []
    cookie: bytes | None = None
    while True:
        conn.search(
            base_dn,
            flt,
            search_scope=SUBTREE,
            attributes=attributes,
            paged_size=_PAGE_SIZE,
            paged_cookie=cookie,
        )
        result = conn.result or {}
        if result.get("result") not in (0, 10):  # a referral result still carries the entries found
            raise _SearchFailed(f"cannot search {flt} under {base_dn}: {_result_text(result)}")
        for entry in conn.response or []:
            if entry.get("type") != "searchResEntry":
                continue  # continuation references to other partitions
            raw: dict[str, list[bytes]] = entry.get("raw_attributes") or {}
            attrs = {k.lower(): [v.decode("utf-8", "replace") for v in vals] for k, vals in raw.items()}
            entries.append((str(entry.get("dn", "")), attrs))
        controls = result.get("controls") or {}
        cookie = controls.get(_PAGED_RESULTS_OID, {}).get("value", {}).get("cookie") or None
        if not cookie:
            return entries


def _describe_list(attrs: dict[str, list[str]], mail: str, member: str) -> str:
    address = (attrs.get(mail) or ["?"])[0]
    values: list[str] = []
    ranged = False
    for name, vals in attrs.items():
        if name == member or name.startswith(f"{member};range="):
            values += vals
            ranged = ranged or ";range=" in name  # AD sends large groups in ranges: this is the first
    n = len(values)
    count = f"{'at least ' if ranged else ''}{n} member{'' if n == 1 else 's'}"
    return f"{address} ({count})"


def _suggest_bytes(value: str) -> int:
    """`value` in bytes when it reads as a size (2GB, 500M, 1.5 GiB; 1024-based, as Dovecot reads them)."""
    match = _HUMAN_SIZE.fullmatch(value)
    if not match or not match.group(2):
        return _EXAMPLE_QUOTA
    power = "kmgt".index(match.group(2).lower()) + 1
    return int(float(match.group(1)) * 1024**power)
