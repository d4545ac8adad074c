"""`singularity provider lookup|show|refresh`: choose storage providers through the ranking service."""
from __future__ import annotations

import json
import re
import urllib.parse
from typing import Optional

import typer

from cli.client import CliError
from cli.common import client_for
from cli.output import console, print_json, print_table

app = typer.Typer(no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON for scripts.")
_PROVIDER_ID = re.compile(r"^[ft]0\d+$")


def api():
    return client_for("ranking_service")


def build_criteria(ids: str | None, expression: str | None):
    """The criteria to send: the expression (a string, or a JSON list when it starts with `[`),
    narrowed to the given provider ids."""
    id_list = [i.strip() for i in (ids or "").split(",") if i.strip()]
    for provider in id_list:
        if not _PROVIDER_ID.match(provider):
            raise CliError(f"--id: not a provider id: {provider!r} (expected e.g. f01234)", 2)
    parsed = None
    if expression is not None and expression.lstrip().startswith("["):
        try:
            parsed = json.loads(expression)
        except ValueError as exc:
            raise CliError(f"--criteria: a list criteria must be JSON: {exc}", 2) from None
        if not isinstance(parsed, list):
            raise CliError("--criteria: a list criteria must be a JSON list", 2)
        return parsed + ([["id", "in", *id_list]] if id_list else [])
    if not id_list:
        return expression
    narrowed = f"provider in ({', '.join(id_list)})"
    return narrowed if expression is None else f"{narrowed} && ({expression})"


@app.command()
def lookup(
    id_: Optional[str] = typer.Option(None, "--id", help="Only these providers: f01000,f01001."),
    criteria: Optional[str] = typer.Option(None, help="e.g. 'filrep.success_rate > 0.5 && deals.acceptance_rate "
                                           ">= 0.9', or a JSON list [[\"filrep.reachable\", true]]."),
    sort: Optional[str] = typer.Option(None, help="Metric to sort by; -metric for the largest first."),
    limit: int = typer.Option(100, help="Providers to show."),
    field: Optional[list[str]] = typer.Option(None, "--field", help="Also show this metric (repeatable)."),
    json_: bool = JSON,
) -> None:
    """Storage providers matching criteria, best first."""
    body = {"limit": limit, "criteria": build_criteria(id_, criteria), "sort": sort, "fields": field or None}
    result = api().post("/ranking/lookup", {k: v for k, v in body.items() if v is not None})
    if json_:
        print_json(result)
        return
    columns = list(dict.fromkeys(key for row in result for key in row))
    if not columns:
        console.print("No provider matches.", highlight=False)
        return
    print_table(result, [(key, "Provider" if key == "id" else key) for key in columns])


@app.command()
def show(provider: str = typer.Argument(..., metavar="ID"), json_: bool = JSON) -> None:
    """Every metric of one provider, with its source, age and the source's last error."""
    result = api().get(f"/provider/{urllib.parse.quote(provider, safe='')}")
    if json_:
        print_json(result)
        return
    rows = [{**m, "age": f"{m['ageSeconds']:.0f} s"} for m in result["metrics"]]
    print_table(rows, [("name", "Metric"), ("value", "Value"), ("source", "Source"), ("age", "Age"),
                       ("sourceError", "Source error")], title=result["id"])
    failing = {name: s for name, s in (result.get("sources") or {}).items() if s and s.get("error")}
    for name, status in sorted(failing.items()):
        console.print(f"source {name} failing: {status['error']}", highlight=False)


@app.command()
def refresh(json_: bool = JSON) -> None:
    """Collect metrics from every source now; prints what changed."""
    client = api()
    client.timeout = 3600.0  # a round over thousands of providers takes a while
    result = client.post("/ranking/refresh", {})
    if json_:
        print_json(result)
        return
    print_table([{"source": name, **s} for name, s in result["sources"].items()],
                [("source", "Source"), ("ok", "OK"), ("providers", "Providers"), ("values", "Values"),
                 ("error", "Error"), ("note", "Note")])
    console.print(f"{result['changedCount']} values changed, {result['providers']} providers tracked, "
                  f"{result['seconds']} s", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="provider", help="Look up storage providers by their metrics (ranking service).")
