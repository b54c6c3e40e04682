"""Bad configs: each test breaks one thing in the default config and matches the exact report.

Every problem reads `<yaml.path>: <what is wrong>, got <value>; <fix>`.
"""

from __future__ import annotations

from typing import Any

import pytest

from mailstrata.config import load_config, parse_config
from mailstrata.errors import ConfigError
from tests.config._support import MINIMAL_YAML, default_data, problems_of

# ---- shape: missing, unknown, wrong type ------------------------------------------------------------


def test_given_no_subnet_id_when_parsed_then_it_is_required(config: dict[str, Any]) -> None:
    del config["network"]["subnet_id"]

    assert problems_of(config) == ["network.subnet_id: is required; add it (Neutron subnet of the servers)"]


def test_given_no_smtp_in_layer_when_parsed_then_the_layer_is_required(config: dict[str, Any]) -> None:
    del config["layers"]["smtp_in"]

    assert problems_of(config) == [
        "layers.smtp_in: is required; add it (The MX: Internet-facing SMTP on 25, spam and virus filtering)"
    ]


def test_given_a_misspelt_top_level_key_when_parsed_then_it_suggests_the_known_key(config: dict[str, Any]) -> None:
    config["domain"] = ["domain03.dom"]

    assert problems_of(config) == [
        "domain: is not a known key; use one of: name, os, region, cloud, backend, domains, dns, network, "
        "directory, storage, layers, listeners, mail, tls, webmail, floating_ips (did you mean 'domains'?)"
    ]


def test_given_a_misspelt_nested_key_when_parsed_then_it_names_the_full_path(config: dict[str, Any]) -> None:
    config["layers"]["smtp_in"]["flavour"] = "m1.large"

    assert problems_of(config) == [
        "layers.smtp_in.flavour: is not a known key; use one of: count, flavor, image, key_pair, spool_gb, affinity, "
        "network_id, subnet_id, subnet_cidr (did you mean 'flavor'?)"
    ]


def test_given_a_word_for_a_count_when_parsed_then_it_asks_for_digits(config: dict[str, Any]) -> None:
    config["layers"]["smtp_in"]["count"] = "two"

    assert problems_of(config) == ["layers.smtp_in.count: must be a whole number, got 'two'; write digits only, e.g. 2"]


def test_given_a_number_for_a_flavor_when_parsed_then_it_asks_for_quotes(config: dict[str, Any]) -> None:
    config["layers"]["smtp_in"]["flavor"] = 5

    assert problems_of(config) == ["layers.smtp_in.flavor: must be text, got 5; quote it: '5'"]


def test_given_one_domain_not_in_a_list_when_parsed_then_it_shows_the_list_form(config: dict[str, Any]) -> None:
    config["domains"] = "domain01.dom"

    assert problems_of(config) == ["domains: must be a list, got 'domain01.dom'; write it as a list: [domain01.dom]"]


def test_given_an_unknown_storage_mode_when_parsed_then_it_lists_the_choices(config: dict[str, Any]) -> None:
    config["storage"]["mode"] = "nfs"

    assert problems_of(config) == [
        "storage.mode: is not one of the choices, got 'nfs'; use one of: manila, cinder_server, existing"
    ]


def test_given_a_choice_in_the_wrong_case_when_parsed_then_it_suggests_the_right_one(config: dict[str, Any]) -> None:
    config["listeners"] = [{"layer": "smtp_in", "port": 25, "pool_protocol": "proxy"}]

    assert problems_of(config) == [
        "listeners[0].pool_protocol: is not one of the choices, got 'proxy'; use one of: TCP, HTTP, PROXY "
        "(did you mean 'PROXY'?)"
    ]


# ---- values -----------------------------------------------------------------------------------------


def test_given_count_0_when_parsed_then_it_gives_the_range(config: dict[str, Any]) -> None:
    config["layers"]["smtp_in"]["count"] = 0

    assert problems_of(config) == ["layers.smtp_in.count: must be at least 1, got 0; use a whole number from 1 to 500"]


def test_given_a_prefix_over_32_when_parsed_then_it_is_not_a_cidr(config: dict[str, Any]) -> None:
    config["network"]["subnet_cidr"] = "10.10.0.0/33"

    assert problems_of(config) == [
        "network.subnet_cidr: is not a CIDR, got '10.10.0.0/33'; write network/prefix length, e.g. 10.0.0.0/24"
    ]


def test_given_a_cidr_with_host_bits_when_parsed_then_it_gives_the_network(config: dict[str, Any]) -> None:
    config["network"]["subnet_cidr"] = "10.10.0.1/24"

    assert problems_of(config) == ["network.subnet_cidr: has host bits set, got '10.10.0.1/24'; use 10.10.0.0/24"]


def test_given_a_domain_for_a_base_dn_when_parsed_then_it_gives_the_dn(config: dict[str, Any]) -> None:
    config["directory"]["base_dn"] = "domain01.dom"

    assert problems_of(config) == ["directory.base_dn: is not an LDAP DN, got 'domain01.dom'; use dc=domain01,dc=dom"]


def test_given_a_dn_without_equals_when_parsed_then_it_explains_the_form(config: dict[str, Any]) -> None:
    config["directory"]["bind_dn"] = "correoapp@domain01"

    assert problems_of(config) == [
        "directory.bind_dn: is not an LDAP DN, got 'correoapp@domain01'; write comma-separated attribute=value "
        "parts, e.g. dc=domain01,dc=dom"
    ]


def test_given_a_duplicate_domain_when_parsed_then_it_points_at_the_repeat(config: dict[str, Any]) -> None:
    config["domains"] = ["domain01.dom", "domain02.dom", "domain01.dom"]

    assert problems_of(config) == ["domains[2]: repeats domains[0], got 'domain01.dom'; list each mail domain once"]


def test_given_an_upper_case_domain_when_parsed_then_it_gives_the_lower_case_one(config: dict[str, Any]) -> None:
    config["domains"] = ["Domain01.dom"]

    assert problems_of(config) == ["domains[0]: is not a lower-case DNS domain, got 'Domain01.dom'; use 'domain01.dom'"]


def test_given_port_70000_when_parsed_then_it_gives_the_port_range(config: dict[str, Any]) -> None:
    config["listeners"] = [{"layer": "smtp_in", "port": 70000}]

    assert problems_of(config) == [
        "listeners[0].port: must be at most 65535, got 70000; use a whole number from 1 to 65535"
    ]


