"""The header From check (mailstrata-from-check): its rendered script and unit, read by the real tools.

What it does to mail is tested live, against real Postfix, saslauthd and Samba AD, with the rest of SMTP-out
(tests/userdata/roles/test_smtp_out.py, `test_live_*from*`, `*alias*`, `*group*`, `*reply_to*`,
`*deferred*`): own address delivered and signed, a colleague's refused and never delivered, aliases, the
shared-mailbox rule, unreadable and repeated From headers, the internal relay untouched, and deferral
when the milter or the directory is down. Here: the script runs on both Pythons it is written for, the
unit is one systemd accepts, and Postfix and the unit agree on where the milter listens.
"""

from __future__ import annotations

import ast
import glob
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from mailstrata.roles import Role
from mailstrata.userdata.daemons import from_check, postfix
from mailstrata.userdata.profiles import load_profile
from mailstrata.userdata.render import LayerUserData, render_layer
from tests.support.requires import requires, unavailable
from tests.userdata import _sample

SCRIPT = "/usr/local/sbin/mailstrata-from-check"
UNIT = "/etc/systemd/system/mailstrata-from-check.service"


def _layer(os_name: str) -> LayerUserData:
    return render_layer(_sample.context(Role.SMTP_OUT), os=load_profile(os_name, Role.SMTP_OUT))


def _unit(layer: LayerUserData) -> dict[str, str]:
    text = layer.file(UNIT).content
    return dict(ln.split("=", 1) for ln in text.splitlines() if "=" in ln and not ln.startswith("#"))


def _python36() -> str:
    """CentOS 7's Python 3.6: pyenv's, or python3.6 on PATH (a pyenv shim there may not run)."""
    candidates = [*sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3.6"))),
                  *filter(None, [shutil.which("python3.6")])]
    found = next((c for c in candidates if subprocess.run([c, "-V"], capture_output=True).returncode == 0), None)
    if found is None:
        unavailable("python3.6", why="to run the milter as CentOS 7's python3 does", install="pyenv install 3.6")
    return found


@pytest.mark.parametrize("os_name", ["centos7", "debian12"])
def test_the_script_is_roots_and_executable(os_name: str) -> None:
    f = _layer(os_name).file(SCRIPT)
    assert (f.owner, f.mode, f.content.splitlines()[0]) == ("root:root", "0755", "#!/usr/bin/python3")


# No Debian package or package registry has CPython 3.6 (pyenv builds it from python.org's sources): where it
# is missing, the grammar check below still runs.
NO_PYTHON36 = "CentOS 7's Python 3.6 is in no Debian package; machines without pyenv's 3.6 skip the run"


def test_the_script_is_python_3_6_grammar() -> None:
    # CPython's own parser with CentOS 7's grammar version: no syntax newer than 3.6 (f-string `=`, walrus, ...).
    source = _layer("centos7").file(SCRIPT).content
    ast.parse(source, feature_version=(3, 6))


@pytest.mark.parametrize("python", [pytest.param("3.6", marks=pytest.mark.skip_allowed(NO_PYTHON36)), "debian"])
def test_the_script_starts_on_centos7s_and_debians_python(python: str, tmp_path: Path) -> None:
    # Standard library only: the imports and the argument parser run on both interpreters.
    interpreter = _python36() if python == "3.6" else "/usr/bin/python3"
    if python == "debian":
        requires("/usr/bin/python3")
    script = tmp_path / "mailstrata-from-check"
    script.write_text(_layer("centos7").file(SCRIPT).content)
    proc = subprocess.run([interpreter, "-W", "error", str(script), "--help"], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr, proc.stdout.startswith("usage: mailstrata-from-check")) == (0, "", True)


@pytest.mark.daemons
@pytest.mark.parametrize("os_name", ["centos7", "debian12"])
def test_systemd_accepts_the_unit(os_name: str, tmp_path: Path) -> None:
    requires("systemd-analyze")
    unit = tmp_path / "mailstrata-from-check.service"
    unit.write_text(_layer(os_name).file(UNIT).content)
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_the_unit_runs_it_as_its_own_user_with_postfixs_group_and_restarts_it() -> None:
    unit = _unit(_layer("centos7"))
    got = {k: unit[k] for k in ("User", "Group", "SupplementaryGroups", "Restart", "Before")}
    assert got == {"User": "mailstrata-from", "Group": "mailstrata-from", "SupplementaryGroups": "postfix",
                   "Restart": "always", "Before": "postfix.service"}  # fmt: skip


@pytest.mark.parametrize("os_name", ["centos7", "debian12"])
def test_the_unit_asks_postfixs_own_sender_login_map(os_name: str) -> None:
    argv = shlex.split(_unit(_layer(os_name))["ExecStart"])
    opts = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert (argv[:3], opts) == (["/usr/bin/python3", "-u", SCRIPT], {
        "--listen": "127.0.0.1:7358", "--postmap": "/usr/sbin/postmap", "--config-dir": "/etc/postfix",
        "--map": "ldap:/etc/postfix/ldap-sender-login.cf"})  # fmt: skip


def test_postfix_names_the_milter_where_it_listens_between_the_scan_and_dkim() -> None:
    layer = _layer("centos7")
    main = dict(ln.split(" = ", 1) for ln in layer.file("/etc/postfix/main.cf").content.splitlines() if " = " in ln)
    argv = shlex.split(_unit(layer)["ExecStart"])
    listen = argv[argv.index("--listen") + 1]
    milters = main["smtpd_milters"].split(", ")
    assert (milters.index(f"inet:{listen}"), len(milters), main["smtpd_sender_login_maps"]) == (
        1, 3, argv[argv.index("--map") + 1])


def test_a_socket_that_is_not_inet_is_refused_with_its_value() -> None:
    profile = load_profile("centos7", Role.SMTP_OUT)
    from dataclasses import replace

    from mailstrata.userdata.profiles import _Attrs

    bad = replace(profile, values=_Attrs("test", {**profile.values, "from_check_socket": "local:/run/x.sock"}))
    with pytest.raises(ValueError) as err:
        from_check.settings(bad)
    assert str(err.value) == "values.from_check_socket: expected inet:PORT@HOST, got 'local:/run/x.sock'"


def test_the_milter_reads_the_map_postfix_writes() -> None:
    assert from_check.settings(load_profile("centos7", Role.SMTP_OUT)).table == (
        f"ldap:/etc/postfix/{postfix.SENDER_LOGIN_MAP}")
