"""The spool volume (issue 12): a queueing server slot's own Cinder volume holds Postfix's queue (and on
smtp-in amavisd's quarantine), so that a replaced server's accepted mail comes back with the volume.

The rendered setup step (`mailstrata-setup-spool`) runs for real, as root, against a loop device backed
by a sparse file, exposed under a /dev/disk/by-id name in a temporary folder (the profile's
`disk_by_id_dir`, relocated with every other path under a temporary root). Each run is a private mount
namespace (`unshare --mount`), so no mount leaks to the host; a "server" is a root folder, and a
replacement is a fresh root with the same volume. Real Postfix (Debian's) makes the package's queue
(`postfix check`) and queues a message (`sendmail`, through postdrop) that the replacement finds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from mailstrata.roles import Role
from mailstrata.userdata.context import Filesystem, LayerContext, Spool
from mailstrata.userdata.daemons import spool
from mailstrata.userdata.profiles import OsProfile, _Attrs, load_profile
from mailstrata.userdata.render import render_layer
from tests.support.daemons import scratch_dir
from tests.support.requires import requires, unavailable
from tests.userdata import _sample

QUEUEING = (Role.SMTP_IN, Role.SMTP_OUT, Role.MAILSTORE)
VOLUME_ID = "6f1c1c3e-0000-4000-8000-00000000abcd"  # a Cinder volume ID (Nova's disk serial)
VOLUME_BYTES = 320 * 1024 * 1024  # mkfs.xfs wants at least 300 MiB
SCRIPT = "/usr/local/sbin/mailstrata-setup-spool"


def spool_context(role: Role, **changes: object) -> LayerContext:
    return replace(_sample.context(role), spool=Spool(**changes))  # type: ignore[arg-type]


def rendered(ctx: LayerContext, os_profile: OsProfile) -> dict[str, str]:
    return {f.path: f.content for f in render_layer(ctx, os=os_profile).files}


# ---- what is rendered ---------------------------------------------------------------------------------


@pytest.mark.parametrize("os_name", ["centos7", "debian12"])
@pytest.mark.parametrize("role", QUEUEING, ids=lambda r: r.value)
def test_without_a_spool_volume_nothing_is_written(role: Role, os_name: str) -> None:
    files = rendered(_sample.context(role), load_profile(os_name, role))
    assert [p for p in files if "spool" in p.split("/")[-1] or "mailstrata-spool" in p] == []
    assert SCRIPT not in files[load_profile(os_name, role).paths.setup_script]


@pytest.mark.parametrize("role", QUEUEING, ids=lambda r: r.value)
def test_the_setup_mounts_the_spool_before_selinux_the_role_steps_and_the_services(role: Role) -> None:
    os_profile = load_profile("centos7", role)
    setup = rendered(spool_context(role), os_profile)[os_profile.paths.setup_script]
    step = setup.index(f"\n{SCRIPT}\n")
    assert step < setup.index("if selinuxenabled; then") < setup.index(f"\n{os_profile.paths.role_script}\n")
    assert step < setup.index(f"{os_profile.commands.enable_service} postfix\n")


@pytest.mark.parametrize(("os_name", "role", "units"), [
    ("centos7", Role.SMTP_IN, {"postfix": ["/var/spool/postfix"], "amavisd": ["/var/spool/amavisd/quarantine"]}),
    ("centos7", Role.SMTP_OUT, {"postfix": ["/var/spool/postfix"]}),
    ("centos7", Role.MAILSTORE, {"postfix": ["/var/spool/postfix"], "dovecot": ["/var/spool/postfix"]}),
    ("debian12", Role.SMTP_IN, {"postfix@": ["/var/spool/postfix"], "amavis": ["/var/lib/amavis/virusmails"]}),
])
def test_each_daemon_waits_for_its_folder_on_the_volume(os_name: str, role: Role, units: dict[str, list[str]]) -> None:
    # GIVEN a layer with a spool volume; THEN each unit that uses a kept folder requires its mount (Dovecot's
    # LMTP socket is in Postfix's queue), and the setup step binds exactly those folders
    files = rendered(spool_context(role), load_profile(os_name, role))
    got = {m.group(1): re.findall(r"(?m)^RequiresMountsFor=(.*)$", text)
           for path, text in files.items() if (m := re.fullmatch(r"/etc/systemd/system/(.+)\.service\.d/"
                                                                  r"mailstrata-spool\.conf", path))}
    mount = load_profile(os_name, role).paths.spool_dir
    assert got == {unit: [mount, *paths] for unit, paths in units.items()}
    binds = re.findall(r"(?m)^bind_dir (\S+) (\S+)$", files[SCRIPT])
    assert [name for name, _ in binds] == ["postfix", "amavis-quarantine"][:len(binds)]
    assert sorted({p for ps in units.values() for p in ps}) == sorted(dest for _, dest in binds)


@pytest.mark.daemons
@pytest.mark.parametrize("role", QUEUEING, ids=lambda r: r.value)
def test_systemd_reads_the_drop_ins_without_a_warning(role: Role, tmp_path: Path) -> None:
    # GIVEN this machine's units (Debian's Postfix, Dovecot, amavis) and the layer's drop-ins
    requires("systemd-analyze", why="to read the drop-ins with systemd's own loader")
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    files = rendered(spool_context(role), load_profile("debian12", role).relocated(str(root)))
    units = []
    for path, text in files.items():
        if m := re.fullmatch(rf"{root}/etc/systemd/system/(.+)\.service\.d/mailstrata-spool\.conf", path):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
            assert (root / f"usr/lib/systemd/system/{m.group(1)}.service").is_file(), f"no unit {m.group(1)} here"
            units.append(m.group(1).replace("@", "@-") + ".service")
    # WHEN systemd loads each unit THEN nothing in the drop-in is refused or unknown
    for unit in units:
        proc = subprocess.run(["systemd-analyze", "verify", f"--root={root}", unit], capture_output=True, text=True)
        assert "mailstrata-spool.conf" not in proc.stdout + proc.stderr, proc.stderr
    assert units


@pytest.mark.daemons
@pytest.mark.parametrize("role", QUEUEING, ids=lambda r: r.value)
def test_the_setup_step_passes_shellcheck(role: Role, tmp_path: Path) -> None:
    requires("shellcheck")
    script = tmp_path / "spool.sh"
    script.write_text(rendered(spool_context(role), load_profile("centos7", role))[SCRIPT])
    proc = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (0, "")


# ---- the setup step, run on a loop device -------------------------------------------------------------


@dataclass
class Server:
    """One server's root folder with its rendered files, Postfix's package-made queue, and the step."""

    root: Path
    profile: OsProfile
    files: dict[str, str]

    @property
    def script(self) -> Path:
        return self.root / SCRIPT.lstrip("/")

    def path(self, key: str) -> Path:
        return Path(str(self.profile.paths[key]))

    def fstab(self) -> list[str]:
        return self.path("fstab").read_text().splitlines()[1:]


@dataclass
class Volume:
    device: str
    tmp: Path
    id_file: Path

    def blkid(self, tag: str) -> str:
        return subprocess.run(["blkid", "-p", "-o", "value", "-s", tag, self.device], capture_output=True,
                              text=True).stdout.strip()  # fmt: skip

    def server(self, name: str, *, role: Role = Role.SMTP_IN, wait: int = 5, link: str | None = "virtio",
               stop_service: str = "false", filesystem: Filesystem = Filesystem.XFS) -> Server:
        """A fresh server: its files rendered with the Debian profile relocated under its own root, the
        volume linked under the by-id name `link` takes (None: not attached), Postfix's queue made by Postfix."""
        root = self.tmp / name
        prof = load_profile("debian12", role).relocated(str(root))
        # no systemd here: reloading it is a no-op, and nothing may stop a service unless the test says how
        commands = {**prof.commands, "daemon_reload": "true", "stop_service": stop_service}
        prof = replace(prof, commands=_Attrs("test.commands", commands))
        ctx = spool_context(role, id_file=str(self.id_file), device_wait_seconds=wait, filesystem=filesystem)
        ud = render_layer(ctx, os=prof)
        for f in ud.files:
            Path(f.path).parent.mkdir(parents=True, exist_ok=True)
            Path(f.path).write_text(f.content)
        server = Server(root, prof, {f.path: f.content for f in ud.files})
        by_id = server.path("disk_by_id_dir")
        by_id.mkdir(parents=True)
        names = {"virtio": f"virtio-{VOLUME_ID[:20]}", "scsi": f"scsi-0QEMU_QEMU_HARDDISK_{VOLUME_ID}",
                 "wwn": f"wwn-0x{VOLUME_ID.replace('-', '')}"}
        if link is not None:
            (by_id / names[link]).symlink_to(self.device)
        server.path("fstab").write_text("# static file system information\n")
        # Postfix's own queue and data folders for this root, as the twin sets them (the package's are the host's)
        conf = server.path("postfix_dir")
        with (conf / "main.cf").open("a") as fh:
            fh.write(f"queue_directory = {server.path('postfix_queue_dir')}\n"
                     f"data_directory = {root}/var/lib/postfix\n")
        (root / "var/lib/postfix").mkdir(parents=True)
        server.path("postfix_queue_dir").mkdir(parents=True)
        subprocess.run(["chown", "postfix", str(root / "var/lib/postfix")], check=True)
        check = subprocess.run(["postfix", "-c", str(conf), "check"], capture_output=True, text=True)
        assert server.path("postfix_queue_dir").joinpath("maildrop").is_dir(), check.stderr
        if "amavis_quarantine_dir" in prof.paths:
            server.path("amavis_quarantine_dir").mkdir(parents=True)
            (server.path("amavis_quarantine_dir") / "local-only").write_text("the package's, on the server's disk")
        return server

    def run(self, server: Server, then: str = "", *, before: str = "") -> subprocess.CompletedProcess[str]:
        """The step in a private mount namespace, `before` and `then` shell run in the same namespace."""
        body = f"set -e\n{before}\nbash {server.script}\n{then}\n"
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", body],
                              capture_output=True, text=True, timeout=120)