def test_given_admin_cidrs_open_to_the_world_when_parsed_then_ssh_is_refused(config: dict[str, Any]) -> None:
    config["network"]["admin_cidrs"] = ["0.0.0.0/0"]

    assert problems_of(config) == [
        "network.admin_cidrs[0]: opens SSH to the whole Internet, got '0.0.0.0/0'; list your admin networks, "
        "e.g. 10.99.0.0/24"
    ]


# ---- listeners --------------------------------------------------------------------------------------


def test_given_an_unknown_role_when_parsed_then_it_lists_the_layers(config: dict[str, Any]) -> None:
    config["listeners"] = [{"layer": "imap_proxy", "port": 143}]

    assert problems_of(config) == [
        "listeners[0].layer: is not one of the choices, got 'imap_proxy'; use one of: smtp_in, smtp_out, "
        "mailstore, webmail"
    ]


def test_given_a_listener_for_an_absent_layer_when_parsed_then_it_asks_for_the_layer(config: dict[str, Any]) -> None:
    del config["layers"]["webmail"], config["webmail"]
    config["listeners"] = [{"layer": "webmail", "port": 443, "algorithm": "ROUND_ROBIN"}]

    assert problems_of(config) == [
        "listeners[0].layer: names a layer that is not configured, got 'webmail'; add layers.webmail or remove "
        "this listener"
    ]


def test_given_a_proxy_pool_on_a_port_webmail_cannot_read_then_it_names_the_ones_it_can(
    config: dict[str, Any],
) -> None:
    config["listeners"] = [{"layer": "webmail", "port": 8443, "protocol": "TCP", "pool_protocol": "PROXY"}]

    assert problems_of(config) == [
        "listeners[0].pool_protocol: webmail cannot read the PROXY protocol on port 8443, got 'PROXY'; use TCP; "
        "PROXY only on 80, 443"
    ]


def test_given_a_proxy_pool_on_a_port_smtp_out_cannot_read_then_it_names_the_ones_it_can(
    config: dict[str, Any],
) -> None:
    config["listeners"] = [{"layer": "smtp_out", "port": 10025, "protocol": "TCP", "pool_protocol": "PROXY"}]

    assert problems_of(config) == [
        "listeners[0].pool_protocol: smtp_out cannot read the PROXY protocol on port 10025, got 'PROXY'; use TCP; "
        "PROXY only on 587"
    ]


def test_given_a_listener_on_smtp_outs_internal_relay_then_it_is_refused(config: dict[str, Any]) -> None:
    # Issue 9: behind an LB the relay's only trust (the mailstores' addresses) would become the amphora's.
    config["listeners"] = [{"layer": "smtp_out", "port": 2525, "protocol": "TCP"}]

    assert problems_of(config) == [
        "listeners[0].port: is smtp_out's internal relay, which the mailstores reach directly, got 2525; behind a "
        "load balancer the relay would see the amphora's address and relay for whoever reaches the VIP. Remove "
        "this listener"
    ]


def test_given_an_http_listener_on_a_proxy_pool_port_when_parsed_then_it_asks_for_tcp(
    config: dict[str, Any],
) -> None:
    config["listeners"] = [{"layer": "mailstore", "port": 143, "protocol": "HTTP"}]

    assert problems_of(config) == [
        "listeners[0].protocol: a PROXY pool needs a TCP listener, got 'HTTP'; use TCP or set pool_protocol: TCP"
    ]


def test_given_an_http_pool_behind_a_tcp_listener_when_parsed_then_it_names_both_fixes(
    config: dict[str, Any],
) -> None:
    config["listeners"] = [{"layer": "webmail", "port": 443, "pool_protocol": "HTTP"}]

    assert problems_of(config) == [
        "listeners[0].pool_protocol: an HTTP pool needs an HTTP or TERMINATED_HTTPS listener, got protocol 'TCP'; "
        "set pool_protocol: TCP or protocol: HTTP"
    ]


def test_given_terminated_https_without_a_container_when_parsed_then_it_asks_for_one(config: dict[str, Any]) -> None:
    config["listeners"] = [{"layer": "webmail", "port": 443, "protocol": "TERMINATED_HTTPS", "pool_protocol": "HTTP"}]

    assert problems_of(config) == [
        "listeners[0].tls_container_ref: is required when protocol is TERMINATED_HTTPS; give the Barbican "
        "container ref (openstack secret container list)"
    ]


def test_given_a_new_port_without_a_protocol_when_parsed_then_it_asks_for_the_protocol(
    config: dict[str, Any],
) -> None:
    config["listeners"] = [{"layer": "webmail", "port": 8443}]

    assert problems_of(config) == [
        "listeners[0].protocol: is required for port 8443, which is not a default listener of webmail "
        "(defaults: 80, 443); give the protocol"
    ]


def test_given_one_listener_twice_when_parsed_then_it_asks_to_merge_them(config: dict[str, Any]) -> None:
    config["listeners"] = [
        {"layer": "mailstore", "port": 143, "algorithm": "ROUND_ROBIN"},
        {"layer": "mailstore", "port": 143, "source_ip_persistence": False},
    ]

    assert problems_of(config) == [
        "listeners[1]: repeats listeners[0], got layer mailstore port 143; merge the two entries"
    ]


def test_given_a_short_imap_timeout_when_parsed_then_it_gives_the_range(config: dict[str, Any]) -> None:
    config["listeners"] = [{"layer": "mailstore", "port": 143, "timeout_client_data_ms": 50}]

    assert problems_of(config) == [
        "listeners[0].timeout_client_data_ms: must be at least 1000, got 50; use a whole number from 1000 to 86400000"
    ]


# ---- secrets and the directory ----------------------------------------------------------------------


def test_given_a_literal_bind_password_when_parsed_then_it_asks_for_a_variable(config: dict[str, Any]) -> None:
    config["directory"]["bind_password"] = "hunter2"

    assert problems_of(config) == [
        "directory.bind_password: is a literal secret, got text (not shown); secrets never go in the config: "
        "write {variable: ad_bind_password} and set TF_VAR_ad_bind_password when you run cdktf deploy"
    ]


def test_given_a_literal_bind_password_when_reported_then_the_password_is_not_shown(config: dict[str, Any]) -> None:
    config["directory"]["bind_password"] = "hunter2"

    with pytest.raises(ConfigError) as caught:
        parse_config(config)

    assert "hunter2" not in str(caught.value)


