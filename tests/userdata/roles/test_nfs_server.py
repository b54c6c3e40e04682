"""The nfs_server layer (NfsShare's Cinder mode): exports, pinned NFSv3 ports and the format-once script.

The role script runs for real against a loop device backed by a sparse file: it formats a blank
volume, mounts it by UUID, and must never reformat one that holds data or anything it did not make.
Only `exportfs` and `systemctl` are stubs (this kernel has no NFS server); every path is under a
temporary root through the profile's relocation. /etc/exports cannot be parsed by a real exportfs
here, so its content is asserted.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from mailstrata.errors import ConfigError
from mailstrata.roles import Role
from mailstrata.userdata.context import Filesystem, LayerContext, Networks, NfsServer
from mailstrata.userdata.profiles import OsProfile, load_profile
from mailstrata.userdata.render import render_layer
from tests.support.requires import requires, unavailable
from tests.userdata import _sample

ROLE_SCRIPT = "/usr/local/sbin/mailstrata-setup-role"
VOLUME_BYTES = 320 * 1024 * 1024  # mkfs.xfs wants at least 300 MiB


def context(**changes: object) -> LayerContext:
    """The sample NFS server context; `nfs_server` is the layer's own, anything else the platform's."""
    ctx = _sample.context(Role.NFS_SERVER)
    if "nfs_server" in changes:
        ctx = replace(ctx, nfs_server=changes.pop("nfs_server"))  # type: ignore[arg-type]
    return ctx.with_platform(**changes) if changes else ctx


def render(ctx: LayerContext, os_profile: OsProfile) -> dict[str, str]:
    return {f.path: f.content for f in render_layer(ctx, os=os_profile).files}


def body(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


@pytest.fixture(scope="module")
def files(layer_files: Callable[[Role], dict[str, str]]) -> dict[str, str]:
    return layer_files(Role.NFS_SERVER)


# ---- what is rendered -------------------------------------------------------------------------------


def test_the_layer_writes_these_files(files: dict[str, str]) -> None:
    assert sorted(files) == [
        "/etc/exports",
        "/etc/modprobe.d/lockd.conf",
        "/etc/sysconfig/nfs",
        "/etc/systemd/system/mailstrata-metadata-guard.service",
        "/etc/systemd/system/nfs-server.service.d/mailstrata.conf",
        "/etc/yum.repos.d/CentOS-Base.repo",
        "/etc/yum.repos.d/epel.repo",
        "/usr/local/sbin/mailstrata-metadata-guard",
        "/usr/local/sbin/mailstrata-setup",
        ROLE_SCRIPT,
    ]


def test_export_goes_to_the_mailstore_subnet_only(files: dict[str, str]) -> None:
    assert body(files["/etc/exports"]) == ["/NFSVOL 10.10.3.0/24(rw,sync,no_subtree_check,root_squash)"]


def test_export_lists_every_mailstore_subnet() -> None:
    nets = _sample.context(Role.NFS_SERVER).platform.networks
    servers = {**nets.servers, Role.MAILSTORE: ("10.10.3.0/24", "10.10.6.0/24")}
    ctx = context(networks=replace(nets, servers=servers))
    text = render(ctx, load_profile("centos7", Role.NFS_SERVER))["/etc/exports"]
    assert body(text) == [
        "/NFSVOL 10.10.3.0/24(rw,sync,no_subtree_check,root_squash) 10.10.6.0/24(rw,sync,no_subtree_check,root_squash)"
    ]


def test_export_without_mailstore_subnets_is_refused() -> None:
    nets = _sample.context(Role.NFS_SERVER).platform.networks
    servers: dict[Role, tuple[str, ...]] = {r: c for r, c in nets.servers.items() if r is not Role.MAILSTORE}
    ctx = context(
        networks=Networks(servers=servers, vip_subnet=nets.vip_subnet, clients=nets.clients, admin=nets.admin)
    )
    with pytest.raises(ConfigError) as err:
        render(ctx, load_profile("centos7", Role.NFS_SERVER))
    assert str(err.value.problems[0]) == (
        "networks.servers.mailstore: the NFS export needs the mailstore subnets, got none"
    )


def test_nfsv3_side_daemons_are_pinned(files: dict[str, str]) -> None:
    assert body(files["/etc/sysconfig/nfs"]) == ["MOUNTD_PORT=20048", "STATD_PORT=662", "LOCKD_TCPPORT=32803",
                                                 "LOCKD_UDPPORT=32769"]
    assert body(files["/etc/modprobe.d/lockd.conf"]) == ["options lockd nlm_tcpport=32803 nlm_udpport=32769"]


def test_nfs_server_waits_for_the_volume_mount(files: dict[str, str]) -> None:
    drop_in = files["/etc/systemd/system/nfs-server.service.d/mailstrata.conf"]
    assert body(drop_in) == ["[Unit]", "RequiresMountsFor=/NFSVOL"]


def test_services_and_packages(layer_cloud_config: Callable[[Role], dict], files: dict[str, str]) -> None:
    assert layer_cloud_config(Role.NFS_SERVER)["packages"] == ["openssl", "ca-certificates", "chrony", "iptables",
                                                               "nfs-utils", "xfsprogs"]  # fmt: skip
    setup = files["/usr/local/sbin/mailstrata-setup"]
    assert "systemctl enable --now rpcbind\nsystemctl enable --now nfs-server\n" in setup


@pytest.mark.daemons
@pytest.mark.parametrize("fs", list(Filesystem))
def test_role_script_passes_shellcheck(fs: Filesystem, tmp_path: Path) -> None:
    requires("shellcheck")
    ctx = context(nfs_server=NfsServer(filesystem=fs))
    script = tmp_path / "role.sh"
    script.write_text(render(ctx, load_profile("centos7", Role.NFS_SERVER))[ROLE_SCRIPT])
    proc = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (0, "")


# ---- the format-once script, on a real loop device --------------------------------------------------


@dataclass
class Volume:
    """The rendered role script, a loop device standing in for the Cinder volume, and a fake root."""

    device: str
    root: Path
    script: Path
    env: dict[str, str]
    ctx: LayerContext
    profile: OsProfile

    def render_with(self, **changes: object) -> None:
        """Render the role script again with other NfsServer settings (e.g. the volume's names)."""
        ctx = replace(self.ctx, nfs_server=replace(self.ctx.nfs_server, **changes))  # type: ignore[arg-type]
        self.script.write_text(render(ctx, self.profile)[str(self.root) + ROLE_SCRIPT])

    @property
    def export_dir(self) -> Path:
        return self.root / "NFSVOL"

    @property
    def fstab(self) -> Path:
        return self.root / "etc/fstab"

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(self.script)], capture_output=True, text=True, env=self.env)

    def blkid(self, tag: str) -> str:
        return subprocess.run(["blkid", "-p", "-o", "value", "-s", tag, self.device], capture_output=True,
                              text=True).stdout.strip()  # fmt: skip

    def umount(self) -> None:
        subprocess.run(["umount", str(self.export_dir)], capture_output=True)


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Volume]:
    requires("losetup", "blkid", "mkfs.xfs", "mkfs.ext4", "mountpoint", "sfdisk", why="for loop devices and mounts",
             root=True)
    image = tmp_path / "volume.img"
    with image.open("wb") as f:
        f.truncate(VOLUME_BYTES)
    proc = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True)
    if proc.returncode != 0:
        unavailable(f"no loop device here: {proc.stderr.strip()}", why="to mount the volume")
    device = proc.stdout.strip()
    root = tmp_path / "root"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("exportfs", "systemctl"):
        (stubs / name).write_text(f'#!/bin/sh\necho {name} "$@" >> {tmp_path}/calls\n')
        (stubs / name).chmod(0o755)
    prof = load_profile("centos7", Role.NFS_SERVER).relocated(str(root))
    prof = replace(
        prof,
        commands=type(prof.commands)(
            "test.commands",
            {**prof.commands, "blkid": "blkid", "exportfs": "exportfs -ra", "daemon_reload": "systemctl daemon-reload"},
        ),
    )
    ctx = context(nfs_server=NfsServer(device=device, export_path=str(root / "NFSVOL"), device_wait_seconds=5))
    script = tmp_path / "role.sh"
    script.write_text(render(ctx, prof)[str(root) + ROLE_SCRIPT])
    (root / "etc").mkdir(parents=True)
    (root / "etc/fstab").write_text("# static file system information\n")
    vol = Volume(device, root, script, {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}, ctx, prof)
    try:
        yield vol
    finally:
        vol.umount()
        subprocess.run(["losetup", "-d", device], capture_output=True)


