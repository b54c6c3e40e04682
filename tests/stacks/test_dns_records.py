"""The DNS records a platform publishes, judged by what will hold them.

- BIND's `named-checkzone` loads each zone (the platform zone and every mail domain) after real Terraform
  evaluates the `dns_records` output with a real-sized (RSA 2048) DKIM key, for the default config and
  every example config;
- Designate's own TXT rules (cited below) hold for every TXT record;
- each mail domain has the whole set receiving providers and clients look up.
"""

from __future__ import annotations

import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cdktf import App

from mailstrata.config.loader import parse_config
from mailstrata.dns import DmarcPolicy
from mailstrata.errors import ConfigError
from mailstrata.stacks import MailPlatformStack
from mailstrata.terraform_eval import StandIns, evaluate
from tests.support import many_domains
from tests.support.requires import requires, requires_terraform
from tests.support.synth import synth_config_file
from tests.userdata import _sample

ROOT = Path(__file__).resolve().parents[2]
CONFIGS: list[str | None] = [None, *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples").glob("*.yaml"))]
CONFIG_IDS = ["default", *(Path(str(c)).stem for c in CONFIGS[1:])]


def _doc(config: str | None) -> dict[str, Any]:
    return synth_config_file(str(ROOT / config) if config else None, f"dns-{Path(str(config)).stem}")


@cache
def _public_pem() -> str:
    key = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True, text=True, check=True).stdout
    return subprocess.run(["openssl", "pkey", "-pubout"], input=key, capture_output=True, text=True, check=True).stdout


@cache
def _evaluated(config: str | None) -> tuple[dict[str, Any], list[dict[str, str]], list[dict[str, str]]]:
    """(cdk.tf.json, dns_records, ptr_records) as Terraform computes the outputs, with a real DKIM key."""
    requires_terraform("to evaluate the published records")
    doc = _doc(config)
    exprs = {"records": doc["output"]["dns_records"]["value"], "ptrs": doc["output"]["ptr_records"]["value"]}
    sample = _sample.standins(doc, exprs.values())
    attributes = {p: _public_pem() if p.endswith(".public_key_pem") else v for p, v in sample.attributes.items()}
    values = evaluate(exprs, StandIns(attributes=attributes, variables=sample.variables), doc=doc)
    return doc, values["records"], values["ptrs"]


def _zones(doc: dict[str, Any]) -> list[str]:
    """The platform zone and each mail domain, as zones of their own."""
    names = [doc["output"]["dns_records"]["value"][0]["name"].split(".", 1)[1].rstrip(".")]  # smtp-in.<zone>.
    for r in doc["output"]["dns_records"]["value"]:
        if r["type"] == "MX" and r["name"].rstrip(".") not in names:
            names.append(r["name"].rstrip("."))
    return names


def _zone_of(name: str, zones: list[str]) -> str:
    return max((z for z in zones if name == f"{z}." or name.endswith(f".{z}.")), key=len)


def _zone_file(zone: str, records: list[dict[str, str]], zones: tuple[str, ...] | list[str] = ()) -> str:
    head = [f"$ORIGIN {zone}.", "$TTL 300",
            f"@ IN SOA ns1.nameserver.invalid. hostmaster.{zone}. 1 3600 600 604800 300",
            "@ IN NS ns1.nameserver.invalid."]
    # A zone below this one (the platform zone mail.example.com under the mail domain example.com) is delegated
    # from it, as it must be for resolvers to find it.
    cuts = [f"{z}. IN NS ns1.nameserver.invalid." for z in zones if z.endswith(f".{zone}")]
    return "\n".join([*head, *cuts, *(f"{r['name']} IN {r['type']} {r['value']}" for r in records)]) + "\n"


def _checkzone(zone: str, text: str) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".zone") as f:
        f.write(text)
        f.flush()
        # -D: print the zone as BIND loaded it (canonical form), so the test reads BIND's view of the records.
        # -i local: integrity checks inside the zone only; out-of-zone targets would be looked up in the real
        # DNS (the test checks those across the zones itself, `test_every_target_is_a_published_name`).
        return subprocess.run(["named-checkzone", "-i", "local", "-D", "-o", "-", zone, f.name],
                              capture_output=True, text=True)


