"""One SQLite transaction per write command in the embedded server (shared/nx_batches.py)."""
import sqlite3

import pytest
from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from shared import nx_batches


def test_it_installs_on_the_pinned_server():
    # A new nx-27017 that moved its handlers fails here rather than silently going slow.
    assert nx_batches.install() is True
    assert nx_batches.install() is True  # once only
    from nx_27017 import handler
    assert handler.NeoSQLiteHandler._one_transaction_per_command


class FakeHandler:
    """What the wrapper needs of nx-27017's handler: databases with a sqlite3 connection."""

    def __init__(self, work):
        self.connection = sqlite3.connect(":memory:", isolation_level=None)
        self.connection.execute("CREATE TABLE t (x INTEGER UNIQUE)")
        self.work = work
        self.seen_in_transaction = []

    def get_database(self, name):
        return type("Db", (), {"db": self.connection})()

    def handle(self, msg):
        self.seen_in_transaction.append(self.connection.in_transaction)
        return self.work(self.connection)


def run(work, body, fake=None):
    fake = fake or FakeHandler(work)
    wrapped = nx_batches._in_one_transaction(FakeHandler.handle, lambda msg: "db",
                                             lambda b: "insert" in b or "update" in b)
    msg = {"sections": [("body", body)]}
    return fake, wrapped(fake, msg)


def rows(fake):
    return [x for (x,) in fake.connection.execute("SELECT x FROM t ORDER BY x")]


def test_a_command_runs_in_one_transaction_and_a_failed_statement_fails_alone():
    def work(c):
        errors = []
        for x in (1, 2, 2, 3):  # the second 2 breaks the unique constraint: that statement only
            try:
                c.execute("INSERT INTO t VALUES (?)", (x,))
            except sqlite3.IntegrityError:
                errors.append(x)
        return 7, {"ok": 1, "errors": errors}

    fake, answer = run(work, {"insert": "t"})
    assert fake.seen_in_transaction == [True] and not fake.connection.in_transaction
    assert answer == (7, {"ok": 1, "errors": [2]}) and rows(fake) == [1, 2, 3]


def test_an_exception_rolls_the_whole_command_back():
    def work(c):
        c.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("handler bug")

    fake = FakeHandler(work)
    with pytest.raises(RuntimeError):
        run(work, {"insert": "t"}, fake)
    assert not fake.connection.in_transaction and rows(fake) == []


def test_a_transaction_sqlite_rolled_back_itself_fails_the_command():
    def work(c):
        c.execute("INSERT INTO t VALUES (1)")
        c.execute("ROLLBACK")  # as SQLite does on a full disk or an I/O error
        return 3, {"ok": 1, "n": 1}

    fake, answer = run(work, {"insert": "t"})
    assert answer[0] == 3 and answer[1]["ok"] == 0 and rows(fake) == []


@pytest.mark.parametrize("body", [{"find": "t"}, {"insert": "t", "autocommit": False, "txnNumber": 1}])
def test_reads_and_client_transactions_are_left_alone(body):
    fake, _ = run(lambda c: (1, {"ok": 1}), body)
    assert fake.seen_in_transaction == [False]


async def test_bulk_writes_report_the_same_errors_as_before(db):
    coll = db["batches"]
    await coll.insert_one({"_id": 2})
    with pytest.raises(BulkWriteError) as info:
        await coll.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3}], ordered=False)
    assert info.value.details["nInserted"] == 2 and [e["index"] for e in info.value.details["writeErrors"]] == [1]
    with pytest.raises(BulkWriteError) as info:
        await coll.insert_many([{"_id": 4}, {"_id": 2}, {"_id": 5}], ordered=True)
    assert info.value.details["nInserted"] == 1
    assert sorted(d["_id"] for d in await coll.find().to_list(None)) == [1, 2, 3, 4]
    result = await coll.bulk_write([UpdateOne({"_id": i}, {"$set": {"v": i}}) for i in (1, 3, 9)] + [InsertOne({"_id": 6})],
                                   ordered=False)
    assert (result.matched_count, result.inserted_count) == (2, 1)
    assert {d["_id"]: d.get("v") for d in await coll.find().to_list(None)} == {1: 1, 2: None, 3: 3, 4: None, 6: None}
