"""Tar slip (issue 8 item 3): a preparation named `..` gave bundle members `../a.bin`. Names are
now validated on creation; bundle members are relative and normalized whatever the database
holds; `singularity retrieve ..` is one error line."""
from __future__ import annotations

import asyncio
import io
import sys
import tarfile

import pytest

from services.indexing import retrieval
from services.indexing.sources import Source
from services.preparation.routes import routes as prep_routes
from shared import models
from shared.api import create_app
from tests.hosting.test_bundle import fetch, members
from tests.hosting.test_retrieve import FILES


def unsafe(name: str) -> bool:
    parts = name.split("/")
    return name.startswith("/") or ".." in parts or "." in parts or "" in parts


@pytest.mark.parametrize("name", ["..", ".", "a/b", "/", "../x", "bell\x07", "tab\tname", "nl\nname",
                                  "del\x7f", "c1\x85x", "x" * 256, "é" * 128, "   "])
async def test_unsafe_preparation_names_are_refused(db, config, serve_app, tmp_path, name):
    api = await serve_app(create_app(config, db, prep_routes))
    response = await api.post("/preparation", json={"name": name, "path": str(tmp_path), "dealSize": "1MiB"})
    assert response.status == 400, name
    answer = await response.json()
    assert answer["error"].startswith("name ")
    assert await db[models.SCANNING].find_one({}) is None


@pytest.mark.parametrize("name", ["x" * 255, "é" * 127, "photos 2024 (final)", "..hidden", "a..b", "日本語"])
async def test_ordinary_names_are_accepted(db, config, serve_app, tmp_path, name):
    api = await serve_app(create_app(config, db, prep_routes))
    response = await api.post("/preparation", json={"name": name, "path": str(tmp_path), "dealSize": "1MiB"})
    assert response.status == 201, await response.text()


@pytest.mark.parametrize("legacy_name", ["..", ".", "a/../..", "/abs", ""])
async def test_bundle_members_stay_relative_for_an_unsafe_stored_name(db, prepared, hosting, legacy_name):
    # A record written before names were validated (or by hand): the bundle must still be safe.
    await db[models.SCANNING].update_one({"_id": prepared.id}, {"$set": {"name": legacy_name}})
    status, _, body = await fetch(f"{hosting}/bundle/{prepared.id}")
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        names = tar.getnames()
    assert names and not [n for n in names if unsafe(n)], names
    files, _ = members(body)
    assert files == {f"{prepared.id}/{k}": v for k, v in FILES.items()}


async def test_bundle_refuses_a_stored_path_that_climbs_out(db, prepared, hosting):
    await db[models.GENERATION_FILES].update_many({"relativePath": "top.txt"},
                                                  {"$set": {"relativePath": "../../top.txt"}})
    status, _, body = await fetch(f"{hosting}/bundle/demo")
    assert status == 404 and b"cannot be bundled safely" in body


@pytest.mark.parametrize("target", ["..", ".", "../etc", "./x"])
async def test_retrieve_of_dot_dot_is_one_error_line(indexed, hosting, tmp_path, target):
    config = tmp_path / "config.toml"
    config.write_text(f'[connection]\nhttp_hosting_service = "{hosting}"\n[database]\nenabled = false\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "--config", str(config), "retrieve", target, "--output", str(tmp_path / "X"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    lines = err.decode().strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1, err.decode()
    assert "not a dataset name" in lines[0] and "Traceback" not in err.decode()
    assert not (tmp_path / "X").exists() or not any((tmp_path / "X").iterdir())


async def test_unsafe_names_in_an_index_are_a_retrieval_error(indexed, hosting):
    # The retriever trusts no name it is given or reads from an index: a RetrievalError (one line
    # from the CLI), not a ValueError escaping as a traceback.
    _, index_cid = indexed
    retriever = retrieval.Retriever([Source(hosting)])
    for root_name in ("..", ".", "a/b", ""):
        with pytest.raises(retrieval.RetrievalError, match="unsafe name"):
            await asyncio.to_thread(retriever.plan, index_cid, "", root_name)
