"""What checkov's terraform_json framework does with `locals`, pinned so a checkov upgrade shows up here.

Finding (checkov 3.3.30): Python resource checks receive the definitions exactly as parsed
(`TerraformJsonRunner.add_python_check_results` iterates `self.definitions`), so `user_data` reaches them
as the raw expression, even a bare `${local.x}`. The graph that YAML graph checks use *is* built with
variable rendering, but its renderer garbles the platform's
`${base64gzip(join("\\n", concat([...], local.user_data_<layer>)))}` into a fragment without the text.
CKV_MAILSTRATA_4 therefore reads the locals from the scanned file itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from checkov.terraform_json.runner import TerraformJsonRunner
from checkov.terraform_json.utils import create_definitions

from mailstrata.policies._terraform import load_module, scanned_module

FixtureFn = Callable[[str, str], Path]
INSTANCE = "openstack_compute_instance_v2"


def _instance_conf(definitions: dict[str, dict], name: str) -> dict:
    (definition,) = definitions.values()
    for entry in definition["resource"]:
        if INSTANCE in entry and name in entry[INSTANCE]:
            return entry[INSTANCE][name]
    raise AssertionError(f"{INSTANCE}.{name} not in the fixture")


def test_python_checks_get_user_data_unrendered(fixture_file: FixtureFn) -> None:
    # GIVEN the platform's pattern: the cloud-init lines live in a local
    definitions, _, _ = create_definitions([fixture_file("CKV_MAILSTRATA_4", "fail")])
    # WHEN checkov parses the file for its Python checks
    conf = _instance_conf(definitions, "smtp_in_01")
    # THEN user_data is the expression as written, the local's text is not in it
    assert conf["user_data"] == [
        '${base64gzip(join("\\n", concat(["#cloud-config", "hostname: smtp-in-01"], local.user_data_smtp_in)))}'
    ]


def test_graph_rendering_loses_the_cloud_init_text(fixture_file: FixtureFn) -> None:
    definitions, _, _ = create_definitions([fixture_file("CKV_MAILSTRATA_4", "fail")])
    graph = TerraformJsonRunner().graph_manager.build_graph_from_definitions(definitions)
    (vertex,) = [v for v in graph.vertices if v.block_type == "resource" and v.name == f"{INSTANCE}.smtp_in_01"]
    rendered = str(vertex.attributes["user_data"])
    assert "bind_pw" not in rendered
    assert "local.user_data_smtp_in" not in rendered


def test_module_reader_sees_the_locals_as_written(fixture_file: FixtureFn) -> None:
    module = load_module(fixture_file("CKV_MAILSTRATA_4", "fail"))
    assert module is not None
    assert module.locals["user_data_smtp_in"][-1] == "      bind_pw = s3cret"
    assert module.resource("openstack_db_user_v1", "sogo") is not None


def test_scanned_module_outside_checkov_is_none() -> None:
    assert scanned_module() is None