@pytest.mark.daemons
def test_blank_volume_is_formatted_mounted_and_exported(volume: Volume, tmp_path: Path) -> None:
    proc = volume.run()
    assert proc.returncode == 0, proc.stderr
    uuid = volume.blkid("UUID")
    assert volume.blkid("TYPE") == "xfs"
    assert volume.fstab.read_text().splitlines()[1:] == [f"UUID={uuid} {volume.export_dir} xfs defaults,nofail 0 2"]
    assert subprocess.run(["mountpoint", "-q", str(volume.export_dir)]).returncode == 0
    st = volume.export_dir.stat()
    assert (st.st_uid, st.st_gid, oct(st.st_mode & 0o777)) == (5000, 5000, "0o755")
    assert (tmp_path / "calls").read_text().splitlines() == ["systemctl daemon-reload", "exportfs -ra"]


@pytest.mark.daemons
def test_second_run_keeps_the_data(volume: Volume) -> None:
    assert volume.run().returncode == 0
    uuid = volume.blkid("UUID")
    (volume.export_dir / "mail").write_text("keep me")
    proc = volume.run()
    assert proc.returncode == 0, proc.stderr
    assert "already holds xfs; keeping its data" in proc.stdout
    assert (volume.blkid("UUID"), (volume.export_dir / "mail").read_text()) == (uuid, "keep me")
    assert len(volume.fstab.read_text().splitlines()) == 2