def _loaded(config: str | None) -> dict[str, set[tuple[str, str]]]:
    """zone -> {(name, type)} as named-checkzone loaded it; fails on any error or warning."""
    requires("named-checkzone", why="BIND judges the zone files")
    doc, recs, _ = _evaluated(config)
    zones = _zones(doc)
    out: dict[str, set[tuple[str, str]]] = {}
    for zone in zones:
        mine = [r for r in recs if _zone_of(r["name"], zones) == zone]
        text = _zone_file(zone, mine, zones)
        proc = _checkzone(zone, text)
        assert proc.returncode == 0, (zone, proc.stderr, text)
        # nothing but the load itself: named-checkzone reports integrity problems (an in-zone MX or SRV target
        # without an address, a CNAME beside other data) on stderr while still exiting 0
        assert proc.stderr.splitlines() == [f"zone {zone}/IN: loaded serial 1", "OK"], (zone, proc.stderr)
        out[zone] = {(line.split()[0], line.split()[3]) for line in proc.stdout.splitlines()
                     if line.strip() and not line.startswith(";") and line.split()[3] != "NS"}
    return out


def _required(domain: str, zone: str, selector: str, webmail: bool) -> set[tuple[str, str]]:
    need = {(f"{domain}.", "MX"), (f"{domain}.", "TXT"), (f"_dmarc.{domain}.", "TXT"),
            (f"_smtp._tls.{domain}.", "TXT"), (f"_submission._tcp.{domain}.", "SRV"),
            (f"_imaps._tcp.{domain}.", "SRV")}
    if domain != zone:
        need.add((f"{selector}._domainkey.{domain}.", "CNAME"))
    if webmail:  # the policy host is the webmail layer: without one, no MTA-STS (mailstrata/dns.py)
        need |= {(f"_mta-sts.{domain}.", "TXT"), (f"mta-sts.{domain}.", "CNAME")}
    return need


# ---- (a) BIND loads every zone, after Terraform -------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_every_zone_loads_in_named_checkzone_with_the_whole_set_for_each_mail_domain(config: str | None) -> None:
    # GIVEN the records of a config, as Terraform evaluates them with an RSA 2048 DKIM key
    cfg = parse_config(_config_data(config))
    # WHEN each zone is written as a zone file and BIND loads it
    loaded = _loaded(config)
    # THEN every zone loads without warnings, and BIND holds each mail domain's whole set
    for domain in cfg.domains:
        have = loaded[_zone_of(f"{domain}.", list(loaded))]
        missing = _required(domain, cfg.dns.zone, cfg.mail.dkim_selector, cfg.layers.webmail is not None) - have
        assert not missing, (domain, sorted(missing))
    selector = f"{cfg.mail.dkim_selector}._domainkey.{cfg.dns.zone}."
    assert (selector, "TXT") in loaded[cfg.dns.zone]


def _config_data(config: str | None) -> dict[str, Any]:
    if config is None:
        return many_domains.default_data()
    data: dict[str, Any] = yaml.safe_load((ROOT / config).read_text())
    return data


def test_the_dkim_record_bind_loads_is_the_public_key() -> None:
    requires("named-checkzone", why="BIND judges the zone files")
    _, recs, _ = _evaluated(None)
    [txt] = [r for r in recs if r["name"] == "mail2026._domainkey.cloud0.hc.mycompany.dom."]
    proc = _checkzone("cloud0.hc.mycompany.dom", _zone_file("cloud0.hc.mycompany.dom", [txt]))
    [line] = [li for li in proc.stdout.splitlines() if "_domainkey" in li]
    strings = line.split(None, 4)[4]
    body = "".join(_public_pem().strip().splitlines()[1:-1])
    assert "".join(s for s in strings.split('"') if s.strip()) == f"v=DKIM1; k=rsa; p={body}"


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_every_target_is_a_published_name(config: str | None) -> None:
    # GIVEN the evaluated records: MX, SRV and CNAME targets point across zones (a mail domain to the platform's)
    _, recs, ptrs = _evaluated(config)
    addressed = {r["name"] for r in recs if r["type"] in ("A", "AAAA")}
    texts = {r["name"] for r in recs if r["type"] == "TXT"}
    # THEN each target has what its type needs: an address, or (DKIM's CNAME) the TXT
    for r in recs:
        if r["type"] in ("MX", "SRV"):
            assert r["value"].split()[-1] in addressed, r
        elif r["type"] == "CNAME":
            assert r["value"] in (texts if "._domainkey." in r["name"] else addressed), r
    # and each PTR names a name that resolves back to its address (forward-confirmed reverse DNS)
    for p in ptrs:
        assert {"name": p["name"], "type": "A", "value": p["address"]} in recs, p


# ---- (b) Designate's TXT rules ------------------------------------------------------------------------
# openstack/designate at 9f82089b2735878966322495beee604c0ffa0e30, designate/objects/rrdata_txt.py
# (`TXT.from_string`, `_validate_record_single_string`) and designate/objects/fields.py (`TxtField.coerce`).
# The rules, as that code applies them to a recordset's record:
#   - a value over 255 characters must be wrapped in double quotes or hold '" "' (several strings);
#     it is split on '" "', and each string is checked *with its quotes added back*, so a string holds at
#     most 253 characters ("Any TXT record string exceeding 255 characters has to be split.");
#   - no literal newline;
#   - a value starting with '"' ends with one, and the other way round;
#   - an unquoted value holds no whitespace; inside quotes, every '"' is escaped with a backslash;
#   - the value does not end in a backslash ("Do NOT put '\\' into end of TXT record").


