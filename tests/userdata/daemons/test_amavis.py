"""amavisd-new's quarantine and its release, run for real: what is discarded after a 250 stays retrievable.

The smtp_in role is rendered for Debian 12 with the profile relocated under a scratch root (the mechanism
the local twin uses), the role script makes amavisd's directories, and clamd, amavisd and Postfix's
`smtp-sink` (standing in for the re-injection smtpd on 127.0.0.1:10025) run in a network namespace with
only `lo`. Messages go to amavisd over SMTP; the quarantine ID is read from amavisd's log, as an operator
reads it; the release is the documented command, `mailstrata-quarantine release ID`, which calls Debian's
real `amavisd-release`.

`amavisd-release` has its socket path compiled in (/var/lib/amavis/amavisd.sock) and takes no option, so
the release runs in a private mount namespace where the relocated /var/lib/amavis is bind-mounted over
the host's: the rendered `$unix_socketname` must be exactly the path the program looks at.

Test-side additions, named where they are made: a one-signature ClamAV database (no freshclam), clamd in
the foreground, amavisd's host name (the sample's is short), two amavisd children instead of 16 (speed),
a banned-file rule (the platform bans no file names; the rule exercises the banned quarantine), /etc/aliases
for the role script's postalias, and the log directories Debian's packages make.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml

from mailstrata.config import parse_config
from mailstrata.roles import Role
from mailstrata.twin.samba import private_netns
from mailstrata.userdata.context import LayerContext
from mailstrata.userdata.from_config import platform_context
from mailstrata.userdata.profiles import OsProfile, _Attrs, load_profile
from mailstrata.userdata.render import render_layer
from tests.config._support import MINIMAL_YAML
from tests.support import contexts
from tests.support.daemons import listening, scratch_dir, stop, wait_for
from tests.support.requires import requires, unavailable
from tests.support.server_view import install_files
from tests.userdata import _sample

ROLE = Role.SMTP_IN
PROFILE = load_profile("debian12", ROLE)
RELEASE = "/usr/sbin/amavisd-release"
EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
SENDER = "sender@example.org"
RECIPIENT = "usuario01@domain01.dom"
BANNED_SUFFIX = ".mstest-banned"  # test-side: the one file name the test's banned rule blocks


def rendered(ctx: LayerContext, os_profile: OsProfile = PROFILE) -> dict[str, str]:
    return {f.path: f.content for f in render_layer(ctx, os=os_profile).files if not f.b64}


def cron_jobs(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and ln[0].isdigit()]


# ==== static: the agreements the release depends on ====================================================


@pytest.mark.daemons
def test_amavisd_listens_for_releases_where_debians_amavisd_release_connects() -> None:
    requires("amavisd-release", why="its compiled-in socket path is the agreement under test")
    compiled = re.findall(r"^\s*\$socketname = '([^']+)';", Path(RELEASE).read_text(), re.M)
    conf = rendered(_sample.context(ROLE))[PROFILE.paths.amavisd_conf]
    assert re.findall(r"^\$unix_socketname = '([^']+)';", conf, re.M) == compiled


def test_quarantine_days_from_the_config_reach_the_cleanup_cron() -> None:
    # GIVEN a config that keeps quarantined mail 30 days
    cfg = parse_config({**_yaml(MINIMAL_YAML), "mail": {"spam": {"quarantine_days": 30}}})
    spam = platform_context(cfg, vips=dict.fromkeys(Role, "10.20.0.9"), directory=contexts.DIRECTORY).spam
    # WHEN the MX is rendered with it THEN the clean-up job deletes quarantined files older than 30 days
    files = rendered(_sample.context(ROLE).with_platform(spam=spam))
    assert cron_jobs(files[PROFILE.paths.amavis_cleanup_cron])[1] == (
        "42 3 * * * amavis find /var/lib/amavis/virusmails -type f -mtime +30 -delete"
    )


def test_quarantine_days_default_to_14() -> None:
    assert parse_config(_yaml(MINIMAL_YAML)).mail.spam.quarantine_days == 14


def test_quarantine_tool_is_root_only() -> None:
    f = render_layer(_sample.context(ROLE), os=PROFILE).file(PROFILE.paths.amavis_quarantine_tool)
    assert (f.owner, f.mode) == ("root:root", "0700")


@pytest.mark.daemons
def test_quarantine_tool_passes_shellcheck(tmp_path: Path) -> None:
    requires("shellcheck")
    script = tmp_path / "mailstrata-quarantine"
    script.write_text(rendered(_sample.context(ROLE))[PROFILE.paths.amavis_quarantine_tool])
    proc = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "")


@pytest.mark.daemons
def test_cleanup_cron_deletes_only_quarantined_mail_past_the_retention(tmp_path: Path) -> None:
    # The rendered job's command, run by find itself on a quarantine with a 15- and a 13-day-old file.
    requires("find")
    relocated = _profile(tmp_path)
    job = cron_jobs(rendered(_sample.context(ROLE), relocated)[relocated.paths.amavis_cleanup_cron])[1]
    quarantine = Path(relocated.paths.amavis_quarantine_dir)
    quarantine.mkdir(parents=True)
    now = time.time()
    for name, days in (("spam-old000000001", 15), ("spam-new000000001", 13)):
        (quarantine / name).write_text("x")
        os.utime(quarantine / name, (now - days * 86400, now - days * 86400))
    command = job.split(None, 6)[6]  # minute hour day month weekday user command
    subprocess.run(["sh", "-c", command], check=True, timeout=60)
    assert sorted(p.name for p in quarantine.iterdir()) == ["spam-new000000001"]


# ==== live: clamd + amavisd + smtp-sink in a namespace =================================================


@dataclasses.dataclass
class Live:
    ns: str
    root: Path
    profile: OsProfile
    sink: Path
    role_script: subprocess.CompletedProcess[str]
    amavisd: subprocess.Popen[bytes]  # amavisd's parent (`ip netns exec` execs it)
    clamd: subprocess.Popen[bytes]

    @property
    def quarantine(self) -> Path:
        return Path(self.profile.paths.amavis_quarantine_dir)

    @property
    def log(self) -> Path:
        return Path(self.profile.paths.amavis_log)

    def send(self, message: EmailMessage) -> tuple[int, str]:
        """One SMTP transaction to amavisd (127.0.0.1:10024): its reply to DATA."""
        script = (
            "import smtplib, sys\n"
            "s = smtplib.SMTP('127.0.0.1', 10024, timeout=120)\n"
            f"s.ehlo('localhost'); s.mail('{SENDER}'); s.rcpt('{RECIPIENT}')\n"
            "code, text = s.data(sys.stdin.buffer.read()); s.quit()\n"
            "print(code); print(text.decode())\n"
        )
        proc = subprocess.run(
            ["ip", "netns", "exec", self.ns, sys.executable, "-c", script],
            input=message.as_bytes(), capture_output=True, timeout=180,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode()
        code, text = proc.stdout.decode().splitlines()[:2]
        return int(code), text

    def quarantine_id(self, message_id: str) -> str:
        """The quarantine ID amavisd logged for `message_id` ("quarantine: spam-AbC..."), as an operator finds it."""
        found: list[str] = []

        def logged() -> bool:
            found[:] = [m.group(1) for ln in self.log.read_text().splitlines()
                        if message_id in ln and (m := re.search(r"quarantine: ([^,\s]+)", ln))]  # fmt: skip
            return bool(found)

        wait_for(logged, f"amavisd logging the quarantine of {message_id}", timeout=30, interval=0.2,
                 log=lambda: "\n".join(self.log.read_text().splitlines()[-5:]))  # fmt: skip
        return found[0]

    def tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The documented command, with Debian's amavisd-release seeing the relocated /var/lib/amavis."""
        home = self.profile.paths.amavis_home
        mount = 'mount --bind "$1" /var/lib/amavis && shift && exec "$@"'
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation", "private",
             "sh", "-c", mount, "sh", home, self.profile.paths.amavis_quarantine_tool, *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def forwarded(self, message_id: str) -> list[str]:
        """The messages (as the sink dumped them) that reached the re-injection address with `message_id`."""
        return [t for p in sorted(self.sink.iterdir()) if message_id in (t := p.read_text(errors="replace"))]


