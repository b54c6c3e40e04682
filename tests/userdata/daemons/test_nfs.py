"""The NFS server's and the mailstores' pinned side-daemon ports in each OS's format, and Debian's read by
nfs-utils' parser. The mailstores pin statd and lockd for the server's NFSv3 lock callbacks.

Debian 12's nfs-utils 2.6 daemons (rpc.mountd, rpc.statd) take their options from /etc/nfs.conf and
/etc/nfs.conf.d/*.conf only (Debian ignores /etc/default/nfs-kernel-server's options under systemd since
1:2.6.1-1). `nfsconf` reads them with the same parser (conffile.c) as the daemons. CentOS 7's
/etc/sysconfig/nfs is checked by tests/userdata/roles/test_nfs_server.py.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from mailstrata.roles import Role
from mailstrata.userdata.context import NfsMount
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
    assert body(text) == ["[mountd]", "port=20048", "[statd]", "port=662", "[lockd]", "port=32803", "udp-port=32769"]


def test_given_centos7_when_rendered_then_the_sysconfig_format_is_kept() -> None:
    path, text = rendered("centos7")
    assert path == "/etc/sysconfig/nfs"
    assert body(text) == ["MOUNTD_PORT=20048", "STATD_PORT=662", "LOCKD_TCPPORT=32803", "LOCKD_UDPPORT=32769"]


def test_given_each_profile_then_its_format_is_a_known_one() -> None:
    formats = {name: load_profile(name, Role.NFS_SERVER).values.nfs_format for name in ("centos7", "debian12")}
    assert formats == {"centos7": nfs.Format.SYSCONFIG, "debian12": nfs.Format.NFS_CONF}


def nfsconf(tmp_path: Path, drop_in: str) -> Callable[[str, str], str]:
    """nfs-utils' own reading of Debian's /etc/nfs.conf with `drop_in` in /etc/nfs.conf.d/."""
    requires("nfsconf", why="as nfs-utils' own nfs.conf parser")
    main = tmp_path / "nfs.conf"
    # nfsconf reads FILE, then FILE.d/*.conf, as the daemons read /etc/nfs.conf and /etc/nfs.conf.d/
    if DEBIAN_NFS_CONF.is_file():
        shutil.copy(DEBIAN_NFS_CONF, main)
    else:
        main.write_text("")
    (tmp_path / "nfs.conf.d").mkdir()
    (tmp_path / "nfs.conf.d/mailstrata.conf").write_text(drop_in)

    def get(section: str, key: str) -> str:
        proc = subprocess.run(["nfsconf", "--file", str(main), "--get", section, key], capture_output=True, text=True)
        assert (proc.returncode, proc.stderr) == (0, "")
        return proc.stdout.strip()

    return get


@pytest.mark.daemons
def test_given_the_debian_drop_in_when_nfs_utils_reads_it_then_mountd_and_statd_get_the_ports(tmp_path: Path) -> None:
    get = nfsconf(tmp_path, rendered("debian12")[1])
    assert (get("mountd", "port"), get("statd", "port")) == ("20048", "662")
    assert (get("lockd", "port"), get("lockd", "udp-port")) == ("32803", "32769")


# ---- the mailstores (NFS clients): the server's lock callbacks ------------------------------------------


def mailstore_files(os_name: str, mount: NfsMount | None = None) -> dict[str, str]:
    ctx = _sample.context(Role.MAILSTORE)
    if mount is not None:
        ctx = replace(ctx, nfs=mount)
    return {f.path: f.content for f in render_layer(ctx, os=load_profile(os_name, Role.MAILSTORE)).files}


@pytest.mark.daemons
def test_given_a_debian_mailstore_when_nfs_utils_reads_its_drop_in_then_statd_and_lockd_are_pinned(
    tmp_path: Path,
) -> None:
    files = mailstore_files("debian12")
    get = nfsconf(tmp_path, files["/etc/nfs.conf.d/mailstrata.conf"])
    assert (get("statd", "port"), get("lockd", "port"), get("lockd", "udp-port")) == ("662", "32803", "32769")
    assert "port=20048" not in files["/etc/nfs.conf.d/mailstrata.conf"]  # a client runs no mountd
    assert body(files["/etc/modprobe.d/lockd.conf"]) == ["options lockd nlm_tcpport=32803 nlm_udpport=32769"]


def test_given_a_centos7_mailstore_when_its_sysconfig_is_sourced_then_statd_and_lockd_are_pinned() -> None:
    # nfs-config.service's nfs-utils_env.sh sources the file: STATD_PORT becomes statd's -p, LOCKD_* go to
    # sysctl fs.nfs.nlm_tcpport/nlm_udpport
    files = mailstore_files("centos7")
    proc = subprocess.run(["bash", "-euc", '. /dev/stdin; echo "${MOUNTD_PORT:-none} $STATD_PORT $LOCKD_TCPPORT '
                           '$LOCKD_UDPPORT"'], input=files["/etc/sysconfig/nfs"], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "none 662 32803 32769\n")
    assert body(files["/etc/modprobe.d/lockd.conf"]) == ["options lockd nlm_tcpport=32803 nlm_udpport=32769"]


@pytest.mark.parametrize("options", ["rw,hard,vers=4.1,tcp,_netdev", "rw,hard,nfsvers=4,_netdev",
                                     "rw,hard,vers=3,tcp,nolock,_netdev", "rw,vers=3,local_lock=all"])
def test_given_a_mount_without_nlm_when_rendered_then_the_mailstore_pins_nothing(options: str) -> None:
    files = mailstore_files("debian12", NfsMount(source="10.10.5.20:/NFSVOL", options=options))
    assert "/etc/nfs.conf.d/mailstrata.conf" not in files
    assert "/etc/modprobe.d/lockd.conf" not in files


def test_the_default_mount_is_nfsv3_with_network_locks() -> None:
    m = NfsMount(source="10.10.5.20:/NFSVOL")
    assert (nfs.mount_version(m.options), nfs.nlm_callbacks(m)) == (3, True)
