"""`singularity replication|rep ...`: the replication API from the command line."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

import typer

from cli.client import ApiClient, CliError
from cli.common import client_for, parse_size_option
from cli.output import console, print_fields, print_json, print_page_note, print_state, print_table

app = typer.Typer(no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON for scripts.")
# A CAR file request hashes the whole file (commP) before it answers.
CAR_TIMEOUT = 6 * 3600.0


def api(timeout: float = 30.0) -> ApiClient:
    client = client_for("replication_service")
    client.timeout = timeout
    return client


def criteria_value(text: Optional[str]):
    """The string form as it is; the list form given as JSON."""
    if text is None:
        return None
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CliError(f"--criteria: the list form must be JSON: {exc}", 2) from None
    return text


@app.command()
def start(
    dataset_id: Optional[str] = typer.Option(None, "--dataset-id", help="Preparation id or name to replicate."),
    car: Optional[str] = typer.Option(None, "--car", help="Or: a CAR file to replicate (inside dataset_roots)."),
    min_replicas: int = typer.Option(..., "--min-replicas", help="Live deals every chunk needs."),
    criteria: str = typer.Option(..., "--criteria", help="Which providers: 'provider in (f01, f02) && ...' or a JSON list."),
    client: str = typer.Option(..., "--client", help="The f1/f3 wallet making the deals."),
    key_path: str = typer.Option(..., "--key-path", help="Its key file, inside deal_making_service.key_dir."),
    max_replicas: Optional[int] = typer.Option(None, "--max-replicas", help="Never more live deals per piece (default: min)."),
    verified: Optional[bool] = typer.Option(None, "--verified/--unverified", help="Verified (DataCap) deals."),
    duration: Optional[int] = typer.Option(None, help="Deal duration in epochs."),
    start_delay: Optional[int] = typer.Option(None, "--start-delay", help="Epochs from proposal to start."),
    price: Optional[str] = typer.Option(None, help="attoFIL per epoch per GiB."),
    keep_unsealed: Optional[bool] = typer.Option(None, "--keep-unsealed/--no-keep-unsealed"),
    announce: Optional[bool] = typer.Option(None, "--announce-to-ipni/--no-announce-to-ipni"),
    url_template: Optional[str] = typer.Option(None, "--url-template", help="Download URL with {dataCid}/{pieceCid}."),
    offline: bool = typer.Option(False, "--offline", help="Offline deals (no URL; import the CSV at the provider)."),
    max_pending: Optional[int] = typer.Option(None, "--max-pending-per-provider"),
    deals_per_day: Optional[int] = typer.Option(None, "--deals-per-day"),
    data_cid: Optional[str] = typer.Option(None, "--data-cid", help="With --car: its root (checked)."),
    piece_cid: Optional[str] = typer.Option(None, "--piece-cid", help="With --car: its piece CID (checked)."),
    piece_size: Optional[str] = typer.Option(None, "--piece-size", help="With --car: its piece size."),
    json_: bool = JSON,
) -> None:
    """Keep every chunk of a dataset (or a CAR file) at --min-replicas providers chosen by --criteria."""
    if (dataset_id is None) == (car is None):
        raise CliError("give either --dataset-id or --car", 2)
    if offline and url_template is not None:
        raise CliError("--offline and --url-template exclude each other", 2)
    parse_size_option("--piece-size", piece_size)
    body = {"datasetId": dataset_id, "path": os.path.abspath(car) if car else None, "minReplicas": min_replicas,
            "maxReplicas": max_replicas, "criteria": criteria_value(criteria), "client": client, "keyPath": key_path,
            "verified": verified, "duration": duration, "startDelay": start_delay, "price": price,
            "keepUnsealed": keep_unsealed, "announceToIpni": announce,
            "urlTemplate": "" if offline else url_template, "maxPendingPerProvider": max_pending,
            "dealsPerDay": deals_per_day, "dataCid": data_cid, "pieceCid": piece_cid, "pieceSize": piece_size}
    body = {k: v for k, v in body.items() if v is not None}
    if car:
        with console.status("reading the CAR file and computing its piece commitment", spinner="dots") if not json_ \
                else _Quiet():
            created = api(CAR_TIMEOUT).post("/replication", body)
    else:
        created = api().post("/replication", body)
    if json_:
        print_json(created)
        return
    console.print(f"Accepted. replication request-id: {created['id']}", highlight=False)
    for key, label in (("dataCid", "data CID"), ("pieceCid", "piece CID"), ("pieceSize", "piece size")):
        if key in created:
            console.print(f"  {label}: {created[key]}", highlight=False)


class _Quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@app.command()
def update(request_id: str = typer.Argument(..., metavar="ID"),
           min_replicas: Optional[int] = typer.Option(None, "--min-replicas"),
           max_replicas: Optional[int] = typer.Option(None, "--max-replicas"),
           criteria: Optional[str] = typer.Option(None, "--criteria"),
           client: Optional[str] = typer.Option(None, "--client"),
           key_path: Optional[str] = typer.Option(None, "--key-path"),
           json_: bool = JSON) -> None:
    """Change a request's replicas, criteria or wallet."""
    body = {"minReplicas": min_replicas, "maxReplicas": max_replicas, "criteria": criteria_value(criteria),
            "client": client, "keyPath": key_path}
    body = {k: v for k, v in body.items() if v is not None}
    if not body:
        raise CliError("nothing to change: give --min-replicas, --max-replicas, --criteria, --client or --key-path", 2)
    result = api().post(f"/replication/{request_id}", body)
    if json_:
        print_json(result)
    else:
        show(result)


