"""`singularity prep ...`: the preparation API from the command line."""
from __future__ import annotations

import os
import time
from typing import Optional

import typer

from cli import history as window_options
from cli.client import CliError
from cli.common import client_for, parse_size_option
from cli.output import console, print_fields, print_json, print_page_note, print_state, print_table

app = typer.Typer(no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON for scripts.")


def api():
    return client_for("deal_preparation_service")


def human(size: Optional[int]) -> str:
    from shared.config import format_size
    return "" if size is None else format_size(size, exact=False)


@app.command()
def start(
    name: str = typer.Option(..., help="Dataset name, unique."),
    path: str = typer.Option(..., help="Directory to prepare."),
    deal_size: Optional[str] = typer.Option(None, "--deal-size", help="Piece size, a power of two (e.g. 32GiB)."),
    min_size: Optional[str] = typer.Option(None, "--min-size", help="Smallest chunk (default 0.6 x deal size)."),
    max_size: Optional[str] = typer.Option(None, "--max-size", help="Largest chunk (default 0.9 x deal size)."),
    wait: bool = typer.Option(False, "--wait", help="Show progress until every chunk is a CAR and the index is built."),
    inline: Optional[bool] = typer.Option(None, "--inline/--no-inline",
                                          help="Write no CAR files: serve pieces from the dataset's own files "
                                               "(default: deal_preparation_service.inline)."),
    json_: bool = JSON,
) -> None:
    """Create a preparation request: scan PATH into chunks, then CAR files and the dataset index."""
    for option, value in (("--deal-size", deal_size), ("--min-size", min_size), ("--max-size", max_size)):
        parse_size_option(option, value)
    body = {"name": name, "path": os.path.abspath(path), "dealSize": deal_size, "minSize": min_size,
            "maxSize": max_size, "inline": inline}
    created = api().post("/preparation", {k: v for k, v in body.items() if v is not None})
    if wait:
        final = wait_until_done(created["id"], quiet=json_)
        if json_:
            print_json(final)
        else:
            show_status(final)
        if final["scanningStatus"] == "error" or final.get("generationFailed"):
            raise CliError("the preparation finished with errors (see above)")
        if not final.get("indexCid") and final.get("indexError"):
            # The chunks are CARs, but without the index nothing can be retrieved by path.
            raise CliError(f"the dataset index could not be built: {final['indexError']}")
        return
    if json_:
        print_json(created)
    else:
        console.print(f"Accepted. dataset-id: {created['id']}", highlight=False)


def wait_until_done(preparation_id: str, quiet: bool, interval: float = 0.5, rescan: bool = False) -> dict:
    client = api()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} chunks"),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console.get(), disable=quiet, transient=True) as progress:
        task = progress.add_task("scanning", total=None, detail="")
        while True:
            status = client.get(f"/preparation/{preparation_id}", limit=1)
            scanning = status["scanningStatus"]
            done = status["generationCompleted"] + status["generationFailed"]
            progress.update(task, description="scanning" if scanning == "active" else "packing",
                            completed=done, total=status["generationTotal"] or None,
                            detail=f"{status['scannedFiles']} files, {human(status['bytesDone'])} of "
                                   f"{human(status['scannedBytes'])} packed, {human(status['rate'])}/s")
            # After a rescan (indexStale), the index of the newest versions replaces the one there was.
            indexed = status.get("indexError") or status["generationFailed"] or (
                status.get("indexCid") and not status.get("indexStale"))
            waiting = rescan and status.get("rescanPending")
            if scanning == "error" or (scanning == "completed" and not waiting and not generation_pending(status)
                                       and indexed):
                return client.get(f"/preparation/{preparation_id}")
            if scanning == "completed" and not generation_pending(status):
                progress.update(task, description="indexing")
            if scanning == "paused":
                raise CliError(f"preparation {preparation_id} is paused")
            time.sleep(interval)


def generation_pending(status: dict) -> bool:
    """False once no chunk can change any more without a user action."""
    return status["generationCompleted"] + status["generationFailed"] < status["generationTotal"]


