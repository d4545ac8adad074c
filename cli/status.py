"""`singularity status`: the suite at a glance, from the preparation service's GET /status."""
from __future__ import annotations

import datetime as dt

import typer

from cli.common import client_for
from cli.output import console, print_fields, print_json, print_table


def when(seconds) -> str | None:
    if not isinstance(seconds, (int, float)):
        return None
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def heartbeat(row: dict) -> str:
    age = row.get("age")
    text = "" if age is None else f"{age:.0f}s ago"
    return text if row.get("alive") else f"{text} (silent)"


def counts_line(counts: dict) -> str:
    return ", ".join(f"{state} {n}" for state, n in sorted(counts.items())) or "none"


def show(status: dict) -> None:
    hosts = [{**h, "modules": ", ".join(h["modules"]), "started": when(h.get("startedAt")), "beat": heartbeat(h),
              "db": (h.get("database") or {}).get("address")} for h in status["hosts"]]
    print_table(hosts, [("host", "host"), ("pid", "pid"), ("modules", "modules"), ("started", "started"),
                        ("beat", "last heartbeat"), ("db", "database")], title="Runs")
    workers = []
    for w in status["workers"]:
        jobs = "; ".join(f"{j['kind']} {j.get('name') or j['preparationId']}"
                         + (f" #{j['index']}" if j.get("index") is not None else "") for j in w["jobs"])
        workers.append({**w, "started": when(w.get("startedAt")), "beat": heartbeat(w), "jobs": jobs or "idle"})
    print_table(workers, [("id", "worker"), ("host", "host"), ("pid", "pid"), ("slots", "slots"),
                          ("started", "started"), ("beat", "last heartbeat"), ("jobs", "current jobs")],
                title="Workers")
    if status.get("truncated"):
        console.print("(more heartbeats than shown)", highlight=False)
    db = status["database"]
    schema = f"{db['schemaVersion']} (this code: {db['codeSchemaVersion']})"
    if db.get("migrating"):
        schema += f", migrating to {db['migrating'].get('version')}"
    print_fields({"engine": f"{db.get('server') or 'unknown'} {db.get('version') or ''}".strip(),
                  "embedded": "yes" if db["embedded"] else "no", "name": db["name"], "schema": schema,
                  **{name: counts_line(c) for name, c in status["counts"].items()}},
                 [("engine", "database"), ("embedded", "embedded"), ("name", "name"), ("schema", "schema version"),
                  ("preparations", "preparations"), ("chunks", "chunks"), ("deals", "deals")])


def register(root: typer.Typer) -> None:
    @root.command("status")
    def status(json_: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
        """Which modules run on which hosts, the workers and their jobs, the database, counts by state."""
        result = client_for("deal_preparation_service").get("/status")
        if json_:
            print_json(result)
        else:
            show(result)