def test_given_a_numeric_password_when_parsed_then_it_is_a_literal_secret_too(config: dict[str, Any]) -> None:
    config["directory"]["bind_password"] = 123456

    assert problems_of(config) == [
        "directory.bind_password: is a literal secret, got a number (not shown); secrets never go in the config: "
        "write {variable: ad_bind_password} and set TF_VAR_ad_bind_password when you run cdktf deploy"
    ]


def test_given_an_ldaps_url_with_starttls_when_parsed_then_it_points_at_the_url(config: dict[str, Any]) -> None:
    config["directory"]["tls"] = "starttls"

    assert problems_of(config) == [
        "directory.urls[0]: is an ldaps:// URL but tls is starttls, got 'ldaps://dc1.domain01.dom:636'; "
        "set tls: ldaps or use an ldap:// URL"
    ]


def test_given_provided_tls_without_pem_variables_when_parsed_then_both_are_asked_for(config: dict[str, Any]) -> None:
    config["tls"] = {"source": "provided"}

    assert problems_of(config) == [
        "tls.certificate: is required when source is provided; give {variable: tls_certificate}, a sensitive "
        "variable holding the PEM chain",
        "tls.private_key: is required when source is provided; give {variable: tls_private_key}, a sensitive "
        "variable holding the PEM key",
    ]


def test_given_a_missing_ca_certificate_when_loaded_then_it_is_looked_for_beside_the_config(
    write_config: Any,
) -> None:
    path = write_config(MINIMAL_YAML.replace("directory:\n", "directory:\n  ca_cert_file: ad-ca.pem\n"))

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:10:3: directory.ca_cert_file: cannot read the file (No such file or directory), got 'ad-ca.pem'; "
        "give a PEM file's path relative to the config file"
    ]


def test_given_a_ca_certificate_beside_the_config_when_loaded_then_it_is_found(write_config: Any) -> None:
    ca = write_config("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", name="ad-ca.pem")
    path = write_config(MINIMAL_YAML.replace("directory:\n", "directory:\n  ca_cert_file: ad-ca.pem\n"))

    assert load_config(path).directory.ca_cert_file == str(ca)


# ---- mail, backend, storage -------------------------------------------------------------------------


def test_given_a_sorbs_dnsbl_when_parsed_then_it_is_dead(config: dict[str, Any]) -> None:
    config["mail"] = {"spam": {"dnsbls": ["zen.spamhaus.org", "dnsbl.sorbs.net"]}}

    assert problems_of(config) == [
        "mail.spam.dnsbls[1]: is a dead DNSBL (SORBS closed in 2024), got 'dnsbl.sorbs.net'; remove it"
    ]


def test_given_kill_level_below_tag2_when_parsed_then_it_must_be_above(config: dict[str, Any]) -> None:
    config["mail"] = {"spam": {"tag2_level": 9.0, "kill_level": 5}}

    assert problems_of(config) == [
        "mail.spam.kill_level: must be above tag2_level 9, got 5; raise it or lower tag2_level"
    ]


def test_given_a_quota_with_bytes_suffix_when_parsed_then_it_shows_the_size_form(config: dict[str, Any]) -> None:
    config["mail"] = {"quota": {"default_storage": "2GB"}}

    assert problems_of(config) == [
        "mail.quota.default_storage: is not a size (a whole number with an optional K, M, G or T), got '2GB'; "
        "write it like 2G"
    ]


def test_given_an_s3_backend_without_bucket_when_parsed_then_the_bucket_is_required(config: dict[str, Any]) -> None:
    config["backend"] = {"type": "s3", "endpoint": "https://rgw.domain01.dom"}

    assert problems_of(config) == ["backend.bucket: is required when type is s3; give the bucket name"]


def test_given_an_absolute_local_state_path_when_parsed_then_it_must_be_relative(config: dict[str, Any]) -> None:
    config["backend"] = {"path": "/var/lib/terraform/mail.tfstate"}

    assert problems_of(config) == [
        "backend.path: must be relative so synth output is the same on every machine, got "
        "'/var/lib/terraform/mail.tfstate'; use a relative path such as state/mail.tfstate"
    ]


def test_given_existing_storage_without_export_when_parsed_then_the_export_is_required(
    config: dict[str, Any],
) -> None:
    config["storage"] = {"mode": "existing"}

    assert problems_of(config) == [
        "storage.export: is required when mode is existing; give the NAS export as host:/path, "
        "e.g. nas1.domain01.dom:/export/mail"
    ]


def test_given_a_layer_subnet_without_its_cidr_when_parsed_then_both_are_asked_for(config: dict[str, Any]) -> None:
    config["layers"]["mailstore"]["subnet_id"] = "6f1c1c3e-0000-4000-8000-00000000a009"
    del config["layers"]["mailstore"]["subnet_cidr"]

    assert problems_of(config) == [
        "layers.mailstore.subnet_cidr: is required when subnet_id is set, got nothing; give both or neither"
    ]


# ---- the document as a whole ------------------------------------------------------------------------


def test_given_a_list_instead_of_a_mapping_when_parsed_then_it_points_at_the_default() -> None:
    assert problems_of([default_data()]) == [
        "(top level): must be a mapping of settings, got a list; start from a copy of mailstrata/config/default.yaml"
    ]


def test_given_several_problems_when_parsed_then_one_error_lists_all_in_model_order(config: dict[str, Any]) -> None:
    config["colour"] = "blue"
    config["domains"].append("domain01.dom")
    config["network"]["subnet_cidr"] = "10.10.0.1/24"
    del config["directory"]["base_dn"]
    config["layers"]["smtp_in"]["count"] = 0

    with pytest.raises(ConfigError) as caught:
        parse_config(config)

    assert str(caught.value) == "\n".join([
        "5 problems in the mailstrata configuration:",
        "  - domains[2]: repeats domains[0], got 'domain01.dom'; list each mail domain once",
        "  - network.subnet_cidr: has host bits set, got '10.10.0.1/24'; use 10.10.0.0/24",
        "  - directory.base_dn: is required; add it (Where users and groups are searched)",
        "  - layers.smtp_in.count: must be at least 1, got 0; use a whole number from 1 to 500",
        "  - colour: is not a known key; use one of: name, os, region, cloud, backend, domains, dns, network, "
        "directory, storage, layers, listeners, mail, tls, webmail, floating_ips (did you mean 'cloud'?)",
    ])