@pytest.fixture
def volume() -> Iterator[Volume]:
    requires("losetup", "blkid", "mkfs.xfs", "mkfs.ext4", "mountpoint", "sfdisk", "unshare", "postfix",
             why="for a loop device standing in for the volume, and private mounts", root=True)
    with scratch_dir("spool") as tmp_path:  # Postfix's own user must reach its data directory
        yield from _volume(tmp_path)


def _volume(tmp_path: Path) -> Iterator[Volume]:
    image = tmp_path / "volume.img"
    with image.open("wb") as f:
        f.truncate(VOLUME_BYTES)
    proc = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True)
    if proc.returncode != 0:
        unavailable(f"no loop device here: {proc.stderr.strip()}", why="to stand in for the spool volume")
    id_file = tmp_path / "run/spool-volume-id"
    id_file.parent.mkdir()
    id_file.write_text(VOLUME_ID + "\n")
    try:
        yield Volume(proc.stdout.strip(), tmp_path, id_file)
    finally:
        subprocess.run(["losetup", "-d", proc.stdout.strip()], capture_output=True)


def _sendmail(server: Server) -> str:
    """Real Postfix queues a message (sendmail -> postdrop into maildrop): no daemon needs to run."""
    conf = server.path("postfix_dir")
    return (f"printf 'Subject: kept\\n\\nqueued before the replacement\\n' | "
            f"MAIL_CONFIG={conf} sendmail -f a@example.org b@example.org\n")


