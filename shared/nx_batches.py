"""One SQLite transaction per write command in the embedded server (nx-27017), installed by
shared/embedded.py's launcher in the server's own process.

nx-27017 0.8.1 runs on a SQLite connection in autocommit mode and stores the documents of an
`insert` (and the statements of an `update` or `delete`) one at a time, so each document is a
commit of its own: a page of the table and one per index written to the WAL. Measured here,
20,000 GenerationFile-sized documents with their two indexes take 1.3 s one commit each and
0.16 s in one transaction, and the commits are most of what the server spends on an
`insert_many`. The documents are stored the same either way; what changes:

- a command's writes become durable together, when the command is answered, never some of them:
  a server killed during an `insert_many` keeps none of it (the client got no answer and
  retries), where it kept a prefix;
- a document that fails (a duplicate key) still fails alone: SQLite undoes the failed statement,
  not the transaction, so ordered/unordered error reporting is unchanged.

The transaction runs under the server's per-database lock, so no other client's command lands in
it. Commands of client transactions (they carry `autocommit`) are left to the server's own
session handling, as is any command arriving while a transaction is open on the connection.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

WRITE_COMMANDS = ("update", "delete")  # besides insert, which the server routes on its own


def install() -> bool:
    """Wrap the pinned server's write handlers; False (and nothing changed) on another version."""
    from nx_27017 import handler as nx

    cls = nx.NeoSQLiteHandler
    if getattr(cls, "_one_transaction_per_command", False):
        return True
    serialize = getattr(nx, "_serialize", None)
    insert = getattr(cls.handle_insert, "__wrapped__", None)
    command = getattr(cls.handle_command, "__wrapped__", None)
    if serialize is None or insert is None or command is None or not hasattr(nx, "_msg_db_name"):
        return False
    cls.handle_insert = serialize(_in_one_transaction(insert, nx._msg_db_name, lambda body: True))
    cls.handle_command = serialize(_in_one_transaction(
        command, nx._msg_db_name, lambda body: any(k in body for k in WRITE_COMMANDS)))
    cls._one_transaction_per_command = True
    return True


def _body(msg: Any) -> dict | None:
    if not isinstance(msg, dict):
        return None
    for kind, doc in msg.get("sections") or ():
        if kind == "body" and isinstance(doc, dict):
            return doc
    return None


def _in_one_transaction(handle: Callable, db_name: Callable[[Any], str], applies: Callable[[dict], bool]):
    @functools.wraps(handle)
    def run(self, msg, *args, **kwargs):
        body = _body(msg)
        if body is None or "autocommit" in body or not applies(body):
            return handle(self, msg, *args, **kwargs)
        try:
            connection = self.get_database(db_name(msg)).db
        except Exception:  # a bad database name: the handler answers it as it always did
            return handle(self, msg, *args, **kwargs)
        if connection.in_transaction:
            return handle(self, msg, *args, **kwargs)
        connection.execute("BEGIN")
        try:
            request_id, result = handle(self, msg, *args, **kwargs)
            if not connection.in_transaction:
                # SQLite rolled the transaction back itself (a full disk, an I/O error): the counts
                # the handler reported are not what is stored, so the command fails as a whole.
                return request_id, {"ok": 0, "code": 1, "errmsg": "the write was rolled back by the database"}
            connection.execute("COMMIT")
            return request_id, result
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    return run