def test_given_a_broken_section_when_parsed_then_cross_section_rules_still_report(config: dict[str, Any]) -> None:
    config["network"]["subnet_cidr"] = "10.10.0.1/24"
    del config["layers"]["webmail"], config["webmail"]
    config["listeners"] = [{"layer": "webmail", "port": 443, "algorithm": "ROUND_ROBIN"}]

    assert problems_of(config) == [
        "network.subnet_cidr: has host bits set, got '10.10.0.1/24'; use 10.10.0.0/24",
        "listeners[0].layer: names a layer that is not configured, got 'webmail'; add layers.webmail or remove "
        "this listener",
    ]


# ---- files: positions, YAML syntax, duplicate keys --------------------------------------------------


def test_given_invalid_yaml_when_loaded_then_it_gives_line_and_column(write_config: Any) -> None:
    path = write_config("name: mail\nlayers:\n  smtp_in: {count: 2\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:4:1: is not valid YAML (expected ',' or '}}', but got '<stream end>'); check the indentation "
        "and quote values that contain ': ' or ' #'"
    ]


def test_given_a_problem_in_a_file_when_loaded_then_it_gives_the_line_of_the_key(write_config: Any) -> None:
    path = write_config(MINIMAL_YAML.replace("smtp_out: {}", "smtp_out: {count: 0}"))

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:15:14: layers.smtp_out.count: must be at least 1, got 0; use a whole number from 1 to 500"
    ]


def test_given_a_missing_key_in_a_file_when_loaded_then_it_gives_the_line_of_its_parent(write_config: Any) -> None:
    path = write_config(MINIMAL_YAML.replace("  subnet_id: 6f1c1c3e-0000-4000-8000-00000000a002\n", ""))

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:2:1: network.subnet_id: is required; add it (Neutron subnet of the servers)"
    ]


def test_given_problems_in_a_file_when_loaded_then_they_come_in_the_order_of_the_file(write_config: Any) -> None:
    text = MINIMAL_YAML.replace("mailstore: {}", "mailstore: {count: 0}").replace("domains: [domain01.dom]",
                                                                                 "domains: [Domain01.dom]")
    path = write_config("colour: blue\n" + text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:1:1: colour: is not a known key; use one of: name, os, region, cloud, backend, domains, dns, "
        "network, directory, storage, layers, listeners, mail, tls, webmail, floating_ips (did you mean 'cloud'?)",
        f"{path}:2:11: domains[0]: is not a lower-case DNS domain, got 'Domain01.dom'; use 'domain01.dom'",
        f"{path}:17:15: layers.mailstore.count: must be at least 1, got 0; use a whole number from 1 to 500",
    ]


def test_given_a_key_twice_in_a_file_when_loaded_then_it_names_both_lines(write_config: Any) -> None:
    path = write_config(MINIMAL_YAML.replace("  base_dn: dc=domain01,dc=dom\n",
                                             "  base_dn: dc=domain01,dc=dom\n  base_dn: dc=domain02,dc=dom\n"))

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:12:3: directory.base_dn: is given more than once, got it on lines 11 and 12; keep one"
    ]


def test_given_the_minimal_config_when_loaded_then_it_is_valid(write_config: Any) -> None:
    assert load_config(write_config(MINIMAL_YAML)).name == "mail"


def test_given_an_empty_file_when_loaded_then_it_points_at_the_default(write_config: Any) -> None:
    path = write_config("")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:1:1: (top level): is empty; start from a copy of mailstrata/config/default.yaml"
    ]


def test_given_a_missing_file_when_loaded_then_it_says_so(tmp_path: Any) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}: cannot read the config file (No such file or directory); give the path of a YAML file, relative "
        "to the working directory or absolute"
    ]


def test_given_two_webmail_servers_without_a_shared_database_when_parsed_then_it_asks_for_one(
    config: dict[str, Any],
) -> None:
    del config["webmail"]

    assert problems_of(config) == [
        "layers.webmail.count: needs webmail.database_host with more than one server, got 2; set count: 1, or give "
        "webmail.database_host, a shared MariaDB/Galera host"
    ]


def test_given_two_webmail_servers_and_no_webmail_section_in_a_file_then_it_points_at_the_count(
    write_config: Any,
) -> None:
    path = write_config("# the platform\n" + MINIMAL_YAML + "  webmail: {count: 2}\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:18:13: layers.webmail.count: needs webmail.database_host with more than one server, got 2; set "
        "count: 1, or give webmail.database_host, a shared MariaDB/Galera host"
    ]


def test_given_two_webmail_servers_by_default_in_a_file_then_it_points_at_the_layer(write_config: Any) -> None:
    path = write_config(MINIMAL_YAML + "  webmail: {flavor: m1.large}\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:17:3: layers.webmail.count: needs webmail.database_host with more than one server, got 2; set "
        "count: 1, or give webmail.database_host, a shared MariaDB/Galera host"
    ]


def test_given_an_external_database_without_its_password_when_parsed_then_the_variable_is_required(
    config: dict[str, Any],
) -> None:
    del config["webmail"]["database_password"]
    assert problems_of(config) == [
        "webmail.database_password: is required when database_host is set, got nothing; "
        "write {variable: webmail_db_password}"
    ]


# ---- subnets: one CIDR per subnet, no two subnets overlapping ---------------------------------------


def test_given_a_layer_subnet_overlapping_another_when_parsed_then_it_names_the_other(config: dict[str, Any]) -> None:
    config["layers"]["webmail"]["subnet_cidr"] = "10.10.2.128/25"

    assert problems_of(config) == [
        "layers.webmail.subnet_cidr: overlaps layers.smtp_out.subnet_cidr 10.10.2.0/24, which belongs to another "
        "subnet (6f1c1c3e-0000-4000-8000-00000000a012), got '10.10.2.128/25'; give each subnet its own CIDR, or "
        "write layers.webmail.subnet_id: 6f1c1c3e-0000-4000-8000-00000000a012 if it is the same subnet"
    ]


