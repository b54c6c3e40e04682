"""Clients for a running twin: SMTP, IMAP, POP3, ManageSieve and HTTPS, from a chosen 127.x address.

Every call runs in a thread that joined the twin's namespace (`in_netns`) and binds its socket to the
given source address, so a test can be "an Internet client" (outside every mynetworks), "a corporate
client", or "a load balancer" (a member reached directly, with a PROXY header, as an amphora would).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import imaplib
import poplib
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, TypeVar

from mailstrata.twin.netns import in_netns

T = TypeVar("T")
TIMEOUT = 30.0


def insecure_tls() -> ssl.SSLContext:
    """The servers' certificates are self-signed (as on a fresh platform): encrypt, do not verify."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def proxy_header(client: str, server: str, port: int) -> bytes:
    return f"PROXY TCP4 {client} {server} 40000 {port}\r\n".encode()


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    source: str  # the client's address
    proxy_as: str | None = None  # send a PROXY v1 header naming this client (a direct hop from "the LB")


def _connect(ep: Endpoint, timeout: float) -> socket.socket:
    sock = socket.create_connection((ep.host, ep.port), timeout=timeout, source_address=(ep.source, 0))
    if ep.proxy_as is not None:
        sock.sendall(proxy_header(ep.proxy_as, ep.host, ep.port))
    return sock


class SMTP(smtplib.SMTP):
    def __init__(self, ep: Endpoint, timeout: float = TIMEOUT, local_hostname: str = "mail.example.net") -> None:
        self._ep = ep
        super().__init__(local_hostname=local_hostname, timeout=timeout)
        self._host = ep.host  # STARTTLS sends it as the server name
        self.connect(ep.host, ep.port)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return _connect(self._ep, timeout)


class IMAP(imaplib.IMAP4):
    def __init__(self, ep: Endpoint, timeout: float = TIMEOUT) -> None:
        self._ep = ep
        super().__init__(ep.host, ep.port, timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return _connect(self._ep, timeout or TIMEOUT)


class IMAPS(imaplib.IMAP4_SSL):
    def __init__(self, ep: Endpoint, timeout: float = TIMEOUT) -> None:
        self._ep = ep
        super().__init__(ep.host, ep.port, ssl_context=insecure_tls(), timeout=timeout)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return self.ssl_context.wrap_socket(_connect(self._ep, timeout or TIMEOUT), server_hostname=self.host)


class POP3(poplib.POP3):
    def __init__(self, ep: Endpoint, timeout: float = TIMEOUT) -> None:
        self._ep = ep
        super().__init__(ep.host, ep.port, timeout=timeout)

    def _create_socket(self, timeout: float) -> socket.socket:
        return _connect(self._ep, timeout)


def run(netns: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return in_netns(netns, fn, *args, **kwargs)


def message(sender: str, to: str, subject: str, body: str = "Hello from the mailstrata twin.\n",
            message_id: str | None = None, extra: dict[str, str] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate()
    msg["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@example.net>"
    for k, v in (extra or {}).items():
        msg[k] = v
    msg.set_content(body)
    return msg


@contextlib.contextmanager
def imap_login(ep: Endpoint, user: str, password: str, *, starttls: bool = True) -> Iterator[IMAP]:
    conn = IMAP(ep)
    try:
        if starttls:
            conn.starttls(insecure_tls())
        conn.login(user, password)
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.logout()


def message_ids(conn: imaplib.IMAP4, mailbox: str = "INBOX") -> list[str]:
    """Message-IDs in `mailbox`, in order."""
    typ, count = conn.select(f'"{mailbox}"', readonly=True)
    if typ != "OK" or not count or count[0] in (b"0", None):
        return []
    typ, data = conn.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    out = []
    for item in data or []:
        if isinstance(item, tuple):
            for line in item[1].decode(errors="replace").splitlines():
                if line.lower().startswith("message-id:"):
                    out.append(line.split(":", 1)[1].strip())
    return out


def fetch_by_id(conn: imaplib.IMAP4, msgid: str, mailbox: str = "INBOX") -> bytes | None:
    conn.select(f'"{mailbox}"', readonly=True)
    typ, data = conn.search(None, "HEADER", "Message-ID", msgid)
    nums = data[0].split() if data and data[0] else []
    if not nums:
        return None
    typ, data = conn.fetch(nums[-1], "(BODY.PEEK[])")
    for item in data or []:
        if isinstance(item, tuple):
            return bytes(item[1])
    return None


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = 60.0, interval: float = 0.3) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


class ManageSieve:
    """A minimal RFC 5804 client: STARTTLS, AUTHENTICATE PLAIN, PUTSCRIPT, SETACTIVE, LISTSCRIPTS."""

    def __init__(self, ep: Endpoint, timeout: float = TIMEOUT) -> None:
        self.sock: Any = _connect(ep, timeout)
        self.file = self.sock.makefile("rb")
        self.capabilities = self._response()[0]

    def _line(self) -> bytes:
        return self.file.readline()

    def _response(self) -> tuple[list[bytes], bytes]:
        lines: list[bytes] = []
        while True:
            line = self._line()
            if not line:
                raise ConnectionError("ManageSieve: connection closed")
            if line.startswith((b"OK", b"NO", b"BYE")):
                return lines, line.strip()
            lines.append(line.strip())

    def command(self, text: str, literal: bytes | None = None) -> bytes:
        data = text.encode()
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        self.sock.sendall(data + b"\r\n")
        return self._response()[1]

    def starttls(self) -> bytes:
        status = self.command("STARTTLS")
        self.sock = insecure_tls().wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")
        self._response()  # the capabilities again
        return status

    def login(self, user: str, password: str) -> bytes:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.command(f'AUTHENTICATE "PLAIN" "{token}"')

    def put(self, name: str, script: str) -> bytes:
        return self.command(f'PUTSCRIPT "{name}"', script.encode())

    def activate(self, name: str) -> bytes:
        return self.command(f'SETACTIVE "{name}"')

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.command("LOGOUT")
        self.sock.close()
