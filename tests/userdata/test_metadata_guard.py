"""The metadata guard (`mailstrata/userdata/daemons/metadata_guard.py`): on every layer, only root may
reach the cloud's metadata service, which serves the user-data and so the platform's secrets.

The live tests run the rendered guard (the unit's ExecStart) in a private network namespace with only
`lo`, where the metadata address is 127.0.0.169 (tests use 127.0.0.0/8 only) and `python3 -m http.server`
stands in for Nova's metadata service; the kernel's netfilter is the judge. The IPv6 address stays Nova's
fe80::a9fe:a9fe: its rule is checked in ip6tables' own listing, and no IPv6 traffic is sent. The unit's
order on later boots is judged by systemd's own loader (`systemd-analyze verify`) on a copy of this
machine's units with the guard enabled by `systemctl --root`.
"""

from __future__ import annotations

import configparser
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailstrata.roles import Role
from mailstrata.userdata.daemons import metadata_guard
from mailstrata.userdata.profiles import load_profile
from mailstrata.userdata.render import LayerUserData, render_layer
from tests.support import netns
from tests.support.requires import requires, requires_netns
from tests.userdata import _sample

METADATA = "127.0.0.169"  # the metadata service's address in these tests
METADATA_V6 = "fe80::a9fe:a9fe"  # Nova's own; only listed by ip6tables, never contacted
SECRET = "Bind-Pa55word"  # what an attacker wants from the user-data
PATHS = ("/openstack/latest/user_data", "/latest/user-data")  # OpenStack's and the EC2-style path


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


# Users that must be refused: nobody, and the daemons' users this machine has (the roles' own users).
USERS = [u for u in ("nobody", "amavis", "www-data", "sogo", "clamav", "opendkim") if _has_user(u)]


def _layer(role: Role) -> LayerUserData:
    """The role's debian12 layer, its guard pointed at the test's metadata address."""
    return render_layer(_sample.context(role), os=load_profile("debian12", role),
                        metadata_addresses=(METADATA, METADATA_V6))


def _unit(ud: LayerUserData) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd's keys are case-sensitive
    unit.read_string(ud.file(f"/etc/systemd/system/{metadata_guard.UNIT}").content)
    return unit


def _guard_script(ud: LayerUserData, tmp_path: Path) -> Path:
    """The rendered program the unit runs (its ExecStart), written out to run here."""
    exec_start = _unit(ud)["Service"]["ExecStart"]
    script = tmp_path / Path(exec_start).name
    script.write_text(ud.file(exec_start).content)
    script.chmod(0o755)
    return script


# ---- what every layer writes ------------------------------------------------------------------------------


@pytest.mark.parametrize("os_name", ["centos7", "debian12"])
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_every_layer_enables_the_guard_before_its_setup_starts_any_daemon(role: Role, os_name: str) -> None:
    ud = render_layer(_sample.context(role), os=load_profile(os_name, role))
    setup = ud.file("/usr/local/sbin/mailstrata-setup").content.splitlines()
    enable = "systemctl enable --now "
    enabled = [ln.removeprefix(enable) for ln in setup if ln.startswith(enable)]
    assert enabled[0] == metadata_guard.UNIT, enabled
    assert enabled.count(metadata_guard.UNIT) == 1
    # cloud-init runs the setup script, the one place the guard is turned on
    assert ud.runcmd == (("/usr/local/sbin/mailstrata-setup",),)
    assert "iptables" in ud.packages


@pytest.mark.parametrize("os_name", ["centos7", "debian12"])
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_every_layer_writes_the_guard_as_root_only_program_and_its_unit(role: Role, os_name: str) -> None:
    ud = render_layer(_sample.context(role), os=load_profile(os_name, role))
    unit = ud.file(f"/etc/systemd/system/{metadata_guard.UNIT}")
    script = ud.file(_unit(ud)["Service"]["ExecStart"])
    assert (script.path, script.owner, script.mode) == (
        "/usr/local/sbin/mailstrata-metadata-guard", "root:root", "0755")
    assert (unit.owner, unit.mode) == ("root:root", "0644")
    # Nova's addresses by default, IPv4 and IPv6
    assert "guard iptables 169.254.169.254/32\n" in script.content
    assert "  guard ip6tables fe80::a9fe:a9fe/128\n" in script.content


