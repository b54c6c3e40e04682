"""The placement agent (`mailstrata-placement`, daemons/placement.py): the script as rendered for CentOS 7, its
grammar (CentOS 7's Python 3.6), and the map it computes. Its work with real Dovecot (two instances on one share:
IMAP and LMTP reach the home, drain, kick, a stopped home, the Nova metadata key) is tested in
tests/userdata/roles/test_mailstore.py."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import types
from pathlib import Path

import pytest

from mailstrata.roles import Role
from mailstrata.userdata.context import Peer
from mailstrata.userdata.profiles import load_profile
from mailstrata.userdata.render import render_layer
from tests.support.requires import requires
from tests.userdata import _sample

SCRIPT = "/usr/local/sbin/mailstrata-placement"
CONFIG = "/etc/dovecot/mailstrata-placement.conf"
PEERS = (Peer("mailstore-01", "10.10.3.11"), Peer("mailstore-02", "10.10.3.12"), Peer("mailstore-03", "10.10.3.13"))


def _files(os_name: str = "centos7") -> dict[str, str]:
    ctx = dataclasses.replace(_sample.context(Role.MAILSTORE), peers=PEERS)
    return {f.path: f.content for f in render_layer(ctx, os=load_profile(os_name, Role.MAILSTORE)).files}


def _agent() -> types.ModuleType:
    """The rendered script as a module (its `main` only runs as a program)."""
    module = types.ModuleType("mailstrata_placement")
    exec(compile(_files()[SCRIPT], SCRIPT, "exec"), module.__dict__)  # noqa: S102 (the project's own script)
    return module


def _config(tmp_path: Path) -> dict:
    path = tmp_path / "placement.conf"
    path.write_text(_files()[CONFIG])
    return _agent().read_config(str(path))  # type: ignore[no-any-return]


def test_the_script_is_python_3_6_grammar() -> None:
    # CPython's own parser with CentOS 7's grammar version: no syntax newer than 3.6.
    ast.parse(_files()[SCRIPT], feature_version=(3, 6))


def test_the_script_is_roots_and_starts(tmp_path: Path) -> None:
    requires("/usr/bin/python3")
    script = tmp_path / "mailstrata-placement"
    script.write_text(_files()[SCRIPT])
    proc = subprocess.run(["/usr/bin/python3", "-W", "error", str(script), "--help"], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr, proc.stdout.startswith("usage: mailstrata-placement")) == (0, "", True)


def test_the_config_names_every_peer_in_slot_order(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    assert cfg["peers"] == [(p.name, p.address) for p in PEERS]
    assert (cfg["buckets"], cfg["interval"], cfg["peer_ports"]["lmtp"]) == (256, 5, 24)


def test_every_bucket_has_one_home_and_the_servers_share_them() -> None:
    agent = _agent()
    peers = [(p.name, p.address) for p in PEERS]
    placed = agent.homes(256, peers, {p.name for p in PEERS}, set())
    counts = {p.name: sum(1 for n, _ in placed.values() if n == p.name) for p in PEERS}
    assert sorted(placed) == list(range(256))
    assert all(60 <= c <= 110 for c in counts.values()), counts  # about a third each


def test_the_map_does_not_depend_on_the_order_of_the_servers() -> None:
    agent = _agent()
    peers = [(p.name, p.address) for p in PEERS]
    up = {p.name for p in PEERS}
    assert agent.homes(256, peers, up, set()) == agent.homes(256, list(reversed(peers)), up, set())


@pytest.mark.parametrize("gone", [p.name for p in PEERS])
def test_losing_a_server_moves_only_its_buckets(gone: str) -> None:
    agent = _agent()
    peers = [(p.name, p.address) for p in PEERS]
    before = agent.homes(256, peers, {p.name for p in PEERS}, set())
    down = agent.homes(256, peers, {p.name for p in PEERS} - {gone}, set())
    drained = agent.homes(256, peers, {p.name for p in PEERS}, {gone})
    moved = {b for b in before if before[b] != down[b]}
    assert moved == {b for b in before if before[b][0] == gone}
    assert down == drained  # down or draining: the same map
    assert all(n != gone for n, _ in down.values())


def test_when_no_server_answers_every_server_not_draining_is_used() -> None:
    # e.g. every server boots at once: their first maps (written before Dovecot starts) must agree
    agent = _agent()
    peers = [(p.name, p.address) for p in PEERS]
    assert agent.homes(256, peers, set(), {"mailstore-03"}) == agent.homes(256, peers, {"mailstore-01", "mailstore-02"},
                                                                           set())


def test_the_map_keys_every_front_port_and_bucket(tmp_path: Path) -> None:
    agent = _agent()
    cfg = _config(tmp_path)
    text = agent.map_text(cfg, agent.homes(256, cfg["peers"], {p.name for p in PEERS}, set()))
    keys = [ln.split(":", 1)[0] for ln in text.splitlines()]
    assert len(keys) == len(set(keys)) == 6 * 256
    assert {k.rsplit("-", 1)[0] for k in keys} == {"imap-143", "imap-993", "pop3-110", "pop3-995", "sieve-4190",
                                                    "lmtp-0"}  # fmt: skip
    first = dict(ln.split(":::::::", 1) for ln in text.splitlines())
    assert first["imap-993-ff"].split()[1:] == ["port=10993", "proxy_maybe=y", "pass=%w", "starttls=any-cert"]
    assert first["lmtp-0-ff"].split()[1:] == ["port=24", "proxy_maybe=y"]  # LMTP carries no password


def test_a_new_map_of_the_same_size_gets_a_newer_mtime(tmp_path: Path) -> None:
    # Dovecot re-reads a passwd-file when its mtime (seconds) or size changes: a same-size map written within
    # the same second would be missed.
    agent = _agent()
    path = tmp_path / "map.passwd"
    assert agent.write_map(str(path), "a-1:::::::host=10.0.0.1\n")
    first = os.stat(path).st_mtime
    assert not agent.write_map(str(path), "a-1:::::::host=10.0.0.1\n")  # unchanged: not rewritten
    assert agent.write_map(str(path), "a-1:::::::host=10.0.0.2\n")
    assert os.stat(path).st_mtime >= first + 1


def test_the_bucket_is_dovecots_n_modifier() -> None:
    # var-expand.c m_str_newhash (2.2.36 and 2.3): the first 8 bytes of the MD5, big-endian, modulo the width.
    # Dovecot 2.3.19 itself (auth_debug of the two-instance test) looked this user up as `imap-143-63`.
    assert format(_agent().bucket_of("usuario01@domain01.dom", 256), "x") == "63"


NO_PYTHON36 = "CentOS 7's Python 3.6 is in no Debian package; machines without pyenv's 3.6 skip the run"


def _python36() -> str:
    found = sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob("3.6*/bin/python3.6"))
    if not found:
        pytest.skip(NO_PYTHON36)
    return str(found[-1])


@pytest.mark.parametrize("python", [pytest.param("3.6", marks=pytest.mark.skip_allowed(NO_PYTHON36)), "debian"])
def test_a_round_on_centos7s_and_debians_python(python: str) -> None:
    # GIVEN the rendered script and config, moved under a scratch root, inside a namespace with only `lo` (the
    # peers' 10.x addresses are unreachable there: nobody answers), and this server asked to drain
    requires("ip", root=True)
    from tests.support.daemons import scratch_dir
    from tests.support.netns import NetNs

    interpreter = _python36() if python == "3.6" else "/usr/bin/python3"
    with scratch_dir("placement") as root, NetNs.create("mst-pla") as ns:
        files = _files()
        script = root / "mailstrata-placement"
        script.write_text(files[SCRIPT])
        text = files[CONFIG]
        for key, value in (("map_file", root / "run/map.passwd"), ("drain_dir", root / "vmail/.mailstrata/draining"),
                           ("drain_request", root / "run/drain")):
            text = "\n".join(f"{key} {value}" if ln.startswith(f"{key} ") else ln for ln in text.splitlines())
        text = "\n".join("metadata_url" if ln.startswith("metadata_url ") else ln for ln in text.splitlines())
        (root / "placement.conf").write_text(text + "\n")
        (root / "vmail").mkdir()
        os.chown(root / "vmail", 5000, 5000)
        (root / "run").mkdir()
        (root / "run/drain").touch()
        # WHEN one round runs
        proc = ns.run([interpreter, "-W", "error", str(script), "--config", str(root / "placement.conf"), "--once",
                       "--self", "mailstore-01"], capture_output=True, text=True, check=False)  # fmt: skip
        # THEN it wrote a map over the two servers not draining (nobody answers: health is not used), and its own
        # drain flag on the "share", as vmail
        assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout
        hosts = {ln.split("host=")[1].split()[0] for ln in (root / "run/map.passwd").read_text().splitlines()}
        assert hosts == {"10.10.3.12", "10.10.3.13"}
        flag = root / "vmail/.mailstrata/draining/mailstore-01"
        assert (flag.exists(), flag.stat().st_uid) == (True, 5000)


def test_dovecots_auth_process_may_read_the_map_on_centos7() -> None:
    # CentOS 7 enforces SELinux: the map must have a type Dovecot's auth process (which runs the passwd-file
    # passdb) may read, as file_contexts labels its path. /run/* (var_run_t) would be refused.
    from tests.userdata.test_selinux import FILE_READ, policy

    map_file = next(ln.split()[1] for ln in _files()[CONFIG].splitlines() if ln.startswith("map_file "))
    p = policy()
    auth = p.domain_of("/usr/libexec/dovecot/auth")
    assert auth == "dovecot_auth_t"
    defaults = dict(p.booleans)  # the policy's boolean defaults: the mailstore sets none that matters here
    assert p.verdict(auth, p.file_type(map_file), "file", FILE_READ, defaults)[0] == "allowed"
    assert p.verdict(auth, p.file_type("/run/mailstrata/placement/map.passwd"), "file", FILE_READ,
                     defaults)[0] != "allowed"  # fmt: skip


def test_dovecot_may_bind_and_reach_the_peer_ports_on_centos7() -> None:
    # Dovecot's master binds every listener (dovecot_t); the login and lmtp processes connect to the peers.
    from mailstrata.userdata.daemons.placement import PEER_PORTS
    from tests.userdata.test_selinux import policy

    p = policy()
    defaults = dict(p.booleans)
    master = p.domain_of("/usr/sbin/dovecot")
    clients = {p.domain_of(f"/usr/libexec/dovecot/{exe}") for exe in ("imap-login", "pop3-login", "lmtp")}
    verdicts = {}
    for service, port in sorted(PEER_PORTS.items()):
        t = p.port_type("tcp", port, {})
        verdicts[service] = (
            p.verdict(master, t, "tcp_socket", ["name_bind"], defaults)[0],
            sorted({p.verdict(d, t, "tcp_socket", ["name_connect"], defaults)[0] for d in clients}),
        )
    assert verdicts == {s: ("allowed", ["allowed"]) for s in PEER_PORTS}
