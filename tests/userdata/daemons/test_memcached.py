"""memcached's settings file in each OS's format, and Debian's read by Debian's own wrapper.

Debian 12's memcached.service runs `/usr/share/memcached/scripts/systemd-memcached-wrapper
/etc/memcached.conf`, which turns the file's lines into memcached's command line; the live test runs that
very wrapper on the rendered file (memcached 1.6 here). CentOS 7's shell-variable format is checked by
tests/userdata/roles/test_webmail.py.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from mailstrata.roles import Role
from mailstrata.userdata.daemons import memcached
from mailstrata.userdata.profiles import load_profile
from mailstrata.userdata.render import render_layer
from tests.support import netns
from tests.support.requires import requires, requires_netns
from tests.userdata import _sample

WRAPPER = "/usr/share/memcached/scripts/systemd-memcached-wrapper"


def rendered(os_name: str) -> tuple[str, str]:
    """(path, content) of the memcached file of the sample webmail layer on `os_name`."""
    profile = load_profile(os_name, Role.WEBMAIL)
    path = str(profile.paths.memcached_sysconfig)
    return path, render_layer(_sample.context(Role.WEBMAIL), os=profile).file(path).content


def options(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def test_given_debian12_when_rendered_then_memcached_conf_has_one_option_per_line() -> None:
    path, text = rendered("debian12")
    assert path == "/etc/memcached.conf"
    assert options(text) == ["-u memcache", "-p 11211", "-m 64", "-c 1024", "-l 127.0.0.1", "-U 0"]


def test_given_centos7_when_rendered_then_the_sysconfig_format_is_kept() -> None:
    path, text = rendered("centos7")
    assert path == "/etc/sysconfig/memcached"
    assert options(text) == ['PORT="11211"', 'USER="memcached"', 'MAXCONN="1024"', 'CACHESIZE="64"',
                             'OPTIONS="-l 127.0.0.1 -U 0"']  # fmt: skip


def test_given_each_profile_then_its_format_is_a_known_one() -> None:
    formats = {name: load_profile(name, Role.WEBMAIL).values.memcached_format for name in ("centos7", "debian12")}
    assert formats == {"centos7": memcached.Format.SYSCONFIG, "debian12": memcached.Format.OPTIONS}


@pytest.mark.daemons
def test_given_the_debian_file_when_debians_wrapper_starts_memcached_then_it_listens_on_loopback_tcp_only(
    tmp_path: Path,
) -> None:
    requires("memcached", "ss", "perl", WRAPPER, why="to run Debian's memcached.service command on the file",
             root=True)
    requires_netns()
    conf = tmp_path / "memcached.conf"
    conf.write_text(rendered("debian12")[1])
    with netns.NetNs.create("ms-mcd") as ns:
        # the unit's ExecStart, with the rendered file as its argument; the wrapper execs memcached
        proc = ns.popen([WRAPPER, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            listening = ""
            while time.monotonic() < deadline and proc.poll() is None:
                listening = ns.run(["ss", "-H", "-l", "-n", "-t", "-u"], capture_output=True, text=True).stdout
                if listening:
                    break
                time.sleep(0.1)
            argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
    assert err.decode() == ""
    assert " ".join(argv).split() == ["/usr/bin/memcached", "-u", "memcache", "-p", "11211", "-m", "64",
                                      "-c", "1024", "-l", "127.0.0.1", "-U", "0"]  # fmt: skip
    assert sorted((ln.split()[0], ln.split()[4]) for ln in listening.splitlines()) == [("tcp", "127.0.0.1:11211")]
