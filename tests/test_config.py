import pytest

from shared import config
from shared.config import ConfigError, parse, parse_size


@pytest.mark.parametrize("text,expected", [
    ("32GiB", 32 * 2**30), ("32 GiB", 32 * 2**30), ("1.5TiB", 3 * 2**39), ("20 GB", 20 * 10**9),
    ("123", 123), (4096, 4096), ("256b", 256), ("1 kib", 1024),
])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "-1", "1.5", "3 lbs", "1..5GiB", True, 1.5, None])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_defaults_have_every_section_of_the_design():
    cfg = parse({})
    for section in ("connection", "database", "deal_preparation_service", "deal_preparation_worker",
                    "deal_making_service", "deal_tracking_service", "replication_service", "ranking_service",
                    "http_hosting_service"):
        assert hasattr(cfg, section)
    assert cfg.database.enabled and cfg.database.port == 37000
    assert cfg.deal_preparation_service.bind == "127.0.0.1"


@pytest.mark.parametrize("data,key", [
    ({"nope": {}}, "nope"),
    ({"database": {"prot": 1}}, "database.prot"),
    ({"database": {"port": "37000"}}, "database.port"),
    ({"database": {"enabled": "yes"}}, "database.enabled"),
    ({"deal_preparation_worker": {"parallelism": 0}}, "deal_preparation_worker.parallelism"),
    ({"deal_preparation_service": {"default_deal_size": "lots"}}, "deal_preparation_service.default_deal_size"),
    ({"database": 3}, "database"),
    ({"database": {"port": 70000}}, "database.port"),
])
def test_errors_name_the_key(data, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse(data)


def test_the_shipped_config_toml_is_valid():
    cfg = config.load("config.toml")
    assert cfg.source is not None


def test_lookup_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config.load().source is None
    (tmp_path / "config.toml").write_text("[database]\nport = 1111\n")
    assert config.load().database.port == 1111
    other = tmp_path / "other.toml"
    other.write_text("[database]\nport = 2222\n")
    monkeypatch.setenv("SINGULARITY_CONFIG", str(other))
    assert config.load().database.port == 2222
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[database]\nport = 3333\n")
    assert config.load(explicit).database.port == 3333
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[database\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(tmp_path / "bad.toml")
