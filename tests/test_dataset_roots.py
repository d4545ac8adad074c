"""[deal_preparation_service] dataset_roots: only directories inside them can be prepared, and so
exported by the hosting service (issue 8 item 1: `"path": "/etc"` was accepted, then
/bundle/etc/shadow served)."""
from __future__ import annotations

import importlib.util
import os
import tomllib
from pathlib import Path

import pytest

from services.preparation.routes import routes
from shared import config as config_module
from shared import models
from shared.api import create_app

KEY = "deal_preparation_service.dataset_roots"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def root(tmp_path) -> Path:
    path = tmp_path / "datasets"
    (path / "photos").mkdir(parents=True)
    (path / "photos" / "a.jpg").write_bytes(b"jpeg")
    return path


@pytest.fixture
async def api(db, config, root, serve_app):
    config.deal_preparation_service.dataset_roots = [str(root)]
    return await serve_app(create_app(config, db, routes))


async def post(api, path, name="x"):
    response = await api.post("/preparation", json={"name": name, "path": str(path), "dealSize": "32MiB"})
    return response.status, await response.json()


async def test_etc_is_refused_and_the_error_names_the_key(api, db):
    status, answer = await post(api, "/etc", "etc")
    assert status == 400 and KEY in answer["error"]
    assert answer["detail"]["key"] == KEY
    assert await db[models.SCANNING].find_one({}) is None


async def test_paths_that_resolve_outside_are_refused(api, db, root, tmp_path):
    outside = tmp_path / "private"
    outside.mkdir()
    (root / "link").symlink_to(outside)  # inside by name, outside once resolved
    sibling = tmp_path / "datasets-evil"  # shares the root's name as a string prefix
    sibling.mkdir()
    for path in (outside, root / "link", f"{root}/../private", f"{root}/photos/../../private", sibling, "/",
                 tmp_path, "~"):
        status, answer = await post(api, path)
        assert status == 400 and KEY in answer["error"], path
    # Nothing about a refused path is revealed, not even whether it exists.
    _, missing = await post(api, tmp_path / "no-such-dir")
    _, existing = await post(api, outside)
    assert missing["error"] == existing["error"]
    assert await db[models.SCANNING].find_one({}) is None


async def test_the_root_and_folders_below_it_are_accepted(api, db, root):
    status, answer = await post(api, root, "all")
    assert status == 201, answer
    status, answer = await post(api, f"{root}/photos/", "photos")
    assert status == 201, answer
    paths = sorted([doc["path"] async for doc in db[models.SCANNING].find({})])
    assert paths == [str(root), str(root / "photos")]


async def test_relative_roots_are_from_the_working_directory(db, config, root, serve_app, monkeypatch):
    monkeypatch.chdir(root.parent)
    config.deal_preparation_service.dataset_roots = ["./datasets/photos"]
    api = await serve_app(create_app(config, db, routes))
    assert (await post(api, root / "photos"))[0] == 201
    assert (await post(api, root, "up"))[0] == 400


async def test_no_roots_accept_nothing(db, config, root, serve_app):
    config.deal_preparation_service.dataset_roots = []
    api = await serve_app(create_app(config, db, routes))
    status, answer = await post(api, root)
    assert status == 400 and KEY in answer["error"]


def test_roots_are_a_list_of_strings_in_the_config():
    parsed = config_module.parse({"deal_preparation_service": {"dataset_roots": ["/srv/a", "./b"]}})
    assert parsed.deal_preparation_service.dataset_roots == ["/srv/a", "./b"]
    assert config_module.parse({}).deal_preparation_service.dataset_roots == []
    with pytest.raises(config_module.ConfigError, match=r"deal_preparation_service\.dataset_roots"):
        config_module.parse({"deal_preparation_service": {"dataset_roots": "/srv/a"}})
    with pytest.raises(config_module.ConfigError, match=r"dataset_roots\[1\]: expected str"):
        config_module.parse({"deal_preparation_service": {"dataset_roots": ["/srv/a", 7]}})


def test_shipped_config_allows_the_sample_only(monkeypatch):
    monkeypatch.chdir(REPO)
    shipped = config_module.load(REPO / "config.toml")
    roots = [os.path.realpath(r) for r in shipped.deal_preparation_service.dataset_roots]
    assert roots == [str(REPO / "sample")]


def test_make_run_adds_its_dataset_for_that_run(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("run_sample", REPO / "scripts" / "run_sample.py")
    run_sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_sample)
    monkeypatch.delenv("SINGULARITY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.toml").write_text((REPO / "config.toml").read_text())
    monkeypatch.setattr(run_sample, "REPO", tmp_path)
    (tmp_path / ".singularity").mkdir()
    written = run_sample.run_config(Path("/srv/my-data"))
    data = tomllib.loads(written.read_text())
    assert data["deal_preparation_service"]["dataset_roots"] == ["./sample", "/srv/my-data"]
    # Everything else is the user's config, unchanged, and still valid.
    original = tomllib.loads((tmp_path / "config.toml").read_text())
    original["deal_preparation_service"]["dataset_roots"].append("/srv/my-data")
    assert data == original
    config_module.load(written)
    assert tomllib.loads((tmp_path / "config.toml").read_text())["deal_preparation_service"]["dataset_roots"] == \
        ["./sample"]