def set_state(preparation_id: str, state: str, json_: bool) -> None:
    print_state(api().post(f"/preparation/{preparation_id}", {"state": state}), preparation_id, state, json_)


@app.command()
def pause(preparation_id: str = typer.Argument(..., metavar="ID"), json_: bool = JSON) -> None:
    """Stop scanning and CAR generation; resume later."""
    set_state(preparation_id, "paused", json_)


@app.command()
def resume(preparation_id: str = typer.Argument(..., metavar="ID"), json_: bool = JSON) -> None:
    """Continue a paused preparation and retry its failed chunks (those whose files changed are rebuilt)."""
    set_state(preparation_id, "active", json_)


@app.command()
def rescan(preparation_id: str = typer.Argument(..., metavar="ID"),
           wait: bool = typer.Option(False, "--wait", help="Show progress until the new chunks are CARs and the "
                                                           "index of the newest versions is built."),
           json_: bool = JSON) -> None:
    """Walk the dataset again: pack new and changed files into new chunks, record deleted ones."""
    asked = api().post(f"/preparation/{preparation_id}", {"rescan": True})
    if not wait:
        if json_:
            print_json(asked)
        else:
            console.print(f"{preparation_id}: rescan asked ({asked['rescan']})", highlight=False)
        return
    final = wait_until_done(preparation_id, quiet=json_, rescan=True)
    if json_:
        print_json(final)
    else:
        found = final.get("lastRescan") or {}
        console.print(", ".join(f"{found.get(k, 0)} {k}" for k in ("added", "changed", "deleted", "unchanged")),
                      highlight=False)
        show_status(final)
    if final["scanningStatus"] == "error" or final.get("generationFailed"):
        raise CliError("the rescan finished with errors (see above)")


@app.command()
def remove(preparation_id: str = typer.Argument(..., metavar="ID"), json_: bool = JSON) -> None:
    """Delete a preparation and its chunk records (CAR files stay on disk)."""
    set_state(preparation_id, "removed", json_)


@app.command("list")
def list_(offset: int = typer.Option(0, min=0, help="Preparations to skip (oldest first)."),
          limit: Optional[int] = typer.Option(None, min=1, help="Preparations to show (default: the service's page, 20)."),
          json_: bool = JSON) -> None:
    """Preparation requests, oldest first, one page at a time."""
    result = api().get("/preparations", offset=offset, limit=limit)
    if json_:
        print_json(result)
        return
    rows = result["preparations"]
    for row in rows:
        row["chunks"] = f"{row['generationCompleted']}/{row['generationTotal']}"
        row["scanned"] = human(row["scannedBytes"])
    print_table(rows, [("id", "ID"), ("name", "Name"), ("path", "Path"), ("dealSize", "Deal size"),
                       ("state", "State"), ("scanningStatus", "Scanning"), ("scanned", "Scanned"),
                       ("chunks", "Chunks done"), ("generationFailed", "Failed")])
    print_page_note(offset, len(rows), result["total"], "preparations")


@app.command()
def status(preparation_id: str = typer.Argument(..., metavar="ID"),
           offset: int = typer.Option(0, min=0, help="Chunks to skip."),
           limit: Optional[int] = typer.Option(None, min=1, help="Chunks to list (default: the service's page, 20)."),
           json_: bool = JSON) -> None:
    """One preparation: progress, problems and its chunk table."""
    result = api().get(f"/preparation/{preparation_id}", offset=offset, limit=limit)
    if result.get("indexCid"):
        # What the owner publishes so that `singularity retrieve their.domain/path` finds this
        # dataset; it changes with the index CID (any change to the dataset's index).
        from services.indexing.names import dnslink_record
        result["dnslink"] = dnslink_record(result["indexCid"])
    if json_:
        print_json(result)
    else:
        show_status(result)