def test_given_a_layer_subnet_equal_to_the_vip_subnet_under_another_id_when_parsed_then_it_is_refused(
    config: dict[str, Any],
) -> None:
    config["layers"]["smtp_in"]["subnet_cidr"] = "10.20.0.0/24"

    assert problems_of(config) == [
        "layers.smtp_in.subnet_cidr: is the same network as network.vip_subnet_cidr 10.20.0.0/24, which belongs to "
        "another subnet (6f1c1c3e-0000-4000-8000-00000000a003), got '10.20.0.0/24'; give each subnet its own CIDR, "
        "or write layers.smtp_in.subnet_id: 6f1c1c3e-0000-4000-8000-00000000a003 if it is the same subnet"
    ]


def test_given_one_subnet_id_with_two_cidrs_when_parsed_then_it_asks_for_one(config: dict[str, Any]) -> None:
    config["layers"]["smtp_out"]["subnet_id"] = "6f1c1c3e-0000-4000-8000-00000000a011"

    assert problems_of(config) == [
        "layers.smtp_out.subnet_cidr: differs from layers.smtp_in.subnet_cidr 10.10.1.0/24 for the same subnet "
        "6f1c1c3e-0000-4000-8000-00000000a011, got '10.10.2.0/24'; one subnet has one CIDR: use 10.10.1.0/24, or "
        "give this layer its own subnet_id"
    ]


def test_given_the_vip_subnet_overlapping_the_servers_subnet_when_parsed_then_it_is_refused(
    config: dict[str, Any],
) -> None:
    config["network"]["vip_subnet_cidr"] = "10.10.5.128/25"

    assert problems_of(config) == [
        "network.vip_subnet_cidr: overlaps network.subnet_cidr 10.10.5.0/24, which belongs to another subnet "
        "(6f1c1c3e-0000-4000-8000-00000000a002), got '10.10.5.128/25'; give each subnet its own CIDR, or write "
        "network.vip_subnet_id: 6f1c1c3e-0000-4000-8000-00000000a002 if it is the same subnet"
    ]


def test_given_the_vip_subnet_as_the_servers_subnet_itself_when_parsed_then_it_is_valid(
    config: dict[str, Any],
) -> None:
    config["network"]["vip_subnet_id"] = config["network"]["subnet_id"]
    config["network"]["vip_subnet_cidr"] = config["network"]["subnet_cidr"]

    assert parse_config(config).network.vip_subnet_cidr == "10.10.5.0/24"


def test_given_a_layer_on_another_network_without_its_subnet_when_parsed_then_the_subnet_is_required(
    config: dict[str, Any],
) -> None:
    webmail = config["layers"]["webmail"]
    webmail["network_id"] = "6f1c1c3e-0000-4000-8000-00000000b001"
    del webmail["subnet_id"], webmail["subnet_cidr"]

    assert problems_of(config) == [
        "layers.webmail.subnet_id: is required when network_id is not network.network_id, got nothing "
        "(network.subnet_id is a subnet of 6f1c1c3e-0000-4000-8000-00000000a001); give this layer's subnet_id and "
        "subnet_cidr"
    ]


def test_given_a_broken_directory_when_subnets_overlap_then_both_are_reported(config: dict[str, Any]) -> None:
    config["directory"]["base_dn"] = "domain01.dom"
    config["layers"]["smtp_in"]["subnet_cidr"] = "10.20.0.0/24"

    assert [p.split(":")[0] for p in problems_of(config)] == ["directory.base_dn", "layers.smtp_in.subnet_cidr"]


# ---- CIDRs and strict scalars -------------------------------------------------------------------------


def test_given_an_address_without_a_prefix_when_parsed_then_it_asks_for_one(config: dict[str, Any]) -> None:
    config["network"]["admin_cidrs"] = ["10.99.0.5"]

    assert problems_of(config) == [
        "network.admin_cidrs[0]: has no prefix length, got '10.99.0.5'; write the network with its prefix, e.g. "
        "10.99.0.0/24, or 10.99.0.5/32 for this one address"
    ]


def test_given_an_ipv6_address_without_a_prefix_when_parsed_then_it_suggests_a_64(config: dict[str, Any]) -> None:
    config["network"]["client_cidrs"] = ["2001:db8::1"]

    assert problems_of(config) == [
        "network.client_cidrs[0]: has no prefix length, got '2001:db8::1'; write the network with its prefix, e.g. "
        "2001:db8::/64, or 2001:db8::1/128 for this one address"
    ]


def test_given_count_yes_in_a_file_when_loaded_then_it_is_not_one_server(write_config: Any) -> None:
    path = write_config(MINIMAL_YAML.replace("smtp_in: {}", "smtp_in: {count: yes}"))

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:14:13: layers.smtp_in.count: must be a whole number, got true; write digits only, e.g. 2 (YAML reads "
        "yes, no, on and off as true or false)"
    ]


def test_given_a_quoted_count_when_parsed_then_it_asks_to_drop_the_quotes(config: dict[str, Any]) -> None:
    config["layers"]["smtp_in"]["count"] = "2"

    assert problems_of(config) == ["layers.smtp_in.count: must be a whole number, got text '2'; write 2 without quotes"]


def test_given_a_fractional_count_when_parsed_then_it_asks_to_round(config: dict[str, Any]) -> None:
    config["layers"]["smtp_in"]["count"] = 2.5

    assert problems_of(config) == ["layers.smtp_in.count: must be a whole number, got 2.5; round it"]


def test_given_1_for_a_switch_when_parsed_then_it_asks_for_true_or_false(config: dict[str, Any]) -> None:
    config["dns"]["designate"] = 1

    assert problems_of(config) == ["dns.designate: must be true or false, got 1; write true or false"]


def test_given_a_quoted_true_when_parsed_then_it_asks_for_the_bare_word(config: dict[str, Any]) -> None:
    config["dns"]["designate"] = "true"

    assert problems_of(config) == [
        "dns.designate: must be true or false, got 'true'; write true or false without quotes"
    ]


def test_given_true_for_a_score_when_parsed_then_it_is_not_1(config: dict[str, Any]) -> None:
    config["mail"] = {"spam": {"tag2_level": True}}

    assert problems_of(config) == [
        "mail.spam.tag2_level: must be a number, got true; write digits only, e.g. 9.0 (YAML reads yes, no, on and "
        "off as true or false)"
    ]


def test_given_a_share_size_over_cinders_limit_when_parsed_then_it_gives_the_range(config: dict[str, Any]) -> None:
    config["storage"]["size_gb"] = 99999999999

    assert problems_of(config) == [
        "storage.size_gb: must be at most 2147483647, got 99999999999; use a whole number from 1 to 2147483647"
    ]