def test_the_guard_passes_shellcheck(tmp_path: Path) -> None:
    requires("shellcheck", why="to check the guard script")
    script = _guard_script(_layer(Role.SMTP_IN), tmp_path)
    out = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_a_malformed_metadata_address_is_refused_with_its_value() -> None:
    with pytest.raises(ValueError) as err:
        metadata_guard.settings(load_profile("debian12", Role.SMTP_IN), ["169.254.169.254", "169.254.169"])
    assert str(err.value) == ("metadata_addresses: must be one or more IPv4 or IPv6 host addresses, got "
                              "['169.254.169.254', '169.254.169'] ('169.254.169' is not one)")


def test_no_metadata_address_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^metadata_addresses: must be one or more .* got \[\]$"):
        metadata_guard.settings(load_profile("debian12", Role.SMTP_IN), [])


# ---- the guard in a private network namespace -------------------------------------------------------------


@pytest.fixture
def metadata_ns(tmp_path: Path) -> Iterator[netns.NetNs]:
    """A namespace with only `lo`, where root serves a user-data holding a secret at METADATA:80."""
    requires("iptables", "ip6tables", "curl", "runuser", why="to run the guard and fetch as other users",
             root=True)
    requires_netns()
    docroot = tmp_path / "metadata"
    for path in PATHS:
        (docroot / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (docroot / path.lstrip("/")).write_text(f"#cloud-config\nbind_pw: {SECRET}\n")
    with netns.NetNs.create("ms-mdg", addresses=[METADATA]) as ns:
        server = ns.popen(["python3", "-m", "http.server", "80", "--bind", METADATA, "--directory", str(docroot)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15
            while _fetch(ns, PATHS[0]).returncode != 0:
                assert server.poll() is None and time.monotonic() < deadline, "http.server did not start"
                time.sleep(0.1)
            yield ns
        finally:
            server.terminate()
            server.wait(timeout=10)


def _fetch(ns: netns.NetNs, path: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["curl", "-sS", "--max-time", "5", "--noproxy", "*", f"http://{METADATA}{path}"]
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    return ns.run(argv, check=False, capture_output=True, text=True)


def _run_guard(ns: netns.NetNs, script: Path) -> subprocess.CompletedProcess[str]:
    return ns.run([str(script)], capture_output=True, text=True)


@pytest.mark.parametrize("path", PATHS)
def test_without_the_guard_any_user_reads_the_user_data(metadata_ns: netns.NetNs, path: str) -> None:
    # the threat the guard answers: any local process reads the secrets
    out = _fetch(metadata_ns, path, user="nobody")
    assert (out.returncode, SECRET in out.stdout) == (0, True), out.stderr


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("user", USERS)
def test_after_the_guard_every_user_but_root_is_refused(metadata_ns: netns.NetNs, tmp_path: Path, user: str,
                                                        path: str) -> None:
    _run_guard(metadata_ns, _guard_script(_layer(Role.SMTP_IN), tmp_path))
    out = _fetch(metadata_ns, path, user=user)
    assert out.returncode == 7, (out.returncode, out.stderr)  # curl: could not connect (refused)
    assert SECRET not in out.stdout


@pytest.mark.parametrize("path", PATHS)
def test_after_the_guard_root_still_reads_the_user_data(metadata_ns: netns.NetNs, tmp_path: Path, path: str) -> None:
    # cloud-init runs as root: it keeps reading its datasource on later boots
    _run_guard(metadata_ns, _guard_script(_layer(Role.SMTP_IN), tmp_path))
    out = _fetch(metadata_ns, path)
    assert (out.returncode, SECRET in out.stdout) == (0, True), out.stderr


def test_running_the_guard_twice_adds_each_rule_once(metadata_ns: netns.NetNs, tmp_path: Path) -> None:
    script = _guard_script(_layer(Role.WEBMAIL), tmp_path)
    first, second = _run_guard(metadata_ns, script), _run_guard(metadata_ns, script)
    v4 = metadata_ns.run(["iptables", "-w", "-S", "OUTPUT"], capture_output=True, text=True).stdout.splitlines()
    v6 = metadata_ns.run(["ip6tables", "-w", "-S", "OUTPUT"], capture_output=True, text=True).stdout.splitlines()
    assert v4 == ["-P OUTPUT ACCEPT",
                  f"-A OUTPUT -d {METADATA}/32 -m owner ! --uid-owner 0 -j REJECT --reject-with icmp-port-unreachable"]
    assert v6 == ["-P OUTPUT ACCEPT",
                  f"-A OUTPUT -d {METADATA_V6}/128 -m owner ! --uid-owner 0 -j REJECT "
                  "--reject-with icmp6-port-unreachable"]
    assert (first.stderr, second.stderr) == ("", "")


def test_the_guard_goes_before_an_accept_rule_already_there(metadata_ns: netns.NetNs, tmp_path: Path) -> None:
    # e.g. an operator's own firewall rules: the guard's REJECT must come first to count
    metadata_ns.run(["iptables", "-w", "-A", "OUTPUT", "-d", f"{METADATA}/32", "-j", "ACCEPT"])
    _run_guard(metadata_ns, _guard_script(_layer(Role.MAILSTORE), tmp_path))
    out = _fetch(metadata_ns, PATHS[0], user="nobody")
    assert (out.returncode, SECRET in out.stdout) == (7, False)


# ---- the unit, judged by systemd ------------------------------------------------------------------------


_ROOTS: dict[Role, Path] = {}


def _unit_root(role: Role, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root holding this machine's stock units (the roles' Debian daemons among them) and the role's
    rendered guard, enabled by `systemctl --root` as the setup script's `systemctl enable` does."""
    requires("systemd-analyze", "systemctl", why="to judge the guard's unit with systemd's own loader")
    if role not in _ROOTS:
        root = tmp_path_factory.mktemp(f"unit-root-{role.value}")
        shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
        ud = _layer(role)
        for path in (f"/etc/systemd/system/{metadata_guard.UNIT}", _unit(ud)["Service"]["ExecStart"]):
            f = ud.file(path)
            (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / path.lstrip("/")).write_text(f.content)
            (root / path.lstrip("/")).chmod(int(f.mode, 8))
        subprocess.run(["systemctl", f"--root={root}", "enable", metadata_guard.UNIT], check=True,
                       capture_output=True)
        (root / "etc/systemd/system/probe.service").write_text("[Service]\nExecStart=/bin/true\n")
        _ROOTS[role] = root
    return _ROOTS[role]


def _verify(root: Path, unit: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", unit], capture_output=True, text=True)


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_systemd_loads_the_unit_without_a_warning(role: Role, tmp_path_factory: pytest.TempPathFactory) -> None:
    out = _verify(_unit_root(role, tmp_path_factory), metadata_guard.UNIT)
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


def test_enabling_the_unit_hooks_it_into_early_boot(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = _unit_root(Role.SMTP_IN, tmp_path_factory)
    assert (root / "etc/systemd/system/sysinit.target.wants" / metadata_guard.UNIT).is_symlink()


def _daemons() -> list[tuple[Role, str]]:
    """Each role's daemons whose Debian unit this machine has, and `probe.service`: a plain service with
    the default dependencies, standing for any daemon the platform does not name."""
    out = []
    for role in Role:
        names = [f"{s}.service" for s in load_profile("debian12", role).services]
        out.extend((role, n) for n in names if (Path("/usr/lib/systemd/system") / n).is_file())
        out.append((role, "probe.service"))
    return out


@pytest.mark.parametrize(("role", "daemon"), _daemons(), ids=lambda x: x.value if isinstance(x, Role) else x)
def test_every_daemon_starts_after_the_guard_on_later_boots(role: Role, daemon: str,
                                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    # Asked to start the daemon together with the guard but before it, systemd must find an ordering
    # cycle: the daemon is already ordered after the guard (rpcbind, for one, has no default dependencies:
    # the unit names it). At boot both are in one transaction: the guard through sysinit.target's wants.
    root = _unit_root(role, tmp_path_factory)
    probe = root / "etc/systemd/system" / f"{daemon}.d" / "zz-before-guard.conf"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text(f"[Unit]\nWants={metadata_guard.UNIT}\n")
    together = _verify(root, daemon)
    probe.write_text(f"[Unit]\nWants={metadata_guard.UNIT}\nBefore={metadata_guard.UNIT}\n")
    try:
        before = _verify(root, daemon)
    finally:
        probe.unlink()
    assert "ordering cycle" not in together.stderr, together.stderr
    assert "Found ordering cycle" in before.stderr, before.stderr
    assert f"Found dependency on {metadata_guard.UNIT}/start" in before.stderr or (
        f"Found ordering cycle on {metadata_guard.UNIT}/start" in before.stderr), before.stderr
