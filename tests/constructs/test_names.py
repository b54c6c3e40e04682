"""Two constructs never share a Terraform address: cdktf would merge them and one would silently vanish."""

from __future__ import annotations

import pytest
from cdktf import TerraformVariable
from cdktf_cdktf_provider_openstack.dns_zone_v2 import DnsZoneV2

from mailstrata.constructs._names import refuse_name_collisions
from mailstrata.errors import ConfigError
from tests.support.contexts import new_stack, of_type, synth


def test_given_two_zones_whose_ids_differ_only_in_dots_when_synthesized_then_cdktf_keeps_one() -> None:
    stack = new_stack()
    DnsZoneV2(stack, "zone-ab.c.dom", name="ab.c.dom.")
    DnsZoneV2(stack, "zone-a.bc.dom", name="a.bc.dom.")

    assert [z["name"] for z in of_type(synth(stack), "openstack_dns_zone_v2")] == ["a.bc.dom."]


def test_given_two_zones_on_one_address_when_checked_then_the_second_is_refused() -> None:
    stack = new_stack()
    DnsZoneV2(stack, "zone-ab.c.dom", name="ab.c.dom.")
    DnsZoneV2(stack, "zone-a.bc.dom", name="a.bc.dom.")

    with pytest.raises(ConfigError) as caught:
        refuse_name_collisions(stack)

    assert [str(p) for p in caught.value.problems] == [
        "t/zone-a.bc.dom: would write the same Terraform address as t/zone-ab.c.dom, got "
        "openstack_dns_zone_v2.zone-abcdom; give the two constructs ids that differ in letters or digits (Terraform "
        "names keep only letters, digits, - and _)"
    ]


def test_given_two_variables_with_one_logical_id_when_checked_then_the_second_is_refused() -> None:
    stack = new_stack()
    for construct_id in ("certificate", "private-key"):
        TerraformVariable(stack, construct_id, type="string").override_logical_id("tls")

    with pytest.raises(ConfigError) as caught:
        refuse_name_collisions(stack)

    assert [p.path for p in caught.value.problems] == ["t/private-key"]


def test_given_distinct_names_when_checked_then_nothing_is_refused() -> None:
    stack = new_stack()
    DnsZoneV2(stack, "zone-corp-it.example.com", name="corp-it.example.com.")
    DnsZoneV2(stack, "zone-corp.it.example.com", name="corp.it.example.com.")

    refuse_name_collisions(stack)