@pytest.mark.daemons
def test_first_boot_formats_the_blank_volume_and_the_queue_is_on_it(volume: Volume) -> None:
    # GIVEN a new server and a blank volume attached under its virtio name
    server = volume.server("server1")
    queue, mount = server.path("postfix_queue_dir"), server.path("spool_dir")
    # WHEN the step runs (twice: a rerun changes nothing), then a file is written into the queue directory
    proc = volume.run(server, f"bash {server.script}\necho queued > {queue}/incoming/probe\n"
                              f"cat {mount}/postfix/incoming/probe\nls {server.path('amavis_quarantine_dir')}\n")
    # THEN the volume is formatted once, labelled, mounted by UUID, and the queue is the volume's folder
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("formatting the blank volume") == 1
    assert f"{mount} is already mounted: using it" in proc.stdout
    assert (volume.blkid("TYPE"), volume.blkid("LABEL")) == ("xfs", spool.LABEL)
    assert server.fstab() == [
        f"UUID={volume.blkid('UUID')} {mount} xfs defaults,nofail 0 2",
        f"{mount}/postfix {queue} none bind,nofail 0 0",
        f"{mount}/amavis-quarantine {server.path('amavis_quarantine_dir')} none bind,nofail 0 0",
    ]
    # the file written under the queue directory is on the volume; the quarantine started as the package's
    assert proc.stdout.splitlines()[-2:] == ["queued", "local-only"]
    # and systemd's own fstab generator makes the mount units a reboot mounts: the volume, then the binds
    units = fstab_units(server.path("fstab"), volume.tmp / "generated")
    assert units[str(queue)] == {"What": f"{mount}/postfix", "Type": "none", "Options": "bind,nofail"}
    assert units[str(mount)] == {"What": f"/dev/disk/by-uuid/{volume.blkid('UUID')}", "Type": "xfs",
                                 "Options": "defaults,nofail"}


