"""The embedded database: started on demand, reused when running, stopped by its owner, durable."""
from pymongo import MongoClient

from shared.embedded import EmbeddedDatabase, _answers
from tests.conftest import free_port


def test_start_reuse_stop_and_persist(tmp_path):
    port = free_port()
    owner = EmbeddedDatabase(str(tmp_path / "db"), port=port).start()
    assert owner.process is not None and _answers("127.0.0.1", port)
    with MongoClient(owner.url) as client:
        client.singularity.things.insert_one({"_id": "kept"})
    guest = EmbeddedDatabase(str(tmp_path / "db"), port=port).start()
    assert guest.process is None, "a running server must be reused, not started twice"
    guest.stop()
    assert _answers("127.0.0.1", port), "only the process that started the server stops it"
    owner.stop()
    assert not _answers("127.0.0.1", port)
    with EmbeddedDatabase(str(tmp_path / "db"), port=port) as again:
        with MongoClient(again.url) as client:
            assert client.singularity.things.find_one({"_id": "kept"}) == {"_id": "kept"}
    assert (tmp_path / "db").is_dir()


def test_a_port_taken_by_another_program_is_a_clear_error(tmp_path):
    import socket

    import pytest

    from shared.embedded import EmbeddedDatabaseError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmbeddedDatabaseError, match="taken by a program that is not a MongoDB"):
            EmbeddedDatabase(str(tmp_path / "db"), port=port, start_timeout=10).start()
