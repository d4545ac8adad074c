"""Replication needs deal tracking: started without it, `run` stops with the key to set."""
from __future__ import annotations

import pytest

from cli.client import CliError
from cli.run import select_modules
from shared import config as config_module


def test_replication_without_tracking_is_a_startup_error_naming_the_key():
    config = config_module.parse({"replication_service": {"enabled": True}})
    with pytest.raises(CliError) as caught:
        select_modules(config, [])
    assert "deal_tracking_service.enabled" in str(caught.value) and caught.value.exit_code == 2
    with pytest.raises(CliError):
        select_modules(config, ["replication"])
    assert "replication" in select_modules(config, ["all"])  # tracking starts with it
    tracked = config_module.parse({"replication_service": {"enabled": True}, "deal_tracking_service": {"enabled": True}})
    assert "replication" in select_modules(tracked, [])


@pytest.mark.parametrize("key, value", [("interval", 0), ("backoff_base", -1), ("concurrency", 0),
                                        ("http_url_prefix", "ftp://x"), ("renew_before", -1)])
def test_bad_replication_settings_name_their_key(key, value):
    with pytest.raises(config_module.ConfigError, match=f"replication_service.{key}"):
        config_module.parse({"replication_service": {key: value}})