def designate_txt_problems(value: str) -> list[str]:
    problems = []
    if value.endswith("\\"):
        problems.append("ends in a backslash")
    if len(value) > 255:
        inner = value.strip('"')
        if not (value.startswith('"') and value.endswith('"')) and '" "' not in inner:
            problems.append("over 255 characters and not split into quoted strings")
        strings = [f'"{s}"' for s in inner.split('" "')]
    else:
        strings = [value]
    for s in strings:
        if len(s) > 255:
            problems.append(f"a string of {len(s)} characters with its quotes: {s[:30]}...")
        if "\n" in s:
            problems.append("a literal newline")
        if s.startswith('"') != s.endswith('"'):
            problems.append("a missing double quote at the beginning or the end")
        if not (s.startswith('"') and s.endswith('"')):
            if any(c.isspace() for c in s):
                problems.append("spaces outside double quotes")
        else:
            body = s.strip('"')
            if any(c == '"' and (i == 0 or body[i - 1] != "\\") for i, c in enumerate(body)):
                problems.append("an unescaped double quote")
    return problems


def test_designate_rules_refuse_what_designate_refuses() -> None:
    assert designate_txt_problems('"' + "a" * 253 + '"') == []
    assert designate_txt_problems('"' + "a" * 254 + '" "b"') == [
        'a string of 256 characters with its quotes: "' + "a" * 29 + "..."]
    assert designate_txt_problems("v=spf1 mx ~all") == ["spaces outside double quotes"]
    assert designate_txt_problems('"say "hi""') == ["an unescaped double quote"]


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_every_txt_record_passes_designates_txt_rules(config: str | None) -> None:
    # GIVEN every TXT record a config publishes, evaluated with an RSA 2048 DKIM key
    _, recs, _ = _evaluated(config)
    txts = [r for r in recs if r["type"] == "TXT"]
    # THEN Designate's TXT rules find nothing wrong with any of them
    assert txts
    assert {r["name"]: designate_txt_problems(r["value"]) for r in txts} == {r["name"]: [] for r in txts}


# ---- (c) completeness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_each_mail_domain_publishes_the_whole_set(config: str | None) -> None:
    cfg = parse_config(_config_data(config))
    have = {(r["name"], r["type"]) for r in _doc(config)["output"]["dns_records"]["value"]}
    for domain in cfg.domains:
        missing = _required(domain, cfg.dns.zone, cfg.mail.dkim_selector, cfg.layers.webmail is not None) - have
        assert not missing, (domain, sorted(missing))


# ---- what the records say -----------------------------------------------------------------------------


def _by(recs: list[dict[str, str]], name: str, rtype: str) -> list[str]:
    return [r["value"] for r in recs if (r["name"], r["type"]) == (name, rtype)]


def test_spf_names_the_looked_up_egress_address_and_not_the_mx() -> None:
    _, recs, _ = _evaluated(None)
    assert _by(recs, "domain01.dom.", "TXT") == [f'"v=spf1 ip4:{_sample.SAMPLE_EGRESS} ~all"']


def _stack(**dns: Any) -> MailPlatformStack:
    data = many_domains.default_data()
    data["dns"] = {**data["dns"], **dns}
    return MailPlatformStack(App(outdir=tempfile.mkdtemp()), "mail", config=parse_config(data))


def test_configured_egress_addresses_replace_the_look_up() -> None:
    stack = _stack(egress_addresses=["192.0.2.25", "2001:db8::25"])
    recs = [r for r in stack.published if r.name == "domain01.dom." and r.type == "TXT"]
    assert [r.value for r in recs] == ['"v=spf1 ip4:192.0.2.25 ip6:2001:db8::25 ~all"']
    assert stack.node.try_find_child("egress-router") is None  # no look-up


def test_an_spf_set_in_the_config_is_published_verbatim() -> None:
    stack = _stack(spf="v=spf1 include:_spf.example.net ~all")
    assert [r.value for r in stack.published if r.name == "domain02.dom." and r.type == "TXT"] == [
        '"v=spf1 include:_spf.example.net ~all"']


def test_each_smtp_out_helo_name_resolves_to_the_egress_address_and_the_ptr_step_names_one() -> None:
    _, recs, ptrs = _evaluated(None)
    for n in ("01", "02"):
        assert _by(recs, f"mail-smtp-out-{n}.cloud0.hc.mycompany.dom.", "A") == [_sample.SAMPLE_EGRESS]
    assert ptrs == [{"address": _sample.SAMPLE_EGRESS, "name": "mail-smtp-out-01.cloud0.hc.mycompany.dom."}]


