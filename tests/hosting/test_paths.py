"""Nothing outside car_dir can be named: traversal, absolute and percent-encoded paths are 404."""
from __future__ import annotations

import os

import pytest

from shared import models
from tests.hosting.test_http_ranges import curl

SECRET = b"TOP-SECRET-OUTSIDE-CAR-DIR"


@pytest.fixture
def outside(tmp_path, config):
    secret = tmp_path / "secret.car"
    secret.write_bytes(SECRET)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd.car").write_bytes(SECRET)
    return secret


ATTACKS = [
    "/../secret.car", "/%2e%2e/secret.car", "/%2E%2E%2Fsecret.car", "/..%2fsecret.car",
    "/piece/../secret.car", "/piece/..%2F..%2Fsecret", "/piece/%2Ftmp%2Fsecret",
    "/ipfs/..%2Fsecret.car?format=raw", "/ipfs/%2Fetc%2Fpasswd?format=raw",
    "/bundle/demo/../../secret.car", "/bundle/demo/%2e%2e/%2e%2e/secret.car", "/bundle/demo/..%2F..%2Fsecret.car",
    "/bundle/demo//etc/passwd", "/bundle/demo/%2Fetc%2Fpasswd", "/bundle/%2e%2e/secret.car",
    "//etc/passwd.car", "/%2Fetc%2Fpasswd.car", "/cars/../secret.car", "/bafy..%2Fsecret.car",
]


@pytest.mark.parametrize("attack", ATTACKS)
async def test_traversal_is_404(indexed, hosting, outside, attack):
    status, _, body = await curl(f"{hosting}{attack}")
    assert status == 404, attack
    assert SECRET not in body


async def test_symlink_and_database_paths_cannot_escape(indexed, hosting, outside, config, db):
    car_dir = config.http_hosting_service.car_dir
    name = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    os.symlink(outside, os.path.join(car_dir, f"{name}.car"))
    status, _, body = await curl(f"{hosting}/{name}.car")
    assert status == 404 and SECRET not in body
    # A database document pointing a piece at a path outside car_dir is not followed either.
    prepared, _ = indexed
    await db[models.GENERATION].update_one({"_id": prepared.chunks[0]["_id"]},
                                           {"$set": {"dataCid": "../secret", "carPath": str(outside)}})
    status, _, body = await curl(f"{hosting}/piece/{prepared.chunks[0]['pieceCid']}")
    assert status == 404 and SECRET not in body
