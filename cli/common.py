"""State shared by all commands: the configuration they were started with and the API clients."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cli.client import ApiClient, CliError

if TYPE_CHECKING:
    from shared import config as config_module


@dataclass
class Options:
    config_path: str | None = None
    _config: config_module.Config | None = None


options = Options()


def get_config() -> config_module.Config:
    from shared import config as config_module
    if options._config is None:
        try:
            options._config = config_module.load(options.config_path)
        except config_module.ConfigError as exc:
            raise CliError(f"configuration: {exc}", exit_code=2) from None
    return options._config


def client_for(url_key: str) -> ApiClient:
    """An API client for a `[connection]` URL, e.g. `deal_preparation_service`."""
    connection = get_config().connection
    return ApiClient(getattr(connection, url_key), token=connection.api_token)


def parse_size_option(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    from shared import config as config_module
    try:
        return config_module.parse_size(value)
    except ValueError as exc:
        raise CliError(f"{name}: {exc}", exit_code=2) from None