def fstab_units(fstab: Path, out: Path) -> dict[str, dict[str, str]]:
    """{Where: the [Mount] settings} of the units systemd-fstab-generator makes from `fstab`."""
    generator = "/usr/lib/systemd/system-generators/systemd-fstab-generator"
    if not Path(generator).exists():
        unavailable("no systemd-fstab-generator", why="to read the fstab lines as systemd does", install="systemd")
    out.mkdir()
    subprocess.run([generator, str(out), str(out), str(out)], check=True, capture_output=True,
                   env={**os.environ, "SYSTEMD_FSTAB": str(fstab), "SYSTEMD_PROC_CMDLINE": ""})
    units = {}
    for unit in out.glob("*.mount"):
        mount = dict(re.findall(r"(?m)^(\w+)=(.*)$", unit.read_text().split("[Mount]")[1]))
        units[mount.pop("Where")] = mount
    return units


@pytest.mark.daemons
def test_a_replacement_mounts_the_volume_without_formatting_and_finds_the_queued_mail(volume: Volume) -> None:
    # GIVEN a first server that queued a message (real Postfix, into its queue on the volume)
    first = volume.server("server1")
    proc = volume.run(first, _sendmail(first) + f"ls {first.path('postfix_queue_dir')}/maildrop")
    assert proc.returncode == 0, proc.stderr
    queue_id = proc.stdout.split()[-1]
    uuid = volume.blkid("UUID")
    # WHEN the server is replaced: a fresh root (its package made its own empty queue), the same volume,
    # now under its virtio-scsi name
    second = volume.server("server2", link="scsi")
    (second.path("postfix_queue_dir") / "maildrop" / "local-only").write_text("the new server's own disk")
    conf = second.path("postfix_dir")
    proc = volume.run(second, f"ls {second.path('postfix_queue_dir')}/maildrop\n"
                              f"MAIL_CONFIG={conf} postcat -q {queue_id}")
    # THEN the volume keeps its filesystem, and the new server's Postfix finds the message in its queue
    assert proc.returncode == 0, proc.stderr
    assert "formatting" not in proc.stdout and "already holds xfs; keeping its data" in proc.stdout
    assert volume.blkid("UUID") == uuid
    assert "queued before the replacement" in proc.stdout
    # the volume's queue is used as it is: the new server's local one is not copied over it
    assert "local-only" not in proc.stdout.split("queued before")[0]


@pytest.mark.daemons
def test_a_volume_holding_another_filesystem_is_never_formatted(volume: Volume) -> None:
    subprocess.run(["mkfs.ext4", "-q", volume.device], check=True)
    uuid = volume.blkid("UUID")
    server = volume.server("server1")
    proc = volume.run(server)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        f"mailstrata-setup-spool: ERROR: {volume.device} holds a ext4 filesystem, not xfs; refusing to format it")
    assert (volume.blkid("TYPE"), volume.blkid("UUID")) == ("ext4", uuid)
    assert server.fstab() == []


