"""Every test talks to a real MongoDB wire-protocol server: one in-memory nx-27017 per session,
a fresh database per test."""
from __future__ import annotations

import socket
import uuid

import pytest

from shared import config as config_module
from shared import database
from shared.embedded import EmbeddedDatabase


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mongo_server():
    server = EmbeddedDatabase(path="memory", port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def db_url(mongo_server) -> str:
    return f"{mongo_server.url}/t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def db(db_url):
    client = database.client(db_url)
    db = client[database.database_name(db_url)]
    await database.ensure_indexes(db)
    yield db
    await client.drop_database(db.name)
    await client.close()


@pytest.fixture
def config(tmp_path, db_url) -> config_module.Config:
    """Defaults with the test database, fast timers and files under tmp_path."""
    return config_module.parse({
        "connection": {"database": db_url},
        "database": {"enabled": False},
        "deal_preparation_service": {"worker_timeout": 2.0, "maintenance_interval": 0.2,
                                     "dataset_roots": [str(tmp_path)]},
        "deal_preparation_worker": {
            "out_dir": str(tmp_path / "cars"), "heartbeat_interval": 0.2, "poll_interval": 0.05,
        },
        "http_hosting_service": {"car_dir": str(tmp_path / "cars")},
    })


@pytest.fixture
async def serve_app():
    """`client = await serve_app(app)`: an aiohttp test client on a real socket, closed afterwards."""
    from aiohttp.test_utils import TestClient, TestServer

    clients = []

    async def start(app):
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