def test_ipv6_egress_gets_aaaa_records_and_a_ptr_each() -> None:
    stack = _stack(egress_addresses=["192.0.2.25", "2001:db8::25"])
    helo = sorted((r.name, r.type, r.value) for r in stack.published if r.name.startswith("mail-smtp-out-01."))
    assert helo == [("mail-smtp-out-01.cloud0.hc.mycompany.dom.", "A", "192.0.2.25"),
                    ("mail-smtp-out-01.cloud0.hc.mycompany.dom.", "AAAA", "2001:db8::25")]
    assert [(p.address, p.name) for p in stack.ptrs] == [
        ("192.0.2.25", "mail-smtp-out-01.cloud0.hc.mycompany.dom."),
        ("2001:db8::25", "mail-smtp-out-02.cloud0.hc.mycompany.dom.")]


def test_dmarc_reports_go_to_the_first_domain_which_authorises_the_others() -> None:
    recs = [(r.name, r.type, r.value) for r in _stack().published if "_dmarc." in r.name]
    assert recs == [
        ("_dmarc.domain01.dom.", "TXT", '"v=DMARC1; p=none; rua=mailto:dmarc-reports@domain01.dom"'),
        ("_dmarc.domain02.dom.", "TXT", '"v=DMARC1; p=none; rua=mailto:dmarc-reports@domain01.dom"'),
        ("domain02.dom._report._dmarc.domain01.dom.", "TXT", '"v=DMARC1"'),
    ]


def test_dmarc_policy_and_report_addresses_are_configurable() -> None:
    stack = _stack(dmarc_policy="quarantine", dmarc_reports="postmaster@domain02.dom",
                   tls_reports="tls@domain02.dom")
    assert DmarcPolicy("quarantine") is DmarcPolicy.QUARANTINE
    got = {(r.name, r.value) for r in stack.published if r.name.startswith(("_dmarc.domain01", "_smtp._tls.domain01"))}
    assert got == {("_dmarc.domain01.dom.", '"v=DMARC1; p=quarantine; rua=mailto:postmaster@domain02.dom"'),
                   ("_smtp._tls.domain01.dom.", '"v=TLSRPTv1; rua=mailto:tls@domain02.dom"')}


def test_the_mta_sts_id_is_the_policy_texts_and_changes_with_it() -> None:
    from mailstrata.mta_sts import policy_id, policy_text

    def sts_id(stack: MailPlatformStack) -> str:
        [value] = [r.value for r in stack.published if r.name == "_mta-sts.domain01.dom."]
        return value

    data = many_domains.default_data()
    testing = MailPlatformStack(App(outdir=tempfile.mkdtemp()), "mail", config=parse_config(data))
    text = policy_text(["smtp-in.cloud0.hc.mycompany.dom"], mode="testing", max_age=604_800)
    assert sts_id(testing) == f'"v=STSv1; id={policy_id(text)}"'
    data["mail"] = {**data.get("mail", {}), "mta_sts": {"mode": "enforce"}}
    enforce = MailPlatformStack(App(outdir=tempfile.mkdtemp()), "mail", config=parse_config(data))
    assert sts_id(enforce) != sts_id(testing)


def test_srv_records_point_clients_at_submission_and_imaps() -> None:
    srv = sorted((r.name, r.value) for r in _stack().published if r.type == "SRV" and "domain01" in r.name)
    assert srv == [("_imaps._tcp.domain01.dom.", "0 1 993 imap.cloud0.hc.mycompany.dom."),
                   ("_pop3s._tcp.domain01.dom.", "0 1 995 pop.cloud0.hc.mycompany.dom."),
                   ("_submission._tcp.domain01.dom.", "0 1 587 smtp-out.cloud0.hc.mycompany.dom.")]


def test_an_egress_network_is_refused_with_the_fix() -> None:
    data = many_domains.default_data()
    data["dns"]["egress_addresses"] = ["192.0.2.0/24"]
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert [str(p) for p in e.value.problems] == [
        "dns.egress_addresses[0]: is not an IPv4 or IPv6 address, got '192.0.2.0/24'; write one address, e.g. "
        "192.0.2.25 (no prefix: each egress address gets a PTR and a forward name)"]


def test_an_spf_longer_than_designate_takes_is_refused() -> None:
    data = many_domains.default_data()
    data["dns"]["spf"] = "v=spf1 include:" + "a" * 230 + ".dom ~all"  # 254 characters
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert [str(p) for p in e.value.problems] == [
        f"dns.spf: is 254 characters, got 'v=spf1 include:{'a' * 25}'...; one TXT string holds at "
        "most 253 in Designate: use include: mechanisms"]
