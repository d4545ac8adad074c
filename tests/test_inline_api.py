"""The preparation API of inline preparations: the flag, its config default, and the conversion
requests (materialize, prune-cars) with their bad input refused."""
import pytest

from services.preparation.routes import routes
from shared import config as config_module
from shared import models
from shared.api import create_app
from tests.scan_helpers import make_tree


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "dataset"
    make_tree(root, {"a.txt": 10, "b/c.txt": 20})
    return root


async def start(serve_app, db, config):
    return await serve_app(create_app(config, db, routes))


@pytest.mark.parametrize("default,asked,stored", [(False, None, False), (False, True, True), (True, None, True),
                                                  (True, False, False)])
async def test_inline_flag_and_its_default(serve_app, db, config, dataset, default, asked, stored):
    config.deal_preparation_service.inline = default
    api = await start(serve_app, db, config)
    body = {"name": "ds", "path": str(dataset), "dealSize": "64 KiB", **({} if asked is None else {"inline": asked})}
    response = await api.post("/preparation", json=body)
    assert response.status == 201
    created = await response.json()
    assert (await db[models.SCANNING].find_one({"_id": created["id"]}))["inline"] is stored
    assert (await (await api.get(f"/preparation/{created['id']}")).json())["inline"] is stored


def test_config_key():
    assert config_module.parse({"deal_preparation_service": {"inline": True}}).deal_preparation_service.inline is True
    with pytest.raises(config_module.ConfigError, match="inline"):
        config_module.parse({"deal_preparation_service": {"inline": "yes"}})


@pytest.mark.parametrize("path,body,status,fragment", [
    ("materialize", {"chunk": -1}, 400, "chunk"),
    ("materialize", {"chunk": 2**64}, 400, "chunk"),
    ("materialize", {"chunk": 0}, 404, "no chunk 0"),
    ("materialize", {"chunks": 0}, 400, "chunks"),
    ("prune-cars", {"minActive": 0}, 400, "minActive"),
    ("prune-cars", {"minActive": "3"}, 400, "minActive"),
])
async def test_conversion_requests_refuse_bad_input(serve_app, db, config, dataset, path, body, status, fragment):
    api = await start(serve_app, db, config)
    created = await (await api.post("/preparation", json={"name": "ds", "path": str(dataset), "inline": True})).json()
    response = await api.post(f"/preparation/{created['id']}/{path}", json=body)
    assert response.status == status
    assert fragment in str(await response.json())
    assert await db[models.CONVERSIONS].count_documents({}) == 0


async def test_conversions_of_unknown_preparation_are_404(serve_app, db, config):
    api = await start(serve_app, db, config)
    for method, path in (("post", "/preparation/nope/materialize"), ("post", "/preparation/nope/prune-cars"),
                         ("get", "/preparation/nope/conversions")):
        response = await (api.post(path, json={}) if method == "post" else api.get(path))
        assert response.status == 404


async def test_nothing_to_convert_queues_nothing(serve_app, db, config, dataset):
    api = await start(serve_app, db, config)
    created = await (await api.post("/preparation", json={"name": "ds", "path": str(dataset)})).json()
    for path in ("materialize", "prune-cars"):
        answer = await (await api.post(f"/preparation/{created['id']}/{path}", json={})).json()
        assert answer == {"id": created["id"], "queued": 0, "chunks": 0}
    listed = await (await api.get(f"/preparation/{created['id']}/conversions")).json()
    assert listed["conversions"] == [] and listed["total"] == 0
