"""What the twin tests do to the platform, named the way the behaviours are written.

Addresses: "the Internet" is 127.200.0.1 (outside every network of the platform), a corporate client is
127.100.0.10, and a test that reaches one member directly plays the load balancer: it connects from the
layer's amphora address (on the members' subnet, where Octavia's amphorae reach members from and the only
source the security groups admit on the member ports) and sends the PROXY header an amphora would send.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from mailstrata.twin import clients as c
from mailstrata.twin.twin import Twin, TwinInfo, members_not_up

T = TypeVar("T")


@dataclass
class Platform:
    info: TwinInfo
    twin: Twin

    # ---- addresses --------------------------------------------------------------------------------

    @property
    def internet(self) -> str:
        return self.info.internet.split("/")[0].rsplit(".", 1)[0] + ".1"

    @property
    def corporate(self) -> str:
        return self.info.corporate_client

    def vip(self, role: str) -> str:
        return self.info.vip(role)

    def amphora(self, role: str) -> str:
        """The address `role`'s load balancer reaches its members from (its amphora's member-side port)."""
        return self.info.amphorae[role]

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return c.run(self.info.netns, fn, *args, **kwargs)

    def password(self, login: str) -> str:
        return str(self.info.users[login]["password"])

    # ---- SMTP -------------------------------------------------------------------------------------

    def smtp(self, role: str, port: int, source: str) -> c.SMTP:
        return c.SMTP(c.Endpoint(self.vip(role), port, source))

    def session(self, role: str, port: int, source: str, steps: Callable[[c.SMTP], T]) -> T:
        def go() -> T:
            s = self.smtp(role, port, source)
            try:
                return steps(s)
            finally:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    s.quit()

        return self.run(go)

    def send(self, msg: EmailMessage, *, rcpts: list[str] | None = None, sender: str | None = None,
             role: str = "smtp_in", port: int = 25, source: str | None = None,
             login: tuple[str, str] | None = None, helo: str = "mail.example.net") -> dict[str, tuple[int, bytes]]:
        """Send `msg`; returns the refused recipients (smtplib's dict). Raises on a refused message."""
        def steps(s: c.SMTP) -> dict[str, tuple[int, bytes]]:
            s.ehlo(helo)
            if login is not None or port == 587:
                s.starttls(context=c.insecure_tls())
                s.ehlo(helo)
            if login is not None:
                s.login(*login)
            return s.send_message(msg, from_addr=sender, to_addrs=rcpts)

        return self.session(role, port, source or self.internet, steps)

    def rcpt_reply(self, to: str, *, sender: str = "alice@example.net", source: str | None = None,
                   role: str = "smtp_in", port: int = 25, helo: str = "mail.example.net") -> tuple[int, str]:
        """The reply to RCPT TO (or the earlier refusal), without sending a message."""
        def steps(s: c.SMTP) -> tuple[int, str]:
            code, text = s.ehlo(helo)
            if code >= 400:
                return code, text.decode()
            code, text = s.mail(sender)
            if code >= 400:
                return code, text.decode()
            code, text = s.rcpt(to)
            return code, text.decode()

        return self.session(role, port, source or self.internet, steps)

    # ---- mailboxes --------------------------------------------------------------------------------

    def mailstores(self) -> list[str]:
        return [s.address for s in self.info.servers_of("mailstore")]

    @contextlib.contextmanager
    def imap(self, login: str, *, server: str | None = None, password: str | None = None) -> Iterator[c.IMAP]:
        """IMAP as `login` (STARTTLS): through the mailstore VIP, or to one server directly as its LB would."""
        if server is None:
            ep = c.Endpoint(self.vip("mailstore"), 143, self.corporate)
        else:
            ep = c.Endpoint(server, 143, self.amphora("mailstore"), proxy_as=self.corporate)
        with c.imap_login(ep, login, password or self.password(login)) as conn:
            yield conn

    def ids(self, login: str, mailbox: str = "INBOX", *, server: str | None = None) -> list[str]:
        def go() -> list[str]:
            with self.imap(login, server=server) as conn:
                return c.message_ids(conn, mailbox)

        return self.run(go)

    def fetch(self, login: str, msgid: str, mailbox: str = "INBOX", *, server: str | None = None) -> bytes | None:
        def go() -> bytes | None:
            with self.imap(login, server=server) as conn:
                return c.fetch_by_id(conn, msgid, mailbox)

        return self.run(go)

    def wait_delivered(self, login: str, msgids: list[str] | str, mailbox: str = "INBOX", *,
                       server: str | None = None, timeout: float = 60.0) -> list[str]:
        wanted = [msgids] if isinstance(msgids, str) else list(msgids)

        def arrived() -> list[str] | None:
            have = self.ids(login, mailbox, server=server)
            return have if all(m in have for m in wanted) else None

        return c.wait_for(arrived, f"{len(wanted)} message(s) in {login}'s {mailbox}", timeout=timeout)

    def absent_after(self, login: str, msgid: str, seconds: float, mailbox: str = "INBOX") -> bool:
        """True if `msgid` is still not in the mailbox after `seconds`."""
        time.sleep(seconds)
        return msgid not in self.ids(login, mailbox)

    # ---- logs and load balancers ------------------------------------------------------------------

    def log(self, server: str, name: str) -> str:
        path = Path(self.info.logs) / server / name
        return path.read_text(errors="replace") if path.is_file() else ""

    def logs(self, role: str, name: str) -> str:
        return "".join(self.log(s.name, name) for s in self.info.servers_of(role))

    def wait_log(self, role: str, name: str, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        rx = re.compile(pattern)
        return c.wait_for(lambda: rx.search(self.logs(role, name)), f"/{pattern}/ in {role}'s {name}",
                          timeout=timeout)

    def members_down(self, role: str) -> list[str]:
        return members_not_up(self.info.netns, self.info.haproxy_sockets[role])


def message(to: str, subject: str, *, sender: str = "alice@example.net", body: str | None = None,
            extra: dict[str, str] | None = None) -> EmailMessage:
    return c.message(sender, to, subject, body or f"{subject}\n", extra=extra)


@dataclass(frozen=True)
class WebSession:
    status: int
    body: bytes
    headers: dict[str, str]


def sogo(platform: Platform, user: str, password: str, *,
         view_inbox: bool = False) -> tuple[WebSession, WebSession | None]:
    """Log in to SOGo through the webmail VIP (POST /SOGo/connect); optionally list the INBOX as the UI does."""
    import http.client
    import json

    def go() -> tuple[WebSession, WebSession | None]:
        conn = http.client.HTTPSConnection(platform.vip("webmail"), 443, source_address=(platform.internet, 0),
                                           context=c.insecure_tls(), timeout=60)
        conn.request("POST", "/SOGo/connect", body=json.dumps({"userName": user, "password": password}),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        login = WebSession(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()})
        if not view_inbox or login.status != 200:
            return login, None
        cookies = [v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie"]
        headers = {"Cookie": "; ".join(cookies), "Content-Type": "application/json"}
        xsrf = [x.split("=", 1)[1] for x in cookies if x.startswith("XSRF-TOKEN=")]
        if xsrf:
            headers["X-XSRF-TOKEN"] = xsrf[0]  # SOGo 5's CSRF protection
        conn.request("POST", f"/SOGo/so/{user}/Mail/0/folderINBOX/view",
                     body=json.dumps({"sortingAttributes": {"sort": "arrival", "asc": 0}}), headers=headers)
        r = conn.getresponse()
        return login, WebSession(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()})

    return platform.run(go)
