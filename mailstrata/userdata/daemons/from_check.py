"""The header From check: a small milter on SMTP-out that refuses submitted mail whose `From:` is not the
logged-in user's own address (issue 9). Postfix already refuses a foreign envelope sender
(`smtpd_sender_login_maps` with `reject_authenticated_sender_login_mismatch`); without this, a user who keeps
his own envelope could still write a colleague's address in `From:`, which is what the recipient sees and
what OpenDKIM signs for the domain.

Choices, each with its reason:
- A milter of its own (`mailstrata-from-check`, a Python 3 script using the standard library only): no
  packaged milter does this check against a Postfix lookup table, pymilter has no trustworthy EPEL 7
  package, and the script runs on CentOS 7's Python 3.6 and Debian 12's 3.11 alike. It speaks only the
  part of the milter protocol Postfix needs, and negotiates away connect, HELO, RCPT, DATA and the body.
- Ownership comes from the very map Postfix uses for the envelope sender (`postfix.SENDER_LOGIN_MAP`,
  asked with `postmap -q`): the envelope and header checks cannot disagree about who owns what, and there
  is no second LDAP client, filter or bind password to keep in step. An address is the user's when the map
  lists the login or the address the user logged in as among its owners (both login forms work, as for
  the envelope).
- Only authenticated sessions are checked (Postfix sends the SASL login as `{auth_authen}` with MAIL);
  the internal relay (the mailstores' bounces and sieve forwards) has no AUTH and passes untouched.
- The verdict comes at the end of the headers (the body is never sent to it): exactly one From header,
  every address in it owned, else `550 5.7.1` with the address and the login in the text. A From that
  Python's RFC 5322 parser cannot read is refused rather than guessed at (a parser that reads it otherwise
  than the recipient's client is how such checks are bypassed).
- Order: the virus scan, then this check, then OpenDKIM (the role's `MILTER_ORDER`): nothing refused here
  is signed.
- Failure: a lookup that fails or times out defers the message (`451 4.3.0`). `postmap -q` exits 1 both
  for "not found" and for a directory error it only logs, so when an address has no owner the envelope
  sender, which Postfix found owned by this login a moment ago in the same map, is looked up too (or
  is that very address): no owner for it either means the directory is failing, and the message is
  deferred, not refused. One lookup costs about 80 ms (LDAPS to Samba AD, measured here). A milter that is down
  defers every message (`milter_default_action = tempfail`, Postfix's side); systemd restarts it.
- It runs as its own system user (`users.from_check`), with Postfix's group only as a supplementary group
  to read the map (`root:postfix 0640`: it holds the bind password); it listens on loopback only.
- Shared mailboxes: see `docs/defects.md`, "Who may send as whom". A distribution list (an AD group with
  a mail address) owns no address in the sender-login map, so nobody sends as it; members write from their
  own address and may put the list's address in `Reply-To:`, which is not checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstrata.userdata.daemons import postfix
from mailstrata.userdata.files import FileSpec
from mailstrata.userdata.profiles import OsProfile

SERVICE = "mailstrata-from-check"  # the systemd unit, and the name in the profiles' `services`
TEMPLATES = "from_check"


@dataclass(frozen=True, kw_only=True)
class FromCheck:
    """The milter's command line and its unit: where it listens, and how it asks Postfix's map."""

    script: str
    python: str
    host: str
    port: int
    postmap: str
    config_dir: str  # Postfix's, for `postmap -c` (the twin moves it)
    table: str  # the sender-login map, as Postfix names it in smtpd_sender_login_maps
    user: str
    map_group: str  # the map's group (Postfix's), given to the milter as a supplementary group


def milter_socket(os: OsProfile) -> str:
    """Where the milter listens, in libmilter's syntax (`inet:PORT@HOST`), as Postfix must name it."""
    return str(os.values.from_check_socket)


def settings(os: OsProfile) -> FromCheck:
    spec = milter_socket(os)
    if not spec.startswith("inet:") or "@" not in spec:
        raise ValueError(f"values.from_check_socket: expected inet:PORT@HOST, got {spec!r}")
    port, host = spec[len("inet:"):].split("@", 1)
    pdir = str(os.paths.postfix_dir)
    return FromCheck(
        script=str(os.paths.from_check_script),
        python=str(os.commands.python3),
        host=host,
        port=int(port),
        postmap=str(os.commands.postmap),
        config_dir=pdir,
        table=f"ldap:{pdir}/{postfix.SENDER_LOGIN_MAP}",
        user=str(os.users.from_check),
        map_group=str(os.users.postfix_group),
    )


def files(os: OsProfile) -> list[FileSpec]:
    """The milter script (root's, 0755) and its systemd unit."""
    check = settings(os)
    unit = f"{os.paths.systemd_unit_dir}/{SERVICE}.service"
    return [
        FileSpec(dest=check.script, template=f"{TEMPLATES}/usr/local/sbin/{SERVICE}.j2", context={"check": check},
                 mode="0755"),
        FileSpec(dest=unit, template=f"{TEMPLATES}/etc/systemd/system/{SERVICE}.service.j2",
                 context={"check": check}),
    ]