# ---- text: time zones, SPF, URLs, empty values ----------------------------------------------------------


def test_given_a_misspelt_time_zone_when_parsed_then_it_suggests_the_right_one(config: dict[str, Any]) -> None:
    config["webmail"]["timezone"] = "Europe/Madird"

    assert problems_of(config) == [
        "webmail.timezone: is not a time zone, got 'Europe/Madird'; use an IANA name such as Europe/Madrid or UTC "
        "(did you mean 'Europe/Madrid'?)"
    ]


def test_given_an_spf_value_in_quotes_when_parsed_then_it_asks_for_it_without(config: dict[str, Any]) -> None:
    config["dns"]["spf"] = '"v=spf1 mx ~all"'

    assert problems_of(config) == [
        "dns.spf: contains quotes or backslashes, got '\"v=spf1 mx ~all\"'; write it without quotes: v=spf1 mx ~all "
        "(mailstrata quotes the TXT record itself)"
    ]


def test_given_an_spf_value_without_its_version_when_parsed_then_it_asks_for_v_spf1(config: dict[str, Any]) -> None:
    config["dns"]["spf"] = "mx ~all"

    assert problems_of(config) == [
        "dns.spf: is not an SPF record, got 'mx ~all'; start it with v=spf1, e.g. v=spf1 mx ~all"
    ]


def test_given_a_solr_address_without_a_scheme_when_parsed_then_it_asks_for_a_url(config: dict[str, Any]) -> None:
    config["mail"] = {"fts": "solr", "solr_url": "localhost:8983/solr/dovecot"}

    assert problems_of(config) == [
        "mail.solr_url: is not an http:// or https:// URL, got 'localhost:8983/solr/dovecot'; write it like "
        "http://host.domain01.dom/path"
    ]


def test_given_an_empty_key_pair_when_parsed_then_it_is_refused(config: dict[str, Any]) -> None:
    config["layers"]["smtp_in"]["key_pair"] = ""

    assert problems_of(config) == [
        "layers.smtp_in.key_pair: is empty, got ''; write a value, or remove the key to use the default"
    ]


def test_given_a_flavor_with_a_trailing_space_when_parsed_then_it_gives_the_trimmed_name(
    config: dict[str, Any],
) -> None:
    config["layers"]["smtp_in"]["flavor"] = "m1.medium "

    assert problems_of(config) == ["layers.smtp_in.flavor: has spaces around it, got 'm1.medium '; use 'm1.medium'"]


# ---- IDs where the provider takes IDs, names where it takes names ---------------------------------------


def test_given_a_network_name_for_network_id_when_parsed_then_it_asks_for_the_id(config: dict[str, Any]) -> None:
    config["network"]["network_id"] = "private-net"

    assert problems_of(config) == [
        "network.network_id: is not a Neutron network ID (a UUID), got 'private-net'; give its ID, e.g. from "
        "`openstack network show private-net -f value -c id`"
    ]


def test_given_a_subnet_name_for_a_layer_subnet_when_parsed_then_it_asks_for_the_id(config: dict[str, Any]) -> None:
    config["layers"]["mailstore"]["subnet_id"] = "mailstore-subnet"

    assert problems_of(config) == [
        "layers.mailstore.subnet_id: is not a Neutron subnet ID (a UUID), got 'mailstore-subnet'; give its ID, e.g. "
        "from `openstack subnet show mailstore-subnet -f value -c id`"
    ]


def test_given_a_share_network_name_when_parsed_then_it_asks_for_the_id(config: dict[str, Any]) -> None:
    config["storage"] = {"mode": "manila", "share_network_id": "mail-share-net"}

    assert problems_of(config) == [
        "storage.share_network_id: is not a Manila share network ID (a UUID), got 'mail-share-net'; give its ID, "
        "e.g. from `openstack share network show mail-share-net -f value -c id`"
    ]


def test_given_an_external_network_id_when_parsed_then_it_asks_for_the_pool_name(config: dict[str, Any]) -> None:
    config["network"]["external_network"] = "6f1c1c3e-0000-4000-8000-00000000e001"

    assert problems_of(config) == [
        "network.external_network: is a network ID, got '6f1c1c3e-0000-4000-8000-00000000e001'; give the network's "
        "name (`openstack network show 6f1c1c3e-0000-4000-8000-00000000e001 -f value -c name`): mailstrata passes it "
        "as the floating-IP pool, which takes a name"
    ]


def test_given_an_image_id_when_parsed_then_it_asks_for_the_image_name(config: dict[str, Any]) -> None:
    config["layers"]["smtp_in"]["image"] = "6f1c1c3e-0000-4000-8000-00000000f001"

    assert problems_of(config) == [
        "layers.smtp_in.image: is an image ID, got '6f1c1c3e-0000-4000-8000-00000000f001'; give the image's name "
        "(`openstack image show 6f1c1c3e-0000-4000-8000-00000000f001 -f value -c name`): mailstrata passes it as "
        "image_name, which takes a name"
    ]


# ---- names that would collide in Terraform ------------------------------------------------------------


def test_given_two_domains_with_the_same_letters_when_parsed_then_they_would_collide(config: dict[str, Any]) -> None:
    config["domains"] = ["corp-it.example.com", "corp.it.example.com"]

    assert problems_of(config) == [
        "domains[1]: would share its Terraform resources with domains[0] 'corp-it.example.com' (both read "
        "'corpitexamplecom' once dots and dashes are dropped), got 'corp.it.example.com'; serve one of the two from "
        "a second config with its own name"
    ]


def test_given_a_mail_domain_that_is_the_platform_zone_when_zones_are_created_then_it_is_refused(
    config: dict[str, Any],
) -> None:
    config["dns"]["zone"] = "domain01.dom"

    assert problems_of(config) == [
        "domains[0]: is also dns.zone, and dns.mail_domain_zones would create that Designate zone a second time, got "
        "'domain01.dom'; use another dns.zone, such as hosts.domain01.dom"
    ]


def test_given_the_ad_password_variable_for_the_webmail_database_when_parsed_then_it_is_refused(
    config: dict[str, Any],
) -> None:
    config["webmail"]["database_password"] = {"variable": "ad_bind_password"}

    assert problems_of(config) == [
        "webmail.database_password: names the variable of directory.bind_password, got {variable: ad_bind_password}; "
        "give each secret its own variable, e.g. {variable: webmail_db_password}"
    ]