def show_status(result: dict) -> None:
    result = dict(result, scanned=f"{result['scannedFiles']} files, {human(result['scannedBytes'])}")
    result["chunks"] = (f"{result['generationCompleted']} completed, {result['generationInprogress']} in progress, "
                        f"{result['generationFailed']} failed, {result['generationTotal']} total")
    if result.get("generationUnservable"):
        result["chunks"] += f"; {result['generationUnservable']} unservable (source changed: prep resume rebuilds them)"
    result["bytesDone"] = human(result.get("bytesDone"))
    if result.get("dnslink"):
        result["dnslink"] = f'_dnslink.<your domain> TXT "{result["dnslink"]}"'
    pin = result.get("indexPin") or {}
    result["indexPinStatus"] = pin.get("status") and f"{pin['status']}" + (f" ({pin['error']})" if pin.get("error") else "")
    # A rate only means something while chunks are being built.
    result["rate"] = f"{human(result['rate'])}/s" if result.get("generationInprogress") else None
    fields = [("id", "ID"), ("name", "Name"), ("path", "Path"), ("dealSize", "Deal size"), ("minSize", "Min size"),
              ("maxSize", "Max size"), ("state", "State"), ("scanningStatus", "Scanning"),
              ("scanningError", "Scan error"), ("scanned", "Scanned"), ("chunks", "Chunks"),
              ("bytesDone", "Bytes done"), ("rate", "Rate"),
              ("errorCount", "Unreadable"), ("skippedCount", "Skipped"), ("indexCid", "Index CID"),
              ("indexPinStatus", "IPFS pin"), ("dnslink", "DNSLink"), ("indexError", "Index error")]
    print_fields(result, [(k, label) for k, label in fields if result.get(k) not in (None, "")])
    for problem in result.get("problems", [])[:20]:
        console.print(f"  {problem['kind']}: {problem['path']}: {problem['reason']}", highlight=False, markup=False)
    rows = [dict(g, size=human(g["size"]), carSize=human(g["carSize"])) for g in result["generationRequests"]]
    print_table(rows, [("index", "#"), ("status", "Status"), ("fileCount", "Files"), ("size", "Data"),
                       ("dataCid", "Data CID"), ("pieceCid", "Piece CID"), ("pieceSize", "Piece size"),
                       ("carSize", "CAR size"), ("error", "Error")], title="Chunks")
    print_page_note(result.get("offset", 0), len(rows), result["generationTotal"], "chunks")


@app.command()
def history(
    preparation: Optional[str] = typer.Option(None, "--preparation", help="Only this preparation (its id)."),
    since: Optional[str] = window_options.SINCE,
    until: Optional[str] = window_options.UNTIL,
    bucket: Optional[str] = window_options.BUCKET,
    json_: bool = JSON,
) -> None:
    """Bytes prepared per bucket (UTC): the chunks packed into CARs, by the time each was finished."""
    result = api().get("/preparations/history", preparation=preparation,
                       **window_options.window(since, until, bucket))
    if json_:
        print_json(result)
        return
    rows = [{"time": window_options.when(p["time"], result["bucket"]), "bytes": human(p["bytes"]),
             "carBytes": human(p["carBytes"]), "chunks": p["chunks"], "files": p["files"]} for p in result["points"]]
    print_table(rows, [("time", "Until (UTC)"), ("bytes", "Data"), ("carBytes", "CARs"), ("chunks", "Chunks"),
                       ("files", "Files")])
    total = sum(p["bytes"] for p in result["points"])
    console.print(f"{human(total)} in {sum(p['chunks'] for p in result['points'])} chunks", highlight=False)


@app.command()
def generation(generation_id: str = typer.Argument(..., metavar="ID"),
               offset: int = typer.Option(0, min=0, help="Entries to skip."),
               limit: Optional[int] = typer.Option(None, min=1, help="Entries to list (default: the service's page, 100)."),
               json_: bool = JSON) -> None:
    """One chunk and its file list."""
    result = api().get(f"/generation/{generation_id}", offset=offset, limit=limit)
    if json_:
        print_json(result)
        return
    print_fields(result, [("id", "ID"), ("name", "Dataset"), ("index", "Index"), ("status", "Status"),
                          ("dataCid", "Data CID"), ("pieceCid", "Piece CID"), ("pieceSize", "Piece size")])
    print_table(result["fileList"], [("relativePath", "Path"), ("size", "Size"), ("start", "Start"), ("end", "End"),
                                     ("cid", "CID")])
    print_page_note(offset, len(result["fileList"]), result["total"], "entries")