@pytest.mark.daemons
def test_a_volume_holding_a_partition_table_is_never_formatted(volume: Volume) -> None:
    subprocess.run(["sfdisk", "-q", volume.device], input="label: gpt\n", text=True, capture_output=True)
    proc = volume.run(volume.server("server1"))
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(f"ERROR: {volume.device} holds a gpt partition table; refusing to format it")
    assert volume.blkid("TYPE") == ""


@pytest.mark.daemons
def test_a_missing_volume_ends_after_the_wait_naming_every_name_looked_for(volume: Volume) -> None:
    # GIVEN a server whose volume is not attached, with a 2 s wait
    server = volume.server("server1", wait=2, link=None)
    by_id = server.path("disk_by_id_dir")
    started = time.monotonic()
    proc = volume.run(server)
    # THEN the step stops in bounded time with every /dev/disk/by-id name a Cinder volume may have
    assert time.monotonic() - started < 10
    assert proc.returncode == 1
    short = VOLUME_ID[:20]
    names = [f"{by_id}/virtio-{short}", f"{by_id}/scsi-0QEMU_QEMU_HARDDISK_{VOLUME_ID}",
             f"{by_id}/scsi-0QEMU_QEMU_HARDDISK_{short}", f"{by_id}/scsi-SQEMU_QEMU_HARDDISK_{VOLUME_ID}",
             f"{by_id}/scsi-SQEMU_QEMU_HARDDISK_{short}", f"{by_id}/wwn-0x{VOLUME_ID.replace('-', '')}"]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"mailstrata-setup-spool: ERROR: no block device at {' '.join(names)} after 2 s; is the volume attached?")
    assert volume.blkid("TYPE") == ""


@pytest.mark.daemons
def test_without_the_volume_id_the_step_fails_loudly(volume: Volume) -> None:
    volume.id_file.unlink()
    proc = volume.run(volume.server("server1"))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"mailstrata-setup-spool: ERROR: no spool volume ID in {volume.id_file}; the "
                                   "platform writes it at boot (bootcmd)")
    assert volume.blkid("TYPE") == ""


@pytest.mark.daemons
def test_a_spool_already_mounted_is_used_without_looking_for_a_device(volume: Volume) -> None:
    # GIVEN a folder mounted on the spool mount point (as the twin does), no volume ID, no device
    volume.id_file.unlink()
    server = volume.server("server1", link=None)
    folder = volume.tmp / "twin-volume"
    folder.mkdir()
    mount, queue = server.path("spool_dir"), server.path("postfix_queue_dir")
    made = (queue / "maildrop").stat()
    proc = volume.run(server, f"echo queued > {queue}/incoming/probe",
                      before=f"mkdir -p {mount}\nmount --bind {folder} {mount}")
    # THEN the queue is that folder's `postfix`, a copy of the package-made queue
    assert proc.returncode == 0, proc.stderr
    assert (folder / "postfix/incoming/probe").read_text() == "queued\n"
    copy = (folder / "postfix/maildrop").stat()  # postfix:postdrop, its own mode: kept by cp -a
    assert (copy.st_mode, copy.st_uid, copy.st_gid) == (made.st_mode, made.st_uid, made.st_gid)
    assert volume.blkid("TYPE") == ""


@pytest.mark.daemons
def test_a_queue_directory_elsewhere_stops_the_step(volume: Volume) -> None:
    # GIVEN a main.cf whose queue_directory is not the one the step binds (mail there would be lost unseen)
    server = volume.server("server1")
    with (server.path("postfix_dir") / "main.cf").open("a") as fh:
        fh.write(f"queue_directory = {volume.tmp}/elsewhere\n")
    proc = volume.run(server)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        f"ERROR: Postfix's queue_directory is {volume.tmp}/elsewhere, not {server.path('postfix_queue_dir')}")


