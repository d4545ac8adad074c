"""A client generated from the served document (openapi-python-client) creates a preparation and
reads its status, as an integrator would do."""
from __future__ import annotations

import importlib
import json
import sys
import urllib.request

import pytest

from tests.api.conftest import TOKEN

generator = pytest.importorskip("openapi_python_client", reason="openapi-python-client is installed by `make install`")


def generate(url: str, into, package: str):
    from openapi_python_client.config import Config, ConfigFile, MetaType

    with urllib.request.urlopen(url + "/openapi.json", timeout=30) as response:
        (into / "openapi.json").write_bytes(response.read())
    # No post hooks: they would run ruff on the generated code, which the test does not need.
    config = Config.from_sources(ConfigFile(post_hooks=[], package_name_override=package), MetaType.NONE,
                                 into / "openapi.json", "utf-8", True, into / package)
    errors = generator.generate(config=config)
    assert not errors, [(e.header, e.detail) for e in errors]
    sys.path.insert(0, str(into))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(into))


def test_a_generated_client_creates_a_preparation_and_reads_its_status(live, tmp_path):
    client_package = generate(live.urls["preparation"], tmp_path, "singularity_preparation_client")
    api = importlib.import_module("singularity_preparation_client.api.default")
    models = importlib.import_module("singularity_preparation_client.models")
    for name in ("create", "details", "set_state", "list_all"):
        importlib.import_module(f"{api.__name__}.{name}")
    client = client_package.AuthenticatedClient(base_url=live.urls["preparation"], token=TOKEN)

    created = api.create.sync(client=client, body=models.NewPreparation(
        name="generated-client", path=live.seeded["dataset"], deal_size="64 KiB"))
    assert isinstance(created, models.Created), created
    status = api.details.sync(created.id, client=client)
    assert isinstance(status, models.PreparationDetails), status
    assert status.name == "generated-client" and status.deal_size == "64 KiB"
    assert status.scanning_status == "active" and status.generation_requests == []

    refused = api.create.sync(client=client, body=models.NewPreparation(
        name="generated-client", path=live.seeded["dataset"], deal_size="3 KiB"))
    assert isinstance(refused, models.Error) and "power of two" in refused.error
    paused = api.set_state.sync(created.id, client=client, body=models.NewState(state=models.NewStateStateType0.PAUSED))
    assert isinstance(paused, models.PreparationState) and paused.state == "paused"
    names = [summary.name for summary in api.list_all.sync(client=client, limit=1000).preparations]
    assert "generated-client" in names

    anonymous = client_package.Client(base_url=live.urls["preparation"])
    assert api.details.sync_detailed(created.id, client=anonymous).status_code == 401
    json.dumps(status.to_dict())  # what it parsed serializes back
