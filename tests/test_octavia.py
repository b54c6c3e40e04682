"""mailstrata.octavia: where an amphora connects to pool members from (Octavia's CalculateAmphoraDelta)."""

from __future__ import annotations

from mailstrata.octavia import amphora_source_subnets

VIP = "10.20.0.0/24"


def test_given_members_naming_their_subnet_then_the_amphora_sources_from_that_subnet_only() -> None:
    assert amphora_source_subnets(member_subnets=["10.10.1.0/24", "10.10.1.0/24"], vip_subnets=[VIP]) == (
        "10.10.1.0/24",)


def test_given_members_naming_no_subnet_then_the_amphora_sources_from_the_vip_subnet() -> None:
    assert amphora_source_subnets(member_subnets=[None, None], vip_subnets=[VIP]) == (VIP,)


def test_given_members_of_several_subnets_then_each_subnet_in_first_seen_order() -> None:
    got = amphora_source_subnets(member_subnets=["10.10.2.0/24", None, "10.10.1.0/24", "10.10.2.0/24"],
                                 vip_subnets=[VIP])
    assert got == ("10.10.2.0/24", VIP, "10.10.1.0/24")


def test_given_no_members_then_no_sources() -> None:
    assert amphora_source_subnets(member_subnets=[], vip_subnets=[VIP]) == ()