def test_given_one_variable_for_the_tls_certificate_and_key_when_parsed_then_it_is_refused(
    config: dict[str, Any],
) -> None:
    config["tls"] = {"source": "provided", "certificate": {"variable": "tls"}, "private_key": {"variable": "tls"}}

    assert problems_of(config) == [
        "tls.private_key: names the variable of tls.certificate, got {variable: tls}; give each secret its own "
        "variable, e.g. {variable: tls_private_key}"
    ]


def test_given_a_variable_name_terraform_reserves_when_parsed_then_it_is_refused(config: dict[str, Any]) -> None:
    config["directory"]["bind_password"] = {"variable": "count"}

    assert problems_of(config) == [
        "directory.bind_password.variable: is a name Terraform reserves for itself, got 'count'; choose another, e.g. "
        "mail_count"
    ]


# ---- documents that would exhaust the reader ----------------------------------------------------------


def _alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join([*lines, f"domains: *a{levels}"]) + "\n"


def test_given_an_alias_bomb_when_loaded_then_it_is_refused_where_it_grows(write_config: Any) -> None:
    path = write_config(_alias_bomb(levels=4))  # small enough that a regression costs seconds, not all memory

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:5:5: a4: holds more than 20000 values once its YAML aliases (*name) are expanded, got 66430 or more; "
        "use fewer aliases, or write the values out"
    ]


def test_given_an_alias_bomb_when_validated_then_it_exits_2_at_once_in_bounded_memory(write_config: Any) -> None:
    import resource
    import subprocess
    import sys
    import time

    path = write_config(_alias_bomb())

    def limit_memory() -> None:  # 1 GiB of address space: an unbounded expansion dies with MemoryError
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mailstrata.cli", "validate", "--config", str(path)],
                            capture_output=True, text=True, timeout=120, check=False, preexec_fn=limit_memory)

    assert (result.returncode, result.stdout, result.stderr.count("\n"), "Traceback" in result.stderr) == (
        2, "", 2, False
    )
    assert time.monotonic() - start < 30


def test_given_an_alias_that_contains_itself_when_loaded_then_it_is_refused(write_config: Any) -> None:
    path = write_config("domains: &x [domain01.dom, *x]\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:1:10: domains[1]: contains itself through a YAML alias, got a recursive *alias; write the values out"
    ]


def test_given_thousands_of_nested_lists_when_loaded_then_it_is_refused_without_a_recursion_error(
    write_config: Any,
) -> None:
    path = write_config("domains: " + "[" * 5000 + "]" * 5000 + "\n")

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:1:41: (top level): is nested more than 32 levels deep, got 33; a mailstrata config has at most 5 "
        "levels: start from a copy of mailstrata/config/default.yaml"
    ]


def test_given_anchors_for_repeated_layer_settings_when_loaded_then_they_still_work(write_config: Any) -> None:
    text = MINIMAL_YAML.replace("  smtp_in: {}\n  smtp_out: {}\n  mailstore: {}\n",
                                "  smtp_in: &layer {count: 3, flavor: m1.large}\n  smtp_out: *layer\n"
                                "  mailstore: {<<: *layer, count: 2}\n")

    cfg = load_config(write_config(text))

    assert (cfg.layers.smtp_out.count, cfg.layers.mailstore.count, cfg.layers.mailstore.flavor) == (3, 2, "m1.large")


# ---- one error never hides another in the same section ------------------------------------------------


def test_given_an_s3_endpoint_without_a_scheme_and_no_bucket_when_parsed_then_both_are_reported(
    config: dict[str, Any],
) -> None:
    config["backend"] = {"type": "s3", "endpoint": "rgw.example.com"}

    assert problems_of(config) == [
        "backend.endpoint: is not an http:// or https:// URL, got 'rgw.example.com'; write it like "
        "http://host.domain01.dom/path",
        "backend.bucket: is required when type is s3; give the bucket name",
    ]


def test_given_a_url_for_a_dnsbl_and_kill_level_below_tag2_when_parsed_then_both_are_reported(
    config: dict[str, Any],
) -> None:
    config["mail"] = {"spam": {"dnsbls": ["https://zen.spamhaus.org"], "kill_level": 5}}

    assert problems_of(config) == [
        "mail.spam.dnsbls[0]: is not a lower-case DNS domain, got 'https://zen.spamhaus.org'; write it like "
        "domain01.dom",
        "mail.spam.kill_level: must be above tag2_level 9, got 5; raise it or lower tag2_level",
    ]


def test_given_an_upper_case_domain_and_a_repeat_when_parsed_then_both_are_reported(config: dict[str, Any]) -> None:
    config["domains"] = ["example.com", "Example.com", "example.com"]

    assert problems_of(config) == [
        "domains[1]: is not a lower-case DNS domain, got 'Example.com'; use 'example.com'",
        "domains[2]: repeats domains[0], got 'example.com'; list each mail domain once",
    ]


def test_given_a_bad_listener_and_two_repeated_ones_when_parsed_then_both_are_reported(
    config: dict[str, Any],
) -> None:
    config["listeners"] = [{"layer": "mailstore", "port": 0}, {"layer": "mailstore", "port": 143},
                           {"layer": "mailstore", "port": 143}]

    assert problems_of(config) == [
        "listeners[0].port: must be at least 1, got 0; use a whole number from 1 to 65535",
        "listeners[2]: repeats listeners[1], got layer mailstore port 143; merge the two entries",
    ]


def test_given_a_bad_algorithm_and_a_stray_tls_container_when_parsed_then_both_are_reported(
    config: dict[str, Any],
) -> None:
    config["listeners"] = [{"layer": "webmail", "port": 443, "algorithm": "RANDOM", "tls_container_ref": "x"}]

    assert problems_of(config) == [
        "listeners[0].algorithm: is not one of the choices, got 'RANDOM'; use one of: ROUND_ROBIN, "
        "LEAST_CONNECTIONS, SOURCE_IP",
        "listeners[0].tls_container_ref: is only used with protocol TERMINATED_HTTPS, got 'x'; remove it or set "
        "protocol: TERMINATED_HTTPS",
    ]


