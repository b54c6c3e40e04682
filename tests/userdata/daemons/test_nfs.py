"""The NFS server's pinned mountd/statd ports in each OS's format, and Debian's read by nfs-utils' parser.

Debian 12's nfs-utils 2.6 daemons (rpc.mountd, rpc.statd) take their options from /etc/nfs.conf and
/etc/nfs.conf.d/*.conf only (Debian ignores /etc/default/nfs-kernel-server's options under systemd since
1:2.6.1-1). `nfsconf` reads them with the same parser (conffile.c) as the daemons. CentOS 7's
/etc/sysconfig/nfs is checked by tests/userdata/roles/test_nfs_server.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mailstrata.roles import Role
from mailstrata.userdata.daemons import nfs
from mailstrata.userdata.profiles import load_profile
from mailstrata.userdata.render import render_layer
from tests.support.requires import requires
from tests.userdata import _sample

DEBIAN_NFS_CONF = Path("/etc/nfs.conf")  # nfs-common's own, with Debian's defaults (manage-gids=y)


def rendered(os_name: str) -> tuple[str, str]:
    profile = load_profile(os_name, Role.NFS_SERVER)
    path = str(profile.paths.nfs_ports_conf)
    return path, render_layer(_sample.context(Role.NFS_SERVER), os=profile).file(path).content


def body(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


def test_given_debian12_when_rendered_then_the_ports_are_an_nfs_conf_drop_in() -> None:
    path, text = rendered("debian12")
    assert path == "/etc/nfs.conf.d/mailstrata.conf"
    assert body(text) == ["[mountd]", "port=20048", "[statd]", "port=662"]


def test_given_centos7_when_rendered_then_the_sysconfig_format_is_kept() -> None:
    path, text = rendered("centos7")
    assert path == "/etc/sysconfig/nfs"
    assert body(text) == ["MOUNTD_PORT=20048", "STATD_PORT=662"]


def test_given_each_profile_then_its_format_is_a_known_one() -> None:
    formats = {name: load_profile(name, Role.NFS_SERVER).values.nfs_format for name in ("centos7", "debian12")}
    assert formats == {"centos7": nfs.Format.SYSCONFIG, "debian12": nfs.Format.NFS_CONF}


@pytest.mark.daemons
def test_given_the_debian_drop_in_when_nfs_utils_reads_it_then_mountd_and_statd_get_the_ports(tmp_path: Path) -> None:
    requires("nfsconf", why="as nfs-utils' own nfs.conf parser")
    main = tmp_path / "nfs.conf"
    # nfsconf reads FILE, then FILE.d/*.conf, as the daemons read /etc/nfs.conf and /etc/nfs.conf.d/
    if DEBIAN_NFS_CONF.is_file():
        shutil.copy(DEBIAN_NFS_CONF, main)
    else:
        main.write_text("")
    (tmp_path / "nfs.conf.d").mkdir()
    (tmp_path / "nfs.conf.d/mailstrata.conf").write_text(rendered("debian12")[1])

    def get(section: str, key: str) -> str:
        proc = subprocess.run(["nfsconf", "--file", str(main), "--get", section, key], capture_output=True, text=True)
        assert (proc.returncode, proc.stderr) == (0, "")
        return proc.stdout.strip()

    assert (get("mountd", "port"), get("statd", "port")) == ("20048", "662")