@pytest.mark.daemons
def test_after_a_reboot_it_mounts_without_formatting(volume: Volume) -> None:
    assert volume.run().returncode == 0
    (volume.export_dir / "mail").write_text("keep me")
    volume.umount()
    proc = volume.run()
    assert proc.returncode == 0, proc.stderr
    assert (volume.export_dir / "mail").read_text() == "keep me"


@pytest.mark.daemons
def test_other_filesystem_is_refused(volume: Volume) -> None:
    subprocess.run(["mkfs.ext4", "-q", volume.device], check=True)
    uuid = volume.blkid("UUID")
    proc = volume.run()
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"mailstrata-setup-role: ERROR: {volume.device} holds a ext4 filesystem, not xfs; refusing to format it"
    )
    assert (volume.blkid("TYPE"), volume.blkid("UUID")) == ("ext4", uuid)


@pytest.mark.daemons
def test_partitioned_volume_is_refused(volume: Volume) -> None:
    subprocess.run(["sfdisk", "-q", volume.device], input="label: dos\n", text=True, capture_output=True)
    proc = volume.run()
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"mailstrata-setup-role: ERROR: {volume.device} holds a dos partition table; refusing to format it"
    )
    assert volume.blkid("TYPE") == ""


@pytest.mark.daemons
def test_missing_volume_stops_after_the_wait(volume: Volume) -> None:
    volume.render_with(device="/dev/mailstrata-absent", device_aliases=("/dev/mailstrata-absent-scsi",))
    started = time.monotonic()
    proc = volume.run()
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        "ERROR: no block device at /dev/mailstrata-absent /dev/mailstrata-absent-scsi after 5 s; is the volume "
        "attached?"
    )
    assert time.monotonic() - started < 15  # bounded: device_wait_seconds plus one poll


@pytest.mark.daemons
def test_a_volume_under_its_virtio_scsi_name_is_found_and_formatted(volume: Volume, tmp_path: Path) -> None:
    # GIVEN udev's names of a virtio-scsi disk (a folder standing in for /dev/disk/by-id): no virtio-blk name
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    serial = _sample.SAMPLE_VOLUME_SERIAL + "000-000000000000"
    (by_id / f"scsi-0QEMU_QEMU_HARDDISK_{serial}").symlink_to(volume.device)
    volume.render_with(device=f"{by_id}/virtio-{serial[:20]}",
                       device_aliases=(f"{by_id}/scsi-0QEMU_QEMU_HARDDISK_{serial}",))
    # WHEN the role script runs THEN it takes the volume by its SCSI name, formats and mounts it
    proc = volume.run()
    assert proc.returncode == 0, proc.stderr
    assert f"the volume is {by_id}/scsi-0QEMU_QEMU_HARDDISK_{serial} ({volume.device})" in proc.stdout
    assert volume.blkid("TYPE") == "xfs"
    assert subprocess.run(["mountpoint", "-q", str(volume.export_dir)]).returncode == 0


@pytest.mark.daemons
def test_the_virtio_blk_name_is_taken_when_it_is_there(volume: Volume, tmp_path: Path) -> None:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "virtio-6f1c1c3e-0000-4000-8").symlink_to(volume.device)
    volume.render_with(device=f"{by_id}/virtio-6f1c1c3e-0000-4000-8",
                       device_aliases=(f"{by_id}/scsi-0QEMU_QEMU_HARDDISK_6f1c1c3e-0000-4000-8",))
    proc = volume.run()
    assert proc.returncode == 0, proc.stderr
    assert f"the volume is {by_id}/virtio-6f1c1c3e-0000-4000-8 ({volume.device})" in proc.stdout
