"""`mailstrata diff BASE HEAD` on pairs of real configs, commits and synthesized folders (real synths, no mocks).

Each pair starts from the embedded default config (mailstrata/config/default.yaml) and changes one thing, as
a pull request would: nothing, a DNSBL, a mail domain, smtp-in's image, or only the AD bind password's value.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import mailstrata.config
from mailstrata import cli, diff
from tests.support.requires import requires

DEFAULT = Path(mailstrata.config.__file__).parent / "default.yaml"
PROJECT = Path(__file__).resolve().parents[1]
SERVER = "openstack_compute_instance_v2."


def _config(folder: Path, name: str, change: Any = None) -> str:
    doc = yaml.safe_load(DEFAULT.read_text())
    if change is not None:
        change(doc)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def _add_dnsbl(doc: dict[str, Any]) -> None:
    doc.setdefault("mail", {}).setdefault("spam", {})["dnsbls"] = [
        "zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _config(tmp_path_factory.mktemp("diff-configs"), "base")


def test_same_config_is_no_change(base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = _config(tmp_path, "head")
    code, out = _cli(["diff", base, head], capsys)
    assert code == diff.EXIT_NO_CHANGE
    assert "No change" in out
    assert "Resources:" not in out and "```diff" not in out
    code, out = _cli(["diff", base, head, "--format", "json"], capsys)
    report = json.loads(out)
    assert (code, report["changed"], report["exit_code"]) == (0, False, 0)
    (stack,) = report["stacks"]
    assert not any(stack[k] for k in ("added", "removed", "changed", "servers", "files", "dns_added", "dns_removed",
                                      "warnings"))


def test_a_dnsbl_added_changes_smtp_in_main_cf_only(base: str, tmp_path: Path) -> None:
    report = diff.run(base, _config(tmp_path, "dnsbl", _add_dnsbl))
    (stack,) = report.stacks
    assert list(stack.files) == ["smtp_in"]
    assert list(stack.files["smtp_in"]) == ["/etc/postfix/main.cf"]
    patch = stack.files["smtp_in"]["/etc/postfix/main.cf"]
    added = [ln for ln in patch.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    assert added == ["+    reject_rbl_client b.barracudacentral.org,"]
    assert not [ln for ln in patch.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    # the smtp-in servers, and only they, change user-data, which a rollout applies (a deploy ignores it)
    assert sorted(s.name for s in stack.servers) == ["mail-smtp-in-01", "mail-smtp-in-02"]
    for s in stack.servers:
        assert s.layer == "smtp_in" and s.rollout
        assert s.reasons == [f"user-data changed: /etc/postfix/main.cf ({diff.ROLLOUT_APPLIES})"]
    assert all(c.attributes == {"user_data": {"changed": True, "files": ["/etc/postfix/main.cf"]}}
               for c in stack.changed)
    assert not stack.added and not stack.removed and not stack.warnings and not stack.dns_added
    assert report.exit_code == diff.EXIT_CHANGE  # no server is replaced by the deploy
    text = diff.markdown(report)
    assert "+    reject_rbl_client b.barracudacentral.org," in text
    assert "`user_data`: changed (/etc/postfix/main.cf)" in text


def test_a_domain_added_changes_files_of_several_layers_and_dns(base: str, tmp_path: Path) -> None:
    head = _config(tmp_path, "domain", lambda d: d["domains"].append("domain03.dom"))
    report = diff.run(base, head)
    (stack,) = report.stacks
    assert {"smtp_in", "smtp_out", "mailstore"} <= set(stack.files)
    assert any("domain03.dom" in ln for ln in stack.files["smtp_in"]["/etc/postfix/transport"].splitlines()
               if ln.startswith("+"))
    assert any("domain03.dom" in ln for ln in stack.files["smtp_out"]["/etc/opendkim/SigningTable"].splitlines()
               if ln.startswith("+"))
    added = {(name, rtype) for name, rtype, _ in stack.dns_added}
    assert ("domain03.dom.", "MX") in added and ("_dmarc.domain03.dom.", "TXT") in added
    assert not stack.dns_removed
    # Designate: a zone and its record sets are added; nothing existing is destroyed
    assert "openstack_dns_zone_v2.zone-domain03dom" in stack.added
    assert not stack.removed
    layers = {s.layer for s in stack.servers}
    assert {"smtp_in", "smtp_out", "mailstore"} <= layers and all(s.rollout for s in stack.servers)
    assert report.exit_code == diff.EXIT_CHANGE


def test_an_image_changed_is_applied_by_a_rollout_not_by_a_deploy(base: str, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The image is ForceNew in the provider: in the servers' ignore_changes, a deploy does not replace them and
    no warning is due; the slots' revisions change, and a rollout replaces the servers."""
    image = "CentOS-7-x86_64-GenericCloud-2211"
    head = _config(tmp_path, "image", lambda d: d["layers"]["smtp_in"].update(image=image))
    code, out = _cli(["diff", base, head, "--format", "json"], capsys)
    assert code == diff.EXIT_CHANGE
    (stack,) = json.loads(out)["stacks"]
    assert sorted(s["name"] for s in stack["servers"]) == ["mail-smtp-in-01", "mail-smtp-in-02"]
    assert all(s["reasons"] == [f"image_name changed ({diff.ROLLOUT_APPLIES})"] and s["rollout"]
               for s in stack["servers"])
    assert stack["warnings"] == []
    servers = [c for c in stack["changed"] if c["address"].startswith(diff.SERVER)]
    assert len(servers) == 2 and all(not c["replaced"] and c["attributes"]["image_name"]["after"] == image
                                     for c in servers)
    revisions = [c for c in stack["changed"] if "_revision-" in c["address"]]
    assert len(revisions) == 2 and all(c["attributes"]["input.image_name"]["after"] == image for c in revisions)
    assert stack["files"] == {}  # the image is not in the user-data


