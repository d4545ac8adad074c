"""`singularity pack` and `singularity commp`: one-shot CAR and commP of local data, no services."""
from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from typing import Iterator, Optional

import typer


def _die(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _piece_size(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    from shared.config import parse_size
    from shared.ipld.commp import check_piece_size
    try:
        return check_piece_size(parse_size(text))
    except ValueError as exc:
        _die(str(exc))


@contextlib.contextmanager
def _progress(label: str, total: int | None, quiet: bool) -> Iterator:
    """A bar on stderr while bytes go through, for people at a terminal; `advance(n)` is safe to
    call from the packing thread."""
    if quiet or not sys.stderr.isatty():  # no bar: rich is not even imported
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
    console = Console(stderr=True)
    with Progress(TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console,
                  disable=quiet or not console.is_terminal, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _source_size(path: str) -> int | None:
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for directory, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


def _show(fields: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(fields))
    else:
        width = max(len(k) for k in fields)
        for k, v in fields.items():
            typer.echo(f"{k + ':':<{width + 1}} {v}")


def pack(path: str = typer.Argument(..., help="File or directory to pack."),
         output: str = typer.Option(..., "-o", "--output", help="Directory for <dataCid>.car."),
         piece_size: Optional[str] = typer.Option(None, "--piece-size", help="Pad the piece to this size, e.g. 32GiB."),
         as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Pack PATH into a CARv1 and compute its commP in the same pass."""
    from shared.ipld.pack import SourceChanged, pack_path
    size = _piece_size(piece_size)
    if not os.path.lexists(path):
        _die(f"{path}: no such file or directory")
    try:
        os.makedirs(output, exist_ok=True)
        # The extra walk that sizes a directory is only worth it when a bar is shown.
        shown = not as_json and sys.stderr.isatty()
        with _progress("packing", _source_size(path) if shown else None, as_json) as advance:
            res = pack_path(path, output, size, progress=advance)
    except (ValueError, SourceChanged) as exc:
        _die(str(exc))
    except OSError as exc:
        _die(f"{exc.filename or path}: {exc.strerror or exc}", 1)
    _show({"dataCid": res.data_cid, "pieceCid": res.piece_cid, "pieceSize": res.piece_size,
           "carSize": res.car_size, "car": res.car_path}, as_json)


def commp(file: str = typer.Argument(..., help="File to hash, or - for standard input."),
          piece_size: Optional[str] = typer.Option(None, "--piece-size", help="Pad the piece to this size."),
          threads: Optional[int] = typer.Option(None, "--threads", min=1, help="Threads hashing a file at once "
                                                "(default: one per core; standard input takes one)."),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Piece commitment of a file or stdin, like stream-commp."""
    from shared.ipld.commp import CommP
    size = _piece_size(piece_size)
    try:
        src = sys.stdin.buffer if file == "-" else open(file, "rb", buffering=0)
        with src:
            info = None if file == "-" else os.fstat(src.fileno())
            if info is not None and stat.S_ISREG(info.st_mode):
                from shared.ipld.commp_threads import commp_of_file
                with _progress("hashing", info.st_size, as_json) as advance:
                    piece = commp_of_file(src.fileno(), info.st_size, size, threads, advance)
            else:
                h = CommP()
                with _progress("hashing", None, as_json) as advance:
                    buf = bytearray(4 << 20)
                    while n := src.readinto(buf):
                        h.update(memoryview(buf)[:n])
                        advance(n)
                piece = h.digest(piece_size=size)
    except ValueError as exc:
        _die(str(exc))
    except OSError as exc:
        _die(f"{file}: {exc.strerror or exc}")
    _show({"pieceCid": piece.cid, "pieceSize": piece.padded_size, "payloadSize": piece.payload_size,
           "unpaddedPieceSize": piece.padded_size // 128 * 127}, as_json)


def register(app: typer.Typer) -> None:
    app.command("pack")(pack)
    app.command("commp")(commp)
