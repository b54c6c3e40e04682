"""freshclam on every ClamAV host: its config (the platform's mirror) read by freshclam itself, and a schedule.

Which hosts run ClamAV is read from what each role renders (a clamd or clamav-milter config, by the
banner naming its template), so a role that gains a scanner without freshclam fails here. Debian 12's
freshclam 1.4 parses the rendered file (`freshclam --config-file=F --version` exits 2 on any unknown or
malformed option, without touching the network) and `clamconf -n` shows the values it took.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mailstrata.config import parse_config
from mailstrata.roles import Role
from mailstrata.userdata.context import AntivirusPolicy, LayerContext
from mailstrata.userdata.daemons import clamav
from mailstrata.userdata.from_config import platform_context
from mailstrata.userdata.profiles import load_profile
from mailstrata.userdata.render import LayerUserData, render_layer
from tests.config._support import MINIMAL_YAML, problems_of
from tests.support import contexts
from tests.support.requires import requires
from tests.userdata import _sample

OSES = ("centos7", "debian12")
SCANNER_TEMPLATES = ("clamav/etc/clamd.d/", "clamav/etc/mail/clamav-milter")
CRON_TEMPLATE = "clamav/etc/cron.d/mailstrata-freshclam.j2"
PRIVATE = "https://clamav-mirror.domain01.dom/clamav"


def rendered(role: Role, os_name: str, antivirus: AntivirusPolicy | None = None) -> LayerUserData:
    ctx: LayerContext = _sample.context(role)
    if antivirus is not None:
        ctx = ctx.with_platform(antivirus=antivirus)
    return render_layer(ctx, os_name)


def made_from(data: LayerUserData, template_prefix: str) -> list[str]:
    """The paths of the files rendered from templates starting with `template_prefix` (by their banner)."""
    # the banner is the first line, or the second after a script's #! line
    return [f.path for f in data.files if any(f" from {template_prefix}" in ln for ln in f.content.split("\n")[:2])]


def clamav_hosts(os_name: str) -> dict[Role, LayerUserData]:
    out = {}
    for role in Role:
        data = rendered(role, os_name)
        if any(made_from(data, prefix) for prefix in SCANNER_TEMPLATES):
            out[role] = data
    return out


@pytest.mark.parametrize("os_name", OSES)
def test_given_every_role_when_rendered_then_every_clamav_host_schedules_freshclam_with_its_config(
    os_name: str,
) -> None:
    hosts = clamav_hosts(os_name)
    assert hosts, "no role renders a clamd or clamav-milter config: the scanner detection is broken"
    unscheduled = []
    for role, data in sorted(hosts.items()):
        crons = made_from(data, CRON_TEMPLATE)
        lines = [ln for path in crons for ln in data.file(path).content.splitlines()
                 if ln and not ln.startswith("#") and "=" not in ln.split()[0]]
        runs = [m for ln in lines if (m := re.search(r"freshclam .*--config-file=(\S+)", ln))]
        if not runs or any(m.group(1) not in {f.path for f in data.files} for m in runs):
            unscheduled.append(role.value)
    assert unscheduled == []


@pytest.mark.parametrize("os_name", OSES)
def test_given_the_default_mirror_when_rendered_then_freshclam_uses_clamavs_cdn(os_name: str) -> None:
    for role, data in clamav_hosts(os_name).items():
        conf = data.file(clamav.updater(AntivirusPolicy(), load_profile(os_name, role)).conf).content
        assert "DatabaseMirror database.clamav.net" in conf.splitlines()
        assert not any(ln.startswith("PrivateMirror") for ln in conf.splitlines())


def test_given_a_config_with_a_private_mirror_when_read_then_the_platform_carries_it() -> None:
    cfg = parse_config({**yaml.safe_load(MINIMAL_YAML), "mail": {"antivirus": {"private_mirror": PRIVATE}}})
    platform = platform_context(cfg, vips=dict.fromkeys(Role, "10.20.0.9"), directory=contexts.DIRECTORY)
    assert platform.antivirus == AntivirusPolicy(private_mirror=PRIVATE)


def test_given_a_private_mirror_that_is_no_url_when_read_then_the_config_is_refused() -> None:
    data = {**yaml.safe_load(MINIMAL_YAML), "mail": {"antivirus": {"private_mirror": "mirror.domain01.dom"}}}
    assert [p for p in problems_of(data) if "antivirus" in p] != []


def _freshclam_parse(conf: str, tmp_path: Path) -> dict[str, str]:
    requires("freshclam", why="as ClamAV's own freshclam.conf parser")
    requires("clamconf", why="to show the values freshclam's parser took")
    (tmp_path / "freshclam.conf").write_text(conf)
    proc = subprocess.run(["freshclam", f"--config-file={tmp_path / 'freshclam.conf'}", "--version"],
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (0, "")
    shown = subprocess.run(["clamconf", "-n", "-c", str(tmp_path)], capture_output=True, text=True).stdout
    section = shown.split("Config file: freshclam.conf", 1)[1].split("\n\n", 1)[0]
    return dict(re.findall(r'^(\w+) = "(.*)"$', section, flags=re.M))


@pytest.mark.daemons
@pytest.mark.parametrize("role", [Role.SMTP_IN, Role.SMTP_OUT])
def test_given_debian12_when_freshclam_reads_the_rendered_config_then_it_takes_the_cdn(
    role: Role, tmp_path: Path
) -> None:
    data = rendered(role, "debian12")
    values = _freshclam_parse(data.file("/etc/clamav/freshclam.conf").content, tmp_path)
    assert values["DatabaseMirror"] == "database.clamav.net"
    assert values["LogFacility"] == "LOG_MAIL"
    assert "PrivateMirror" not in values


@pytest.mark.daemons
def test_given_a_private_mirror_when_freshclam_reads_the_rendered_config_then_it_takes_the_url(tmp_path: Path) -> None:
    data = rendered(Role.SMTP_IN, "debian12", AntivirusPolicy(private_mirror=PRIVATE))
    values = _freshclam_parse(data.file("/etc/clamav/freshclam.conf").content, tmp_path)
    assert values["PrivateMirror"] == PRIVATE
    assert "DatabaseMirror" not in values