def set_state(request_id: str, state: str, json_: bool) -> None:
    print_state(api().post(f"/replication/{request_id}", {"state": state}), request_id, state, json_)


@app.command()
def pause(request_id: str = typer.Argument(..., metavar="ID"), json_: bool = JSON) -> None:
    """Stop making new proposals (within seconds)."""
    set_state(request_id, "paused", json_)


@app.command()
def resume(request_id: str = typer.Argument(..., metavar="ID"), json_: bool = JSON) -> None:
    """Resume a paused request."""
    set_state(request_id, "active", json_)


@app.command()
def remove(request_id: str = typer.Argument(..., metavar="ID"), json_: bool = JSON) -> None:
    """Delete the request (its deals stay recorded)."""
    set_state(request_id, "removed", json_)


COLUMNS = [("id", "ID"), ("datasetId", "Dataset"), ("minReplicas", "Min"), ("maxReplicas", "Max"),
           ("state", "State"), ("status", "Status"), ("replicationFactor", "Factor"),
           ("replicationCompleted", "Completed"), ("replicationInProgress", "In progress"),
           ("replicationTotal", "Chunks"), ("error", "Error")]


@app.command("list")
def list_(offset: int = typer.Option(0, min=0), limit: Optional[int] = typer.Option(None, min=1),
          json_: bool = JSON) -> None:
    """Replication requests, oldest first, one page at a time."""
    result = api().get("/replications", offset=offset, limit=limit)
    if json_:
        print_json(result)
        return
    print_table(result["replications"], COLUMNS)
    print_page_note(offset, len(result["replications"]), result["total"], "requests")


def show(result: dict) -> None:
    result = dict(result, criteria=json.dumps(result["criteria"]) if isinstance(result.get("criteria"), list)
                  else result.get("criteria"))
    print_fields(result, [(k, label) for k, label in [*COLUMNS, ("client", "Client"), ("criteria", "Criteria"),
                                                       ("urlTemplate", "URL template"), ("verified", "Verified")]
                          if result.get(k) not in (None, "")])


@app.command()
def status(request_id: str = typer.Argument(..., metavar="ID"),
           offset: int = typer.Option(0, min=0, help="Chunks to skip."),
           limit: Optional[int] = typer.Option(None, min=1, help="Chunks to list (default 20)."),
           wait: bool = typer.Option(False, "--wait", help="Show progress until the request is completed."),
           json_: bool = JSON) -> None:
    """One request: its replication factor and a page of chunks with their deals."""
    client = api()
    result = client.get(f"/replication/{request_id}", offset=offset, limit=limit)
    if wait:
        result = wait_until_completed(client, request_id, json_)
    if json_:
        print_json(result)
        return
    show(result)
    rows = []
    for chunk in result["replicationDetails"]:
        states: dict[str, int] = {}
        for deal in chunk["deals"]:
            states[deal["state"]] = states.get(deal["state"], 0) + 1
        rows.append({"index": chunk["index"], "pieceCid": chunk["pieceCid"],
                     "providers": ", ".join(sorted({d["provider"] for d in chunk["deals"] if d["state"] in
                                                    ("sending", "proposed", "published", "active")})),
                     "deals": ", ".join(f"{n} {s}" for s, n in sorted(states.items()))})
    print_table(rows, [("index", "#"), ("pieceCid", "Piece CID"), ("providers", "Live at"), ("deals", "Deals")],
                title="Chunks")
    print_page_note(result.get("offset", 0), len(rows), result["total"], "chunks")


def wait_until_completed(client: ApiClient, request_id: str, quiet: bool, interval: float = 1.0) -> dict:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    columns = [TextColumn("replicating"), BarColumn(), TextColumn("{task.completed}/{task.total} chunks"),
               TextColumn("factor {task.fields[factor]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console.get(), disable=quiet, transient=True) as progress:
        task = progress.add_task("", total=None, factor="0")
        while True:
            result = client.get(f"/replication/{request_id}")
            progress.update(task, completed=result["replicationCompleted"], total=result["replicationTotal"] or None,
                            factor=result["replicationFactor"])
            if result["status"] == "completed":
                return result
            if result["state"] == "paused":
                raise CliError(f"replication {request_id} is paused")
            time.sleep(interval)


@app.command("csv")
def csv_(request_id: str = typer.Argument(..., metavar="ID"),
         provider: Optional[str] = typer.Option(None, help="Only this provider's deals."),
         output: str = typer.Option(..., "-o", "--output", help="Directory to write <ID>[-<provider>].csv in."),
         json_: bool = JSON) -> None:
    """The offline-import list of the request's proposed deals (Singularity v1's CSV)."""
    text = api(300.0).text(f"/replication/{request_id}/csv", provider=provider)
    directory = Path(output)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / (f"{request_id}-{provider}.csv" if provider else f"{request_id}.csv")
        path.write_text(text)
    except OSError as exc:
        raise CliError(f"cannot write the CSV in {output}: {exc.strerror or exc}") from None
    rows = max(len(text.strip().splitlines()) - 1, 0)
    if json_:
        print_json({"path": str(path), "deals": rows})
    else:
        console.print(f"{rows} deals written to {path}", highlight=False)