@app.command()
def files(preparation_id: str = typer.Argument(..., metavar="ID"),
          path: str = typer.Option("", help="Only this file or folder (dataset-relative)."),
          offset: int = typer.Option(0, min=0, help="Entries to skip."),
          limit: Optional[int] = typer.Option(None, min=1, help="Entries to list (default: the service's page, 100)."),
          json_: bool = JSON) -> None:
    """Each file (or range of a split file) with its CID and the piece that holds it, every version."""
    result = api().get(f"/preparation/{preparation_id}/files", path=path or None, offset=offset, limit=limit)
    if json_:
        print_json(result)
        return
    rows = [dict(f, range=f"{f['start']}-{f['end']}" if f["end"] - f["start"] != f["size"] else "",
                 version=f"{f.get('version', 1)}" + (" deleted" if f.get("deleted") else "") +
                 ("" if f.get("latest", True) else " (old)")) for f in result["files"]]
    print_table(rows, [("relativePath", "Path"), ("version", "Version"), ("size", "Size"), ("range", "Range"),
                       ("cid", "CID"), ("chunk", "Chunk"), ("pieceCid", "Piece CID")])
    print_page_note(offset, len(rows), result["total"], "entries")


@app.command()
def materialize(preparation_id: str = typer.Argument(..., metavar="ID"),
                chunk: Optional[int] = typer.Option(None, min=0, help="Only this chunk (its index)."),
                wait: bool = typer.Option(False, "--wait", help="Wait until the workers have written the CARs."),
                json_: bool = JSON) -> None:
    """Write the CAR files of an inline preparation (worker jobs on the host that has out_dir)."""
    body = {} if chunk is None else {"chunk": chunk}
    conversions(api().post(f"/preparation/{preparation_id}/materialize", body), "CARs to write", wait, json_)


@app.command("prune-cars")
def prune_cars(preparation_id: str = typer.Argument(..., metavar="ID"),
               min_active: int = typer.Option(3, "--min-active", min=1, max=1000,
                                              help="Providers with an active deal a chunk needs."),
               wait: bool = typer.Option(False, "--wait", help="Wait until the workers are done."),
               json_: bool = JSON) -> None:
    """Remove the CAR files of chunks active at --min-active providers or more; they stay servable
    inline from the dataset while its files are unchanged."""
    result = api().post(f"/preparation/{preparation_id}/prune-cars", {"minActive": min_active})
    conversions(result, "CAR files to remove", wait, json_)


def conversions(result: dict, what: str, wait: bool, json_: bool, interval: float = 0.5) -> None:
    if wait and result["queued"]:
        while True:
            jobs = []
            offset = 0
            while True:  # every page: a preparation may have more chunks than one page holds
                page = api().get(f"/preparation/{result['id']}/conversions", offset=offset, limit=1000)
                jobs += page["conversions"]
                offset += len(page["conversions"])
                if not page["conversions"] or offset >= page["total"]:
                    break
            if not any(job["status"] == "active" for job in jobs):
                break
            time.sleep(interval)
        failed = [job for job in jobs if job["status"] == "error"]
        result = dict(result, completed=sum(job["status"] == "completed" for job in jobs), failed=len(failed),
                      errors=[f"chunk {job['chunk']}: {job['error']}" for job in failed][:20])
    if json_:
        print_json(result)
    else:
        console.print(f"{result['id']}: {result['chunks']} {what}, {result['queued']} jobs queued", highlight=False)
        for line in result.get("errors", []):
            console.print(f"  {line}", highlight=False, markup=False)
    if result.get("failed"):
        raise CliError(f"{result['failed']} conversions failed (see above)")
