"""List values in config.toml (issue 8 item 1: the loader could not parse them), and the keys of
the security settings."""
from __future__ import annotations

import tomllib

import pytest

from shared import config as config_module


def parse_toml(text: str) -> config_module.Config:
    return config_module.parse(tomllib.loads(text))


def test_toml_arrays_of_strings():
    config = parse_toml('[connection]\nallowed_origins = ["http://localhost:3000"]\n'
                        'allowed_hosts = ["prep.internal", "nas.lan"]\n'
                        '[deal_preparation_service]\ndataset_roots = ["/srv/data", "./sample"]\n')
    assert config.connection.allowed_origins == ["http://localhost:3000"]
    assert config.connection.allowed_hosts == ["prep.internal", "nas.lan"]
    assert config.deal_preparation_service.dataset_roots == ["/srv/data", "./sample"]
    assert parse_toml("[connection]\nallowed_hosts = []\n").connection.allowed_hosts == []


def test_defaults_are_fresh_lists():
    first, second = config_module.parse({}), config_module.parse({})
    first.connection.allowed_hosts.append("x")
    assert second.connection.allowed_hosts == []


@pytest.mark.parametrize("text,message", [
    ('[connection]\nallowed_hosts = "nas.lan"\n', "connection.allowed_hosts: expected a list of str"),
    ("[connection]\nallowed_origins = [3000]\n", r"connection.allowed_origins\[0\]: expected str"),
    ('[deal_preparation_service]\ndataset_roots = ["/a", ["/b"]]\n', r"dataset_roots\[1\]: expected str"),
    ("[deal_preparation_service]\ndataset_roots = true\n", "dataset_roots: expected a list"),
    ('[http_hosting_service]\npublic_bundles = "yes"\n', "http_hosting_service.public_bundles: expected bool"),
    ('[http_hosting_service]\ntoken = "a=b"\n', "http_hosting_service.token"),
    ('[http_hosting_service]\ntoken = "a,b"\n', "http_hosting_service.token"),
    ('[http_hosting_service]\ntoken = "a b"\n', "http_hosting_service.token"),
])
def test_wrong_types_name_the_key(text, message):
    with pytest.raises(config_module.ConfigError, match=message):
        parse_toml(text)


def test_a_token_boost_can_carry():
    config = parse_toml('[http_hosting_service]\ntoken = "Ab9._~+/-xyz"\npublic_bundles = true\n')
    assert config.http_hosting_service.token == "Ab9._~+/-xyz" and config.http_hosting_service.public_bundles


def test_to_toml_round_trips():
    data = {"connection": {"api_token": 'q"uote\\', "allowed_hosts": ["a", "é"]},
            "deal_preparation_worker": {"parallelism": 3, "poll_interval": 0.5, "enabled": False}}
    assert tomllib.loads(config_module.to_toml(data)) == data