def test_the_ad_password_rotated_is_no_change_and_never_printed(base: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The bind password is a Terraform variable: its new value is given at deploy time, the config is the same.
    The diff says so, names the layers whose user-data embeds it, and has no way to print the value."""
    secret = "Rotated-Secret-7f3c9a"
    monkeypatch.setenv("TF_VAR_ad_bind_password", secret)
    head = _config(tmp_path, "rotated")
    code, out = _cli(["diff", base, head], capsys)
    assert code == diff.EXIT_NO_CHANGE
    assert "No change" in out
    assert "`var.ad_bind_password`: mailstore, smtp_in, smtp_out, webmail" in out
    code, js = _cli(["diff", base, head, "--format", "json"], capsys)
    assert code == 0 and json.loads(js)["stacks"][0]["variables"]["ad_bind_password"] == [
        "mailstore", "smtp_in", "smtp_out", "webmail"]
    assert secret not in out and secret not in js


def test_folder_mode_reads_two_synthesized_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli.main(["synth", "--config", _config(tmp_path, "base"), "--outdir", str(a)]) == 0
    assert cli.main(["synth", "--config", _config(tmp_path, "dnsbl", _add_dnsbl), "--outdir", str(b)]) == 0
    capsys.readouterr()
    code, out = _cli(["diff", str(a), str(b), "--format", "json"], capsys)
    assert code == diff.EXIT_CHANGE
    (stack,) = json.loads(out)["stacks"]
    assert list(stack["files"]["smtp_in"]) == ["/etc/postfix/main.cf"]
    code, out = _cli(["diff", str(a), str(a)], capsys)
    assert code == diff.EXIT_NO_CHANGE


def test_errors_exit_3_or_4(base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT.read_text().replace("name: mail", "name: 'not a name!'", 1))
    assert cli.main(["diff", base, str(bad)]) == diff.EXIT_INVALID
    assert cli.main(["diff", base]) == diff.EXIT_INVALID  # usage: argparse's 2 would read as "replacement"
    assert cli.main(["diff", str(tmp_path / "missing"), base]) == diff.EXIT_FAILED
    assert "neither a folder, a config file nor a commit" in capsys.readouterr().err


def test_commit_mode_synthesizes_each_commit_with_its_own_code(tmp_path: Path) -> None:
    requires("git", why="to make a repository of two commits")
    repo = tmp_path / "repo"
    listed = subprocess.run(["git", "-C", str(PROJECT), "ls-files", "-z"], capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("the project is not a git checkout")
    for rel in listed.stdout.decode().split("\0"):
        if rel and (PROJECT / rel).is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / rel, repo / rel)

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                       check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    # a change of code, not config: only the commit's own code (not the installed package) can show it
    defaults = repo / "mailstrata" / "defaults.py"
    before = 'DNSBLS: tuple[str, ...] = ("zen.spamhaus.org", "bl.spamcop.net")'
    assert before in defaults.read_text()
    defaults.write_text(defaults.read_text().replace(before, before[:-1] + ', "b.barracudacentral.org")'))
    git("commit", "-q", "-am", "a DNSBL by default")
    report = diff.run("HEAD~1", "HEAD", repo=repo)
    (stack,) = report.stacks
    assert list(stack.files) == ["smtp_in"]
    assert "+    reject_rbl_client b.barracudacentral.org," in stack.files["smtp_in"]["/etc/postfix/main.cf"]
    assert report.exit_code == diff.EXIT_CHANGE
    assert not list((repo / diff.CACHE_DIR).iterdir())  # the exported trees are gone


def test_replacement_follows_terraform_references_and_lifecycle(tmp_path: Path) -> None:
    """Replacement is read from Terraform's rules, not from mailstrata's names: a ForceNew argument reading a
    replaced resource, and the per-slot shape a rollout will use (`terraform_data` revision +
    `replace_triggered_by`, `ignore_changes = [user_data]`). The stacks are real synths, edited as the change would."""
    import copy

    out = tmp_path / "out"
    assert cli.main(["synth", "--config", _config(tmp_path, "base"), "--outdir", str(out)]) == 0
    doc = diff.read_folder(out)["mail"]
    servers, ports = doc["resource"]["openstack_compute_instance_v2"], doc["resource"]["openstack_networking_port_v2"]
    srv1 = next(k for k in servers if k.startswith("smtp-in_server-01"))
    srv2 = next(k for k in servers if k.startswith("smtp-in_server-02"))
    port1 = next(k for k in ports if k.startswith("smtp-in_port-01"))

    head = copy.deepcopy(doc)
    head["resource"]["openstack_networking_port_v2"][port1]["network_id"] = "another-network"
    stack = diff.compare_stack("mail", doc, head)
    (server,) = stack.servers
    assert server.name == "mail-smtp-in-01" and not server.rollout
    assert server.reasons == [f"network reads openstack_networking_port_v2.{port1}, which is replaced"]
    assert any("the server's port is replaced" in w for w in stack.warnings)

    base, head = copy.deepcopy(doc), copy.deepcopy(doc)
    added = ["    reject_rbl_client b.barracudacentral.org,"]
    for side, revision in ((base, "r1"), (head, "r2")):
        side["resource"]["terraform_data"] = {"revision-smtp-in-01": {"input": revision}}
        side["resource"]["openstack_compute_instance_v2"][srv1]["lifecycle"] = {
            "ignore_changes": ["user_data"], "replace_triggered_by": ["terraform_data.revision-smtp-in-01"]}
        side["resource"]["openstack_compute_instance_v2"][srv2]["lifecycle"] = {"ignore_changes": ["user_data"]}
    lines = head["locals"]["user_data_mail_smtp_in"]
    at = next(i for i, ln in enumerate(lines) if "reject_rbl_client bl.spamcop.net" in ln)
    head["locals"]["user_data_mail_smtp_in"] = [*lines[:at + 1], *(" " * 6 + x for x in added),
                                                *lines[at + 1:]]
    stack = diff.compare_stack("mail", base, head)
    by_name = {s.name: s for s in stack.servers}
    first = by_name["mail-smtp-in-01"].reasons[0]
    assert first == "replace_triggered_by terraform_data.revision-smtp-in-01, which changes"
    assert all(s.rollout for s in stack.servers)
    assert by_name["mail-smtp-in-02"].reasons == [
        "user-data changed: /etc/postfix/main.cf (not applied by a deploy: lifecycle.ignore_changes; a rollout "
        "applies it)"]
    assert list(stack.files["smtp_in"]) == ["/etc/postfix/main.cf"]


def test_a_comment_too_long_leaves_the_file_diffs_out(base: str, tmp_path: Path) -> None:
    report = diff.run(base, _config(tmp_path, "dnsbl", _add_dnsbl))
    full = diff.markdown(report, limit=None)
    assert "+    reject_rbl_client b.barracudacentral.org," in full
    short = diff.markdown(report, limit=len(full) - 1)
    assert "reject_rbl_client" not in short and "too long for a comment" in short
    assert "mail-smtp-in-01" in short  # the servers and resources stay


def test_a_new_state_path_shows_in_the_terraform_block(base: str, tmp_path: Path) -> None:
    """What is not a resource still shows: here the backend, whose change means a state migration."""
    head = _config(tmp_path, "state", lambda d: d.update(backend={"type": "local", "path": "state/mail-new.tfstate"}))
    report = diff.run(base, head)
    (stack,) = report.stacks
    (block,) = stack.blocks
    assert block.address == "terraform.backend"
    (change,) = block.attributes.values()
    assert str(change["after"]).endswith("state/mail-new.tfstate")
    assert not stack.changed and not stack.files and report.exit_code == diff.EXIT_CHANGE
    assert "`terraform.backend`" in diff.markdown(report)


def test_a_file_holding_a_code_fence_cannot_close_the_comment_s_fence() -> None:
    patch = "--- a/etc/motd\n+++ b/etc/motd\n@@ -1 +1 @@\n-x\n+```\n"
    stack = diff.StackDiff(stack="mail", files={"smtp_in": {"/etc/motd": patch}})
    text = diff.markdown(diff.Report("a", "b", [stack]))
    assert "````diff\n" + patch + "````\n" in text