def test_the_partial_is_shared_by_the_nfs_server_and_the_spool() -> None:
    # The NFS server's volume and the spool volume are found, formatted and mounted by the same shell.
    nfs = rendered(_sample.context(Role.NFS_SERVER), load_profile("centos7", Role.NFS_SERVER))
    spool_script = rendered(spool_context(Role.SMTP_OUT), load_profile("centos7", Role.SMTP_OUT))[SCRIPT]

    def partial(text: str) -> str:
        start = text.index("\nDEVICE=\n")
        return text[start:text.index("\n}\n", text.index("\nmount_volume() {", start)) + 3]

    assert partial(nfs["/usr/local/sbin/mailstrata-setup-role"]) == partial(spool_script)



@pytest.mark.daemons
def test_the_replacements_running_postfix_serves_the_queue_from_the_volume(volume: Volume) -> None:
    # GIVEN a message the first server queued on the volume
    first = volume.server("server1")
    proc = volume.run(first, _sendmail(first) + f"ls {first.path('postfix_queue_dir')}/maildrop")
    assert proc.returncode == 0, proc.stderr
    queue_id = proc.stdout.split()[-1]
    # WHEN the replacement's step has run and its Postfix starts (its own network namespace: nothing but lo)
    second = volume.server("server2")
    conf = second.path("postfix_dir")
    proc = subprocess.run(
        ["unshare", "--mount", "--net", "--propagation", "private", "bash", "-c",
         f"set -e\nip link set lo up\nbash {second.script}\n"
         f"trap 'postfix -c {conf} abort >/dev/null 2>&1 || true' EXIT\npostfix -c {conf} start\n"
         f"postqueue -c {conf} -p\n"],
        capture_output=True, text=True, timeout=120)
    # THEN the running Postfix lists the message: its queue is the volume's
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"(?m)^{queue_id}\W", proc.stdout), proc.stdout
    assert "Mail system is down" not in proc.stderr  # showq answered: the master runs on the volume's queue


@pytest.mark.daemons
def test_a_postfix_already_running_is_stopped_before_its_queue_moves(volume: Volume) -> None:
    # GIVEN a server whose Postfix runs on its own disk's queue when the step starts (as a package may start it)
    stub = volume.tmp / "stop-service"
    server = volume.server("server1", stop_service=str(stub))
    conf = server.path("postfix_dir")
    stub.write_text(f'#!/bin/sh\necho "$@" >> {volume.tmp}/stopped\nexec postfix -c {conf} stop\n')
    stub.chmod(0o755)
    # WHEN the step runs
    proc = subprocess.run(
        ["unshare", "--mount", "--net", "--propagation", "private", "bash", "-c",
         f"set -e\nip link set lo up\ntrap 'postfix -c {conf} abort >/dev/null 2>&1 || true' EXIT\n"
         f"postfix -c {conf} start\nbash {server.script}\n"
         f"postfix -c {conf} status 2>/dev/null || echo 'not running'\n"],
        capture_output=True, text=True, timeout=120)
    # THEN it stops Postfix through the service manager before binding the queue (mailstrata-setup starts it)
    assert proc.returncode == 0, proc.stderr
    assert "stopping the Postfix that its package started" in proc.stdout
    assert (volume.tmp / "stopped").read_text() == "postfix\n"
    assert proc.stdout.splitlines()[-1] == "not running"


@pytest.mark.daemons
def test_an_ext4_spool_is_formatted_labelled_and_kept(volume: Volume) -> None:
    # GIVEN a layer whose spool volumes are ext4; WHEN a first and then a replacing server run the step
    first = volume.server("server1", filesystem=Filesystem.EXT4)
    assert volume.run(first, f"echo queued > {first.path('postfix_queue_dir')}/incoming/probe").returncode == 0
    second = volume.server("server2", filesystem=Filesystem.EXT4)
    proc = volume.run(second, f"cat {second.path('postfix_queue_dir')}/incoming/probe")
    # THEN the volume was formatted once, as ext4 with the label, and the replacement finds the queue
    assert proc.returncode == 0, proc.stderr
    assert (volume.blkid("TYPE"), volume.blkid("LABEL")) == ("ext4", spool.LABEL)
    assert "already holds ext4; keeping its data" in proc.stdout and proc.stdout.endswith("queued\n")
