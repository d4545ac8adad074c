"""`singularity retrieve NAME_OR_INDEXCID[/path]`: fetch a file, a folder or a dataset, verified."""
from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlsplit

import typer

from cli.client import CliError
from cli.common import get_config
from cli.output import print_json

# The retrieval client (aiohttp, libipld) and rich are imported by the functions that use them, so
# that every other command starts without them.


def _errors():
    from rich.console import Console
    return Console(stderr=True)


def _hosting() -> sources.Source:
    from services.indexing import sources
    config = get_config()
    # Our own hosting service takes the owner's api_token everywhere, the hosting token for
    # content; provider endpoints (given with --from or discovered) never see either.
    token = config.connection.api_token or config.http_hosting_service.token
    return sources.Source(config.connection.http_hosting_service.rstrip("/"), token, label="hosting")


def _discovery() -> discovery.Discovery:
    from services.indexing import discovery
    config = get_config()
    return discovery.Discovery(discovery.Settings(
        hosting=_hosting(), deal_making_service=config.connection.deal_making_service,
        api_token=config.connection.api_token, full_node_api=config.connection.full_node_api,
        full_node_token=config.connection.full_node_token, ipni_api=config.connection.ipni_api,
        ipfs_api=config.deal_preparation_service.ipfs_api))


def _sources(urls: list[str]) -> list[sources.Source]:
    from services.indexing import sources
    config = get_config()
    own = config.connection.http_hosting_service.rstrip("/")
    token = config.connection.api_token or config.http_hosting_service.token
    out = []
    for url in urls:
        if not _is_http_url(url):
            raise CliError(f"--from {url!r}: expected an http:// or https:// URL", exit_code=2)
        out.append(sources.Source(url.rstrip("/"), token if url.rstrip("/") == own else ""))
    return out


def _terminated(signum, frame) -> None:
    raise CliError("terminated", exit_code=128 + signum)


def _is_http_url(url: str) -> bool:
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError when out of range
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def register(app: typer.Typer) -> None:
    @app.command("retrieve")
    def retrieve(
        target: str = typer.Argument(..., help="NAME[/path]: an index CID, a dataset name, a DNSLink name or "
                                     "/ipns/NAME (also /ipfs/INDEX_CID/path)."),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="Folder to write into."),
        from_: Optional[List[str]] = typer.Option(None, "--from", help="Hosting service or storage-provider HTTP "
                                                  "endpoint; repeat to fall back (default: found per piece: "
                                                  "providers of our deals, IPNI, the hosting service)."),
        tar: Optional[str] = typer.Option(None, "--tar", help="Write a tar bundle to FILE, or '-' for stdout."),
        method: str = typer.Option("auto", "--method", help="piece (Range reads of /piece), car (trustless "
                                   "gateway CARs of /ipfs), block (/ipfs per block) or auto (piece, car, then block)."),
        json_: bool = typer.Option(False, "--json", help="Print a JSON summary."),
    ) -> None:
        """Retrieve a file, folder or whole dataset, verifying every block against its CID."""
        from services.indexing import retrieval
        if (output is None) == (tar is None):
            raise CliError("give exactly one of --output DIR or --tar FILE|-", exit_code=2)
        methods = {"auto": ("piece", "car", "block"), "piece": ("piece",), "car": ("car",),
                   "block": ("block",)}.get(method)
        if methods is None:
            raise CliError("--method must be piece, car, block or auto", exit_code=2)
        # SIGTERM (kill, timeout, a service manager) would end Python without running any cleanup and
        # leave a partial file; as an exception it unwinds through the code that deletes it.
        signal.signal(signal.SIGTERM, _terminated)
        try:
            _check_target(target)
            config = get_config()
            found = None if from_ else _discovery()
            summary = run(target, _sources(from_) if from_ else [], methods, output, tar, quiet=json_ or tar == "-",
                          finder=found, resolver=config.connection.dns_resolver,
                          ipfs_api=config.deal_preparation_service.ipfs_api)
        except retrieval.RetrievalError as exc:
            raise CliError(str(exc)) from None
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if json_:
            print_json(summary)
        elif tar != "-":
            _errors().print(f"{summary['fetched']} file(s) retrieved, {summary['skipped']} already complete -> "
                         f"{summary['output']}", highlight=False, markup=False)


def _check_target(target: str) -> None:
    """The dataset name becomes the output folder's name: never '.' or '..'."""
    from services.indexing import model, retrieval
    head, _ = retrieval.split_target(target)
    try:
        model.check_name(head)
    except ValueError:
        raise CliError(f"{head!r} is not a dataset name or an index CID", exit_code=2) from None


def run(target: str, srcs: list[sources.Source], methods: tuple[str, ...], output: str | None, tar: str | None,
        quiet: bool = True, finder: "discovery.Discovery | None" = None, resolver: str = "",
        ipfs_api: str = "") -> dict:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from services.indexing import names, retrieval
    ipns = target.strip().startswith(("/ipns/", "ipns://"))
    head, path = retrieval.split_target(target.strip().removeprefix("/ipns/").removeprefix("ipns://"))
    retriever = retrieval.Retriever(srcs, methods, finder)
    if ipns:
        index_cid = names.ipns(head, ipfs_api)
    else:
        index_cid = names.resolve(head, retriever.index_cid_of, resolver)
    plan = retriever.plan(index_cid, path, head)
    columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()]
    with Progress(*columns, console=_errors(), disable=quiet or not sys.stderr.isatty(), transient=True) as bar:
        task = bar.add_task(plan.root_name, total=plan.total)

        def progress(n: int) -> None:
            bar.advance(task, n)

        if output is not None:
            destination = Path(output)
            destination.mkdir(parents=True, exist_ok=True)
            result = retrieval.write_tree(retriever, plan, destination, progress)
            written = str(destination / plan.root_name)
        elif tar == "-":
            result = retrieval.write_tar(retriever, plan, sys.stdout.buffer, None, progress)
            written = "-"
        else:
            result, written = _tar_file(retriever, plan, Path(tar), progress)
    return {"indexCid": index_cid, "path": "/" + plan.path, "type": "dir" if plan.is_dir else "file",
            "files": len(plan.files), "fetched": result.fetched, "skipped": result.skipped,
            "bytes": result.bytes, "output": written, **retriever.report()}


def _tar_file(retriever, plan, dest: Path, progress):
    from services.indexing import retrieval
    dest.parent.mkdir(parents=True, exist_ok=True)
    retrieval.remove_stale_partials(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            result = retrieval.write_tar(retriever, plan, out, str(dest.parent), progress)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return result, str(dest)
