"""Real Terraform accepts every stack the project produces, and hands every server its rendered files.

Stacks: the default config, every `examples/*.yaml`, every `examples/*.py` composition example and the org
stack of `tests/stacks/test_composition.py`.

- `terraform init -backend=false` with an empty plugin directory: the only errors are the providers this
  machine cannot download (`MISSING_PROVIDERS`), nothing else.
- Every variable validation, planned on the variable block taken verbatim out of the stack: good values
  pass, bad values fail with the validation's own message (`validation_cases.py`).
- The round trip: each server's `user_data`, evaluated by Terraform with stand-in values and decoded as
  Nova and cloud-init do, holds in `write_files` byte for byte what the templates rendered, with
  Terraform's values of the same stand-ins in place of the references. A stress stack adds a file of
  shell `${...}`, Dovecot `%{...}`, Terraform-like escapes, quotes and backslashes to every role, a
  large one that makes a layer's user data gzipped, and values full of the same characters.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailstrata.constructs._user_data import AttachedUserData
from mailstrata.terraform_eval import StandIns, evaluate, nova_user_data
from mailstrata.twin.platform import Synthesized, synthesize
from mailstrata.userdata.render import RenderedFile
from mailstrata.userdata.terraform_text import decode_user_data, references, substitute
from tests.terraform.support import (
    EXAMPLES,
    MISSING_PROVIDERS,
    StackSource,
    init_diagnostics,
    missing_provider,
    plan_variables,
    stack_sources,
    validation_failure,
)
from tests.terraform.validation_cases import CASES
from tests.userdata import _sample

SOURCES = list(stack_sources())


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """config path (None: the default) -> its platform stack, synthesized once per module."""
    from mailstrata.config import load_config

    cache: dict[Path | None, Synthesized] = {}

    def get(config: Path | None) -> Synthesized:
        if config not in cache:
            cache[config] = synthesize(load_config(str(config) if config else None), tmp_path_factory.mktemp("syn"))
        return cache[config]

    yield get


@pytest.fixture(scope="module")
def stack_files(tmp_path_factory: pytest.TempPathFactory, synthesized: Any) -> Iterator[Any]:
    """source -> its synthesized cdk.tf.json files (each source synthesized once per module)."""
    cache: dict[str, list[Path]] = {}

    def get(source: StackSource) -> list[Path]:
        if source.id not in cache:
            if source.is_config:
                syn = synthesized(source.config)
                cache[source.id] = [syn.outdir / "stacks" / syn.config.name / "cdk.tf.json"]
            else:
                cache[source.id] = source.synth(tmp_path_factory.mktemp("synth"))
        return cache[source.id]

    yield get


# ---- terraform init ----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES, ids=[s.id for s in SOURCES])
def test_terraform_init_reports_only_the_providers_it_cannot_download(stack_files: Any, source: StackSource,
                                                                      tmp_path: Path) -> None:
    for i, path in enumerate(stack_files(source)):
        doc = json.loads(path.read_text())
        required = doc.get("terraform", {}).get("required_providers", {})
        # GIVEN only providers this machine lacks, named by their source address
        assert {n: f"registry.terraform.io/{p['source']}" for n, p in required.items()} == {
            n: MISSING_PROVIDERS[n] for n in required}
        # WHEN Terraform initializes the stack with no plugins
        diagnostics = init_diagnostics(path, tmp_path / str(i))
        # THEN it fails on exactly those providers, and says nothing else
        missing = sorted(a for d in diagnostics if (a := missing_provider(d)))
        others = [str(d) for d in diagnostics if not missing_provider(d)]
        assert (others, missing) == ([], sorted(MISSING_PROVIDERS[n] for n in required)), path


def test_the_default_stack_needs_exactly_openstack_tls_and_random(stack_files: Any) -> None:
    [path] = stack_files(SOURCES[0])
    assert sorted(json.loads(path.read_text())["terraform"]["required_providers"]) == ["openstack", "random", "tls"]


def test_every_stack_source_is_covered() -> None:
    ids = {s.id for s in SOURCES}
    expected = {"default", "tests/stacks/test_composition.py"}
    expected |= {f"examples/{p.name}" for p in [*EXAMPLES.glob("*.yaml"), *EXAMPLES.glob("*.py")]}
    assert ids == expected


# ---- variable validations ----------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES, ids=[s.id for s in SOURCES])
def test_terraform_plan_enforces_every_variable_validation(stack_files: Any, source: StackSource,
                                                           tmp_path: Path) -> None:
    seen: set[str] = set()
    for path in stack_files(source):
        for name, block in json.loads(path.read_text()).get("variable", {}).items():
            messages = [v["error_message"] for v in block.get("validation", [])]
            if not messages:
                continue
            unknown = [m for m in messages if m not in CASES]
            assert unknown == [], f"variable {name}: add good and bad values for {unknown} to validation_cases.py"
            key = json.dumps(block, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            for n, good in enumerate(v for m in messages for v in CASES[m].good):
                diags = plan_variables({name: block}, {name: good}, tmp_path / f"{name}-good-{n}")
                assert [str(d) for d in diags] == [], (name, good)
            for message in messages:
                for n, bad in enumerate(CASES[message].bad):
                    diags = plan_variables({name: block}, {name: bad}, tmp_path / f"{name}-bad-{n}")
                    got = [validation_failure(d) for d in diags]
                    assert got and set(got) <= set(messages) and message in got, (name, bad, [str(d) for d in diags])


# ---- the round trip: what Nova receives is what the templates rendered ---------------------------------

_LOCAL = re.compile(r"\blocal\.([\w-]+)\)")
STRESS_PATH = "/etc/mailstrata/terraform-stress.txt"
STRESS_LARGE_PATH = "/etc/mailstrata/terraform-stress-large.txt"
STRESS_TEXT = "\n".join([
    "# shell",
    'echo "${HOME}" ${#arr[@]} ${x:-"de fault"} ${y//\\//_} $(( 1 + 2 )) $$ $1 "$@" \'${single}\'',
    "echo $${already} $$${three} ${ unclosed",
    "# Dovecot and Terraform directives",
    "quota_rule = *:storage=%{ldap:info} %%{lit} %{ if x }y%{ endif } %{~ trim ~} 100%",
    "# quotes and backslashes",
    'a="b" \\"c\\" \'d\' e\\\\f \\n \\t \\u0041 \\${not} \\%{not} ends with backslash\\',
    "  leading spaces, trailing spaces   ",
    "\ttab",
    "",
    "braces {} }{ {{ }} ${ } %{ }",
    "references: pw=${var.ad_bind_password} db=${random_password.webmail_db.result}",
    "",
])
# Values as Terraform would supply them, with the same characters (the AD password validation allows these).
STRESS_VALUES = {
    "var.ad_bind_password": "P${a}%{b}'c'$$d%%e",
    "random_password.webmail_db.result": "R$${q}%{r}[]{}<>:?!@#$%&*()-_=+",
    "var.webmail_db_password": "W${HOME}%{x}'y'",
}


def _with_stress(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every role renders a stress file too; smtp_in also a large one, so that its user data is gzipped."""
    import mailstrata.constructs._user_data as ud

    original = ud.render_layer

    def render_layer(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        layer = original(ctx, *args, **kwargs)
        extra = [RenderedFile(path=STRESS_PATH, content=STRESS_TEXT, owner="root:root", mode="0644")]
        if ctx.role.value == "smtp_in":
            big = "".join(f"line {i}: ${{HOME}} %{{ldap:info}} \"q\" \\ {i * 7919 % 1000:03}\n" for i in range(3000))
            extra.append(RenderedFile(path=STRESS_LARGE_PATH, content=big, owner="root:root", mode="0644"))
        return replace(layer, files=(*layer.files, *extra))

    monkeypatch.setattr(ud, "render_layer", render_layer)


def _attached(syn: Synthesized) -> dict[str, AttachedUserData]:
    """Each user-data body of the stack by its local's name (every MailLayer and the NFS server)."""
    found = [getattr(c, "user_data", None) for c in syn.stack.node.find_all()]
    return {a.local_name: a for a in found if isinstance(a, AttachedUserData)}


def _expected(f: RenderedFile, syn: Synthesized, values: dict[str, Any]) -> bytes:
    """A rendered file with Terraform's value of each reference in place of the reference."""
    exprs = {ref: syn.resolve("${" + ref + "}")[2:-1] for ref in references(f.content)}
    text = substitute(f.content, {ref: values["${" + e + "}"] for ref, e in exprs.items()})
    return base64.b64decode(text) if f.b64 else text.encode()


def _received(cloud_config: dict[str, Any]) -> list[tuple[str, bytes]]:
    """write_files as cloud-init writes them (base64 entries decoded)."""
    out = []
    for w in cloud_config.get("write_files", []):
        content = w.get("content", "")
        out.append((w["path"], base64.b64decode(content) if w.get("encoding") == "b64" else content.encode()))
    return out


def round_trip(syn: Synthesized, standins: StandIns, workdir: Path) -> dict[str, Any]:
    """One Terraform run for the whole stack; per server: (received files, expected files, gzipped)."""
    doc = syn.doc
    attached = _attached(syn)
    servers = {k: r for k, r in doc["resource"]["openstack_compute_instance_v2"].items()}
    refs = {syn.resolve("${" + r + "}")[2:-1] for a in attached.values() for f in a.rendered.files
            for r in references(f.content)}
    exprs: dict[str, Any] = {f"server {k}": r["user_data"] for k, r in servers.items()}
    exprs |= {"${" + e + "}": "${" + e + "}" for e in sorted(refs)}
    values = evaluate(exprs, standins, doc=doc, workdir=workdir)
    out = {}
    for key, res in servers.items():
        data = nova_user_data(values[f"server {key}"])
        [local] = _LOCAL.findall(res["user_data"])
        files = attached[local].rendered.files
        received = _received(yaml.safe_load(decode_user_data(data)))
        out[res["name"]] = (received, [(f.path, _expected(f, syn, values)) for f in files], data[:2] == b"\x1f\x8b")
    return out


def _standins(syn: Synthesized, overrides: dict[str, str] | None = None) -> StandIns:
    exprs = [r["user_data"] for r in syn.doc["resource"]["openstack_compute_instance_v2"].values()]
    base = _sample.standins(syn.doc, exprs)
    overrides = overrides or {}
    attrs = {k: overrides.get(k, v) for k, v in base.attributes.items()}
    variables = {k: overrides.get(f"var.{k}", v) for k, v in base.variables.items()}
    return StandIns(attributes=attrs, variables=variables)


CONFIG_SOURCES = [s for s in SOURCES if s.is_config]


@pytest.mark.parametrize("source", CONFIG_SOURCES, ids=[s.id for s in CONFIG_SOURCES])
def test_every_server_receives_every_rendered_file_byte_for_byte(synthesized: Any, source: StackSource,
                                                                 tmp_path: Path) -> None:
    # GIVEN the stack of a config, synthesized, and sample stand-ins for what Terraform knows after apply
    syn = synthesized(source.config)
    # WHEN Terraform evaluates every server's user_data
    got = round_trip(syn, _standins(syn), tmp_path)
    # THEN every role's every file arrives as rendered
    assert len(got) == len(syn.doc["resource"]["openstack_compute_instance_v2"])
    for server, (received, expected, _) in got.items():
        assert [p for p, _ in received] == [p for p, _ in expected], server
        for (path, data), (_, want) in zip(received, expected, strict=True):
            assert data == want, f"{server}: {path}"


def test_stress_text_and_values_survive_terraform_byte_for_byte(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from mailstrata.config import load_config

    # GIVEN every role with a file full of template-like syntax, and values full of it too
    _with_stress(monkeypatch)
    syn = synthesize(load_config(None), tmp_path / "synth")
    standins = _standins(syn, STRESS_VALUES)
    # WHEN Terraform evaluates every server's user_data
    got = round_trip(syn, standins, tmp_path / "eval")
    # THEN the stress files arrive byte for byte, on every server, gzipped or not
    stress = {server: dict(received).get(STRESS_PATH) for server, (received, _, _) in got.items()}
    expected_text = substitute(STRESS_TEXT, {"var.ad_bind_password": STRESS_VALUES["var.ad_bind_password"],
                                             "random_password.webmail_db.result":
                                                 STRESS_VALUES["random_password.webmail_db.result"]}).encode()
    assert stress == {server: expected_text for server in got}
    # both paths are taken: the queueing layers (the largest, with their spool step) gzip, the others do not
    assert {server for server, (_, _, gz) in got.items() if gz} == {
        r["name"] for r in syn.doc["resource"]["openstack_compute_instance_v2"].values()
        if r["metadata"]["mailstrata_role"] in ("smtp_in", "smtp_out", "mailstore")}
    for server, (received, expected, _) in got.items():
        assert received == expected, server


def test_one_terraform_run_evaluates_the_default_stack_in_about_a_second(synthesized: Any, tmp_path: Path) -> None:
    syn = synthesized(None)
    exprs = {k: r["user_data"] for k, r in syn.doc["resource"]["openstack_compute_instance_v2"].items()}
    exprs["dns_records"] = syn.doc["output"]["dns_records"]["value"]
    standins = _sample.standins(syn.doc, exprs.values())
    t0 = time.monotonic()
    values = evaluate(exprs, standins, doc=syn.doc, workdir=tmp_path)
    elapsed = time.monotonic() - t0
    assert set(values) == set(exprs)
    # generous: 2 shared cores; typically 0.3-1 s
    assert elapsed < 10, f"one batched terraform evaluation took {elapsed:.1f} s"
