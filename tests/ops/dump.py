"""Loading the schema version 0 dump (tests/fixtures/schema_v0) into a database."""
from __future__ import annotations

import json
from pathlib import Path

from bson import json_util

DUMP = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v0" / "dump.json"


def documents() -> dict[str, list[dict]]:
    raw = json.loads(DUMP.read_text())
    return {name: [json_util.loads(json.dumps(doc)) for doc in docs] for name, docs in raw.items()}


async def load(db) -> dict[str, list[dict]]:
    docs = documents()
    for name, items in docs.items():
        if items:
            await db[name].insert_many([dict(d) for d in items])
    return docs


def canonical(doc: dict) -> str:
    return json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS, sort_keys=True)