def envelope(dumped: str) -> list[tuple[str, str]]:
    """smtp-sink's record of the envelope: MAIL FROM and each RCPT TO address (their ESMTP options left out)."""
    return re.findall(r"^(X-Mail-Args|X-Rcpt-Args): (<[^>]*>)", dumped, re.M)


def _yaml(text: str) -> dict[str, object]:
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def _profile(root: Path) -> OsProfile:
    relocated = PROFILE.relocated(str(root))
    # The namespace has no syslog: amavisd logs to its file (the profile's amavis_log).
    return dataclasses.replace(relocated, values=_Attrs("test.values", {**relocated.values, "syslog": False}))


def _write(root: Path, ctx: LayerContext) -> OsProfile:
    """Render `ctx` relocated under `root`; write each file with its owner and mode, parents 0755."""
    relocated = _profile(root)
    install_files(render_layer(ctx, os=relocated).files, root)
    return relocated


def _message(subject: str, body: str, attachment: tuple[str, bytes] | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, RECIPIENT, subject
    msg["Date"] = "Sun, 29 Nov 2026 10:00:00 +0000"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.org>"
    msg.set_content(body)
    if attachment:
        msg.add_attachment(attachment[1], maintype="application", subtype="octet-stream", filename=attachment[0])
    return msg


@contextlib.contextmanager
def _running(name: str) -> Iterator[Live]:
    """The smtp_in role's clamd and amavisd, and smtp-sink on the re-injection port, in a namespace of their own."""
    requires("amavisd", "amavisd-release", "clamd", "smtp-sink", "postmap", "postalias", "unshare", "ip", root=True)
    try:
        pwd.getpwnam("amavis")
    except KeyError:
        unavailable("the amavis user does not exist", why="amavisd runs as amavis", install="make deps-apt")
    if not Path("/var/lib/amavis").is_dir():
        unavailable("/var/lib/amavis does not exist", why="the release binds the relocated home over it",
                    install="make deps-apt installs amavisd-new")  # fmt: skip
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(scratch_dir(f"amavis-{name}"))
        ns = stack.enter_context(private_netns(f"mstest-aq-{uuid.uuid4().hex[:6]}"))
        srv = root / "srv"
        profile = _write(srv, _sample.context(ROLE))
        p = profile.paths
        # Test-side: what the OS and Debian's packages provide on a real server.
        (srv / "etc/aliases").write_text("postmaster: root\n")
        for d in (Path(p.amavis_log).parent, Path(p.clamd_amavis_log).parent, Path(p.clamav_db_dir)):
            d.mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "amavis", "amavis")
        # Test-side: amavis's home (the release socket's directory) and its quarantine exist already, root's
        # and world-readable, as an image (or the twin's folder layout) can leave them: the role script must
        # hand both to amavis, or amavisd cannot create its socket and the quarantine is readable by all.
        Path(p.amavis_quarantine_dir).mkdir(parents=True, mode=0o755)
        role_script = subprocess.run(["bash", p.role_script], capture_output=True, text=True, timeout=120)
        # Test-side: a one-signature database, clamd in the foreground.
        signature = f"Mailstrata.Test.EICAR:0:*:{EICAR.encode().hex()}\n"
        (Path(p.clamav_db_dir) / "mailstrata-test.ndb").write_text(signature)
        clamd_conf = Path(p.clamd_amavis_conf)
        clamd_conf.write_text(clamd_conf.read_text() + "Foreground yes\n")
        conf = Path(p.amavisd_conf)
        text = conf.read_text()
        end = text.rindex("1;")
        conf.write_text(
            text[:end]
            + "# test-side: an FQDN (the sample's host name is short), two children, one banned file name\n"
            + "$myhostname = 'smtp-in-01.test';\n$max_servers = 2;\n"
            + f"$banned_filename_re = new_RE(qr'{re.escape(BANNED_SUFFIX)}$'i);\n"
            + text[end:]
        )
        sink = root / "sink"
        sink.mkdir()
        shutil.chown(sink, "nobody")
        # smtp-sink dumps each message it accepts into a file of its own in `sink`.
        for argv in (["smtp-sink", "-u", "nobody", "-d", f"{sink}/%Y%m%d%H%M%S.", "127.0.0.1:10025", "16"],
                     ["clamd", f"--config-file={clamd_conf}"]):  # fmt: skip
            proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            stack.callback(stop, proc, 20)
        clamd = proc
        wait_for(lambda: listening(ns, p.clamd_amavis_socket), "clamd listening", interval=0.2)
        amavisd = subprocess.Popen(["ip", "netns", "exec", ns, "amavisd", "-c", str(conf), "foreground"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        stack.callback(stop, amavisd, 20)
        log = Path(p.amavis_log)
        wait_for(lambda: listening(ns, "127.0.0.1:10024") and listening(ns, p.amavis_socket), "amavisd listening",
                 timeout=120, interval=0.2, log=lambda: log.read_text() if log.exists() else "(no log)")  # fmt: skip
        wait_for(lambda: listening(ns, "127.0.0.1:10025"), "smtp-sink listening", interval=0.2)
        yield Live(ns=ns, root=root, profile=profile, sink=sink, role_script=role_script, amavisd=amavisd,
                   clamd=clamd)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    with _running("quarantine") as running:
        yield running


@dataclasses.dataclass(frozen=True)
class Sent:
    message_id: str
    code: int
    reply: str
    quarantine_id: str


def _send_and_find(live: Live, message: EmailMessage) -> Sent:
    code, reply = live.send(message)
    mid = str(message["Message-ID"])
    return Sent(message_id=mid, code=code, reply=reply, quarantine_id=live.quarantine_id(mid))


@pytest.fixture(scope="module")
def gtube(live: Live) -> Sent:
    return _send_and_find(live, _message("gtube", GTUBE))


@pytest.fixture(scope="module")
def eicar(live: Live) -> Sent:
    return _send_and_find(live, _message("eicar", "See the attachment.", ("eicar.com", EICAR.encode())))


@pytest.fixture(scope="module")
def banned(live: Live) -> Sent:
    return _send_and_find(live, _message("banned", "See the attachment.", (f"report{BANNED_SUFFIX}", b"data")))


@pytest.fixture(scope="module")
def released(live: Live, gtube: Sent) -> subprocess.CompletedProcess[str]:
    return live.tool("release", gtube.quarantine_id)


@pytest.mark.daemons
def test_role_script_hands_the_existing_quarantine_and_socket_directory_to_amavis(live: Live) -> None:
    dirs = (live.quarantine, Path(live.profile.paths.amavis_socket).parent)
    got = [(pwd.getpwuid(d.stat().st_uid).pw_name, oct(d.stat().st_mode & 0o777)) for d in dirs]
    assert (live.role_script.returncode, live.role_script.stderr, got) == (0, "", [("amavis", "0o750")] * 2)


@pytest.mark.daemons
def test_gtube_gets_250_and_is_discarded(gtube: Sent) -> None:
    assert (gtube.code, re.sub(r"id=\S+ ", "id=X ", gtube.reply)) == (250, "2.7.0 Ok, discarded, id=X - spam")


@pytest.mark.daemons
def test_discarded_gtube_is_not_forwarded(live: Live, gtube: Sent) -> None:
    # amavisd forwards before it answers the DATA; once it has answered, a forwarded copy is at the sink.
    assert live.forwarded(gtube.message_id) == []


@pytest.mark.daemons
def test_discarded_gtube_is_a_file_in_the_quarantine(live: Live, gtube: Sent) -> None:
    path = live.quarantine / gtube.quarantine_id
    st = path.stat()
    assert (gtube.quarantine_id.startswith("spam-"), gtube.message_id in path.read_text(),
            pwd.getpwuid(st.st_uid).pw_name, oct(st.st_mode & 0o777)) == (True, True, "amavis", "0o640")  # fmt: skip


@pytest.mark.daemons
def test_list_shows_the_quarantined_message(live: Live, gtube: Sent) -> None:
    proc = live.tool("list")
    rows = [ln.split("\t")[1:] for ln in proc.stdout.splitlines()]
    assert (proc.returncode, [gtube.quarantine_id, f"<{SENDER}>", f"<{RECIPIENT}>", "gtube"] in rows) == (0, True)


@pytest.mark.daemons
def test_show_prints_the_quarantined_message(live: Live, gtube: Sent) -> None:
    proc = live.tool("show", gtube.quarantine_id)
    assert (proc.returncode, proc.stdout) == (0, (live.quarantine / gtube.quarantine_id).read_text())


@pytest.mark.daemons
def test_release_is_accepted_by_the_reinjection_address(released: subprocess.CompletedProcess[str]) -> None:
    assert (released.returncode, released.stdout.splitlines()[-1]) == (
        0, "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok",
    )  # fmt: skip


@pytest.mark.daemons
def test_released_gtube_arrives_at_the_reinjection_address_for_its_recipient(
    live: Live, gtube: Sent, released: subprocess.CompletedProcess[str]
) -> None:
    wait_for(lambda: bool(live.forwarded(gtube.message_id)), "the released message at the sink", timeout=30)
    [text] = live.forwarded(gtube.message_id)
    assert envelope(text) == [("X-Mail-Args", f"<{SENDER}>"), ("X-Rcpt-Args", f"<{RECIPIENT}>")]


@pytest.mark.daemons
def test_release_to_another_recipient(live: Live) -> None:
    sent = _send_and_find(live, _message("gtube for the postmaster", GTUBE))
    proc = live.tool("release", sent.quarantine_id, "postmaster@domain01.dom")
    wait_for(lambda: bool(live.forwarded(sent.message_id)), "the released message at the sink", timeout=30)
    assert (proc.returncode, envelope(live.forwarded(sent.message_id)[0])) == (
        0, [("X-Mail-Args", f"<{SENDER}>"), ("X-Rcpt-Args", "<postmaster@domain01.dom>")],
    )  # fmt: skip


@pytest.mark.daemons
def test_release_of_an_unknown_id_fails(live: Live) -> None:
    proc = live.tool("release", "spam-AAAAAAAAAAAA")
    assert (proc.returncode, proc.stderr.strip()) == (
        1, f"mailstrata-quarantine: no quarantined message spam-AAAAAAAAAAAA in {live.quarantine} "
           "(see: mailstrata-quarantine list)",
    )  # fmt: skip


@pytest.mark.daemons
def test_release_that_amavisd_refuses_fails(live: Live) -> None:
    # amavisd-release exits 0 whatever amavisd answers; the tool reads the answer. A file root can see but
    # amavisd's child (user amavis) cannot open passes the tool's own check and is refused by amavisd.
    unreadable = live.quarantine / "spam-BBBBBBBBBBBB"
    unreadable.write_text("")
    unreadable.chmod(0)
    proc = live.tool("release", unreadable.name)
    assert (proc.returncode, proc.stderr[:4]) == (1, "450 ")


@pytest.mark.daemons
def test_virus_gets_250_and_is_quarantined(live: Live, eicar: Sent) -> None:
    assert (eicar.code, eicar.quarantine_id.startswith("virus-"), (live.quarantine / eicar.quarantine_id).is_file(),
            live.forwarded(eicar.message_id)) == (250, True, True, [])  # fmt: skip


@pytest.mark.daemons
def test_banned_attachment_gets_250_and_is_quarantined(live: Live, banned: Sent) -> None:
    assert (banned.code, banned.quarantine_id.startswith("banned-"), (live.quarantine / banned.quarantine_id).is_file(),
            live.forwarded(banned.message_id)) == (250, True, True, [])  # fmt: skip


# ==== how amavisd stops: the unit drop-in ================================================================

DROPIN = re.compile(r".*/etc/systemd/system/(amavisd?)\.service\.d/mailstrata-stop\.conf")


def _stop_dropin(profile: OsProfile) -> tuple[str, str]:
    """(unit, text) of the smtp_in role's amavisd stop drop-in for `profile`."""
    found = [(m.group(1), f.content) for f in render_layer(_sample.context(ROLE), os=profile).files
             if (m := DROPIN.fullmatch(f.path))]  # fmt: skip
    assert len(found) == 1, found
    return found[0]


def _directive(text: str, key: str) -> str:
    return re.findall(rf"(?m)^{key}=(.*)$", text)[-1]


@pytest.mark.daemons
def test_systemd_reads_the_stop_drop_in_without_a_warning(tmp_path: Path) -> None:
    # GIVEN this machine's units (Debian's amavis and postfix@) and the drop-in rendered for Debian 12
    requires("systemd-analyze", why="to read the drop-in with systemd's own loader")
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    unit, text = _stop_dropin(load_profile("debian12", ROLE))
    assert (root / f"usr/lib/systemd/system/{unit}.service").is_file()
    after = _directive(text, "After")
    assert (root / "usr/lib/systemd/system" / re.sub(r"@.+\.", "@.", after)).is_file(), f"no unit {after} here"
    dropin = root / f"etc/systemd/system/{unit}.service.d/mailstrata-stop.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text(text)
    # WHEN systemd loads the unit THEN nothing in the drop-in is refused or unknown
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={root}", f"{unit}.service"], capture_output=True,
                          text=True)  # fmt: skip
    assert "mailstrata-stop.conf" not in proc.stdout + proc.stderr, proc.stderr


def test_amavisd_stops_after_the_unit_that_runs_postfix_on_both_oses() -> None:
    for name in ("centos7", "debian12"):
        profile = load_profile(name, ROLE)
        _, text = _stop_dropin(profile)
        assert _directive(text, "After") == f"{profile.values.postfix_daemon_unit}.service", name


def _mid_message(live: Live, signum: signal.Signals) -> tuple[str, list[str]]:
    """A message to amavisd, with `signum` sent to amavisd's parent while a child filters it (the client has
    sent the final dot; clamd is stopped meanwhile, so the child is held in its virus scan): the reply the
    client got, and the copies that reached the re-injection port."""
    msg = _message("stopped mid-message", "a message amavisd is working on when it is told to stop")
    mid = str(msg["Message-ID"])
    script = (
        "import smtplib, sys\n"
        "s = smtplib.SMTP('127.0.0.1', 10024, timeout=120)\n"
        f"s.ehlo('localhost'); s.mail('{SENDER}'); s.rcpt('{RECIPIENT}')\n"
        "code, _ = s.docmd('DATA'); assert code == 354, code\n"
        "s.send(open(sys.argv[1], 'rb').read().replace(b'\\n', b'\\r\\n') + b'.\\r\\n')\n"
        "print('sent', flush=True)\n"
        "try:\n"
        "    print(s.getreply())\n"
        "except (smtplib.SMTPException, OSError) as e:\n"
        "    print('cut:', type(e).__name__)\n"
    )
    eml = live.root / f"{uuid.uuid4().hex}.eml"
    eml.write_bytes(msg.as_bytes())
    os.kill(live.clamd.pid, signal.SIGSTOP)
    try:
        client = subprocess.Popen(["ip", "netns", "exec", live.ns, sys.executable, "-c", script, str(eml)],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "sent"
        wait_for(lambda: _busy_children(live), "an amavisd child on the message", timeout=30, interval=0.1)
        os.kill(live.amavisd.pid, signum)
        time.sleep(1)  # the parent passes the signal on to its children
    finally:
        os.kill(live.clamd.pid, signal.SIGCONT)
    reply = client.communicate(timeout=120)[0].strip()
    live.amavisd.wait(timeout=60)
    return reply, live.forwarded(mid)


def _busy_children(live: Live) -> list[str]:
    """The process titles of this amavisd's children that are on a message: amavisd titles each child
    `amavisd (chN-avail)` while it waits for a client, `amavisd (chN-<id>...)` while it works."""
    busy = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == live.amavisd.pid:
                title = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if "(ch" in title and "-avail)" not in title:
                    busy.append(title)
    return busy


@pytest.mark.daemons
def test_the_drop_ins_stop_signal_lets_amavisd_finish_the_message_it_is_on() -> None:
    # GIVEN amavisd with a message in its hands (the client has sent it, a child is scanning it)
    signum = signal.Signals[_directive(_stop_dropin(PROFILE)[1], "KillSignal")]
    with _running("stop-quit") as live:
        # WHEN the drop-in's stop signal reaches amavisd's parent (KillMode=mixed: the parent only)
        reply, forwarded = _mid_message(live, signum)
    # THEN the child finishes it: the client gets 250 and the message is handed back once
    assert (reply.startswith("(250"), len(forwarded)) == (True, 1), reply


@pytest.mark.daemons
def test_systemds_default_stop_signal_cuts_the_message_amavisd_is_on() -> None:
    # GIVEN the same, WHEN SIGTERM (systemd's default KillSignal) reaches amavisd's parent
    with _running("stop-term") as live:
        reply, forwarded = _mid_message(live, signal.SIGTERM)
    # THEN the child drops the message (4xx, or the connection cut): the sending Postfix sends it again later,
    # twice over if the child had handed it back already
    assert (reply.startswith(("(4", "cut:")), forwarded) == (True, []), reply
