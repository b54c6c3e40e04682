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
        "layers.smtp_in.flavour: is not a known key; use one of: count, flavor, image, key_pair, affinity, "
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
    del config["layers"]["webmail"]
    config["listeners"] = [{"layer": "webmail", "port": 443, "algorithm": "ROUND_ROBIN"}]

    assert problems_of(config) == [
        "listeners[0].layer: names a layer that is not configured, got 'webmail'; add layers.webmail or remove "
        "this listener"
    ]


def test_given_a_proxy_pool_on_webmail_443_when_parsed_then_it_asks_for_tcp(config: dict[str, Any]) -> None:
    config["listeners"] = [{"layer": "webmail", "port": 443, "pool_protocol": "PROXY"}]

    assert problems_of(config) == [
        "listeners[0].pool_protocol: webmail cannot read the PROXY protocol on port 443, got 'PROXY'; use TCP"
    ]


def test_given_a_proxy_pool_on_a_port_smtp_out_cannot_read_then_it_names_the_ones_it_can(
    config: dict[str, Any],
) -> None:
    config["listeners"] = [{"layer": "smtp_out", "port": 2525, "protocol": "TCP", "pool_protocol": "PROXY"}]

    assert problems_of(config) == [
        "listeners[0].pool_protocol: smtp_out cannot read the PROXY protocol on port 2525, got 'PROXY'; use TCP; "
        "PROXY only on 25, 587"
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
    config["listeners"] = [{"layer": "webmail", "port": 443, "protocol": "TERMINATED_HTTPS"}]

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
        "'/var/lib/terraform/mail.tfstate'; use a relative path such as terraform.mail.tfstate"
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
    del config["layers"]["webmail"]
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
    path = write_config(MINIMAL_YAML.replace("  subnet_id: subnet-1\n", ""))

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
        "webmail.database_host: is required with 2 webmail servers, got nothing; give a shared MariaDB/Galera host "
        "or set layers.webmail.count: 1"
    ]


def test_given_an_external_database_without_its_password_when_parsed_then_the_variable_is_required(
    config: dict[str, Any],
) -> None:
    del config["webmail"]["database_password"]
    assert problems_of(config) == [
        "webmail.database_password: is required when database_host is set, got nothing; "
        "write {variable: webmail_db_password}"
    ]
