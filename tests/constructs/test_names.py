"""Two constructs never share a Terraform address: cdktf would merge them and one would silently vanish.

The check runs on the names mailstrata claims in Python (`_names.py`); the tests at the end hold those claims
and `logical_id` against the ids cdktf itself gives, for the default config and every example config.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from cdktf import (
    App,
    TerraformDataSource,
    TerraformLocal,
    TerraformOutput,
    TerraformResource,
    TerraformStack,
    TerraformVariable,
)
from cdktf_cdktf_provider_openstack.dns_zone_v2 import DnsZoneV2
from constructs import Construct

from mailstrata.config.loader import load_config
from mailstrata.constructs._names import logical_id, names_of, refuse_name_collisions, terraform_name_collisions
from mailstrata.errors import ConfigError
from mailstrata.stacks import MailPlatformStack
from tests.support.contexts import new_stack, of_type, synth

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [None, *sorted((ROOT / "examples").glob("*.yaml"))]


def test_given_two_zones_whose_ids_differ_only_in_dots_when_synthesized_then_cdktf_keeps_one() -> None:
    stack = new_stack()
    DnsZoneV2(stack, "zone-ab.c.dom", name="ab.c.dom.")
    DnsZoneV2(stack, "zone-a.bc.dom", name="a.bc.dom.")

    assert [z["name"] for z in of_type(synth(stack), "openstack_dns_zone_v2")] == ["a.bc.dom."]


def test_given_two_zones_claimed_on_one_address_when_checked_then_the_second_is_refused() -> None:
    stack = new_stack()
    names = names_of(stack)
    names.claim("openstack_dns_zone_v2", "zone-ab.c.dom")
    names.claim("openstack_dns_zone_v2", "zone-a.bc.dom")

    with pytest.raises(ConfigError) as caught:
        refuse_name_collisions(stack)

    assert [str(p) for p in caught.value.problems] == [
        "t/zone-a.bc.dom: would write the same Terraform address as t/zone-ab.c.dom, got "
        "openstack_dns_zone_v2.zone-abcdom; give the two constructs ids that differ in letters or digits (Terraform "
        "names keep only letters, digits, - and _)"
    ]


def test_given_two_variables_claimed_with_one_logical_id_when_checked_then_the_second_is_refused() -> None:
    stack = new_stack()
    for construct_id in ("certificate", "private-key"):
        names_of(stack).claim("var", construct_id, logical="tls")

    with pytest.raises(ConfigError) as caught:
        refuse_name_collisions(stack)

    assert [p.path for p in caught.value.problems] == ["t/private-key"]


def test_given_distinct_names_when_checked_then_nothing_is_refused() -> None:
    stack = new_stack()
    names_of(stack).claim("openstack_dns_zone_v2", "zone-corp-it.example.com")
    names_of(stack).claim("openstack_dns_zone_v2", "zone-corp.it.example.com")

    refuse_name_collisions(stack)


def test_given_an_element_below_a_construct_when_claimed_without_its_overridden_id_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="only with the logical id it overrides"):
        names_of(new_stack()).claim("var", "bind-password", under="t/directory")


@pytest.mark.parametrize("components", [
    ("zone-ab.c.dom",),
    ("smtp-in", "port-01"),
    ("vip-smtp-in", "members-25-smtp-in"),
    ("outer", "Default", "inner"),
    ("storage", "Resource", "port"),
    ("zone-" + "a" * 260,),
    ("layer", "layer-port"),
])
def test_given_construct_ids_when_named_then_the_logical_id_is_the_one_cdktf_gives(components: tuple[str, ...]) -> None:
    stack = new_stack()
    scope: Construct = stack
    for construct_id in components[:-1]:
        scope = Construct(scope, construct_id)
    zone = DnsZoneV2(scope, components[-1], name="x.dom.")

    assert logical_id(*components) == zone.friendly_unique_id


def _elements(stack: TerraformStack) -> list[tuple[str, str, str]]:
    """(address, construct path, logical id) of every element of `stack`, asked of cdktf construct by construct."""
    out = []
    for c in stack.node.find_all():
        if isinstance(c, TerraformResource):
            kind = c.terraform_resource_type
        elif isinstance(c, TerraformDataSource):
            kind = f"data.{c.terraform_resource_type}"
        elif isinstance(c, TerraformVariable):
            kind = "var"
        elif isinstance(c, TerraformLocal):
            kind = "local"
        elif isinstance(c, TerraformOutput):
            kind = "output"
        else:
            continue
        out.append((f"{kind}.{c.friendly_unique_id}", c.node.path, c.friendly_unique_id))
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "default" if c is None else c.stem)
def test_given_a_config_when_built_then_every_element_cdktf_names_is_claimed_or_named_by_its_unique_path(
        config: Path | None) -> None:
    """Elements not claimed are those cdktf names with a hash of their path (unique by construction), or a
    layer's one user-data local (named after the stack and the role); every claim is what cdktf writes."""
    cfg = load_config(str(config) if config else None)
    stack = MailPlatformStack(App(outdir=tempfile.mkdtemp()), cfg.name, config=cfg)
    claimed = {(address, path) for address, paths in names_of(stack)._paths.items() for path in paths}
    elements = _elements(stack)

    assert claimed <= {(address, path) for address, path, _ in elements}
    unclaimed = [(address, path, lid) for address, path, lid in elements if (address, path) not in claimed]
    for address, path, lid in unclaimed:
        components = path.split("/")[1:]
        by_path = len(components) > 1 and lid == logical_id(*components)
        assert by_path or (address.startswith("local.user_data_") and path.endswith("/user-data")), (address, path)
    assert terraform_name_collisions(stack) == []