def test_given_a_literal_certificate_and_no_key_when_parsed_then_both_are_reported(config: dict[str, Any]) -> None:
    config["tls"] = {"source": "provided", "certificate": "-----BEGIN CERTIFICATE-----"}

    assert problems_of(config) == [
        "tls.certificate: is a literal secret, got text (not shown); secrets never go in the config: write "
        "{variable: tls_certificate} and set TF_VAR_tls_certificate when you run cdktf deploy",
        "tls.private_key: is required when source is provided; give {variable: tls_private_key}, a sensitive "
        "variable holding the PEM key",
    ]


def test_given_a_bad_base_dn_and_an_ldaps_url_with_starttls_when_parsed_then_both_are_reported(
    config: dict[str, Any],
) -> None:
    config["directory"]["base_dn"] = "domain01.dom"
    config["directory"]["tls"] = "starttls"

    assert problems_of(config) == [
        "directory.base_dn: is not an LDAP DN, got 'domain01.dom'; use dc=domain01,dc=dom",
        "directory.urls[0]: is an ldaps:// URL but tls is starttls, got 'ldaps://dc1.domain01.dom:636'; set tls: "
        "ldaps or use an ldap:// URL",
    ]


def test_given_an_admin_address_without_prefix_and_the_whole_internet_when_parsed_then_both_are_reported(
    config: dict[str, Any],
) -> None:
    config["network"]["admin_cidrs"] = ["10.99.0.5", "0.0.0.0/0"]

    assert problems_of(config) == [
        "network.admin_cidrs[0]: has no prefix length, got '10.99.0.5'; write the network with its prefix, e.g. "
        "10.99.0.0/24, or 10.99.0.5/32 for this one address",
        "network.admin_cidrs[1]: opens SSH to the whole Internet, got '0.0.0.0/0'; list your admin networks, e.g. "
        "10.99.0.0/24",
    ]


def test_given_a_bad_count_and_a_subnet_without_its_cidr_when_parsed_then_both_are_reported(
    config: dict[str, Any],
) -> None:
    config["layers"]["mailstore"]["count"] = 0
    del config["layers"]["mailstore"]["subnet_cidr"]

    assert problems_of(config) == [
        "layers.mailstore.count: must be at least 1, got 0; use a whole number from 1 to 500",
        "layers.mailstore.subnet_cidr: is required when subnet_id is set, got nothing; give both or neither",
    ]


def test_given_a_bad_time_zone_and_a_password_without_a_host_when_parsed_then_both_are_reported(
    config: dict[str, Any],
) -> None:
    config["layers"]["webmail"]["count"] = 1
    config["webmail"] = {"timezone": "Europe/Madird", "database_password": {"variable": "webmail_db_password"}}

    assert problems_of(config) == [
        "webmail.timezone: is not a time zone, got 'Europe/Madird'; use an IANA name such as Europe/Madrid or UTC "
        "(did you mean 'Europe/Madrid'?)",
        "webmail.database_password: is only used with database_host, got a variable; remove it or set database_host",
    ]


def test_given_a_bad_flavor_on_existing_storage_without_export_when_parsed_then_both_are_reported(
    config: dict[str, Any],
) -> None:
    config["storage"] = {"mode": "existing", "flavor": "m1.large "}

    assert problems_of(config) == [
        "storage.flavor: has spaces around it, got 'm1.large '; use 'm1.large'",
        "storage.export: is required when mode is existing; give the NAS export as host:/path, "
        "e.g. nas1.domain01.dom:/export/mail",
    ]


# ---- settings that only apply with a layer or a mode are refused, not ignored ---------------------------


def test_given_webmail_settings_without_a_webmail_layer_when_parsed_then_they_are_refused(
    config: dict[str, Any],
) -> None:
    del config["layers"]["webmail"]

    assert problems_of(config) == [
        "webmail: is only used with layers.webmail, got settings for database_host, database_password; remove it or "
        "add the layer"
    ]


def test_given_manila_and_cinder_settings_with_an_existing_nas_when_parsed_then_they_are_refused(
    config: dict[str, Any],
) -> None:
    config["storage"] = {"mode": "existing", "export": "nas1.domain01.dom:/export/mail", "size_gb": 500,
                         "share_type": "gold", "flavor": "m1.large"}

    assert problems_of(config) == [
        "storage.size_gb: is only used when mode is manila or cinder_server, got 500; remove it or set mode: manila",
        "storage.share_type: is only used when mode is manila, got 'gold'; remove it or set mode: manila",
        "storage.flavor: is only used when mode is cinder_server, got 'm1.large'; remove it or set mode: "
        "cinder_server",
    ]


def test_given_a_share_network_with_a_cinder_server_when_parsed_then_it_is_refused(config: dict[str, Any]) -> None:
    config["storage"] = {"mode": "cinder_server", "share_network_id": "6f1c1c3e-0000-4000-8000-00000000a004"}

    assert problems_of(config) == [
        "storage.share_network_id: is only used when mode is manila, got '6f1c1c3e-0000-4000-8000-00000000a004'; "
        "remove it or set mode: manila"
    ]


def test_given_cinder_server_settings_with_manila_when_parsed_then_they_are_refused(config: dict[str, Any]) -> None:
    config["storage"] = {"mode": "manila", "image": "CentOS-7-x86_64-GenericCloud-2009", "volume_type": "ssd"}

    assert problems_of(config) == [
        "storage.image: is only used when mode is cinder_server, got 'CentOS-7-x86_64-GenericCloud-2009'; remove it "
        "or set mode: cinder_server",
        "storage.volume_type: is only used when mode is cinder_server, got 'ssd'; remove it or set mode: "
        "cinder_server",
    ]


def test_given_designate_settings_without_designate_when_parsed_then_they_are_refused(
    config: dict[str, Any],
) -> None:
    config["dns"] = {"zone": "cloud0.hc.mycompany.dom", "mail_domain_zones": True, "ttl": 60}

    assert problems_of(config) == [
        "dns.mail_domain_zones: is only used when designate is true, got true; remove it or set designate: true",
        "dns.ttl: is only used when designate is true, got 60; remove it or set designate: true",
    ]


def test_given_a_solr_url_with_lucene_search_when_parsed_then_it_is_refused(config: dict[str, Any]) -> None:
    config["mail"] = {"solr_url": "http://solr.domain01.dom:8983/solr/dovecot"}

    assert problems_of(config) == [
        "mail.solr_url: is only used when fts is solr, got 'http://solr.domain01.dom:8983/solr/dovecot'; remove it or "
        "set fts: solr"
    ]
