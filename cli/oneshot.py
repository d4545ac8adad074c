"""`singularity pack` and `singularity commp`: one-shot CAR and commP of local data, no services."""
from __future__ import annotations

import json
import os
import re
import sys
from typing import Optional

import typer

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1 << 10, "m": 1000**2, "mb": 1000**2, "mib": 1 << 20,
          "g": 1000**3, "gb": 1000**3, "gib": 1 << 30, "t": 1000**4, "tb": 1000**4, "tib": 1 << 40}


def parse_size(text: str) -> int:
    try:
        from shared.config import parse_size as shared_parse
    except ImportError:
        shared_parse = None
    if shared_parse is not None:
        return shared_parse(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (use e.g. 32GiB, 1 MiB or a byte count)")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value != int(value):
        raise ValueError(f"not a whole number of bytes: {text!r}")
    return int(value)


def _die(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _piece_size(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    from shared.ipld.commp import check_piece_size
    try:
        return check_piece_size(parse_size(text))
    except ValueError as exc:
        _die(str(exc))


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
        res = pack_path(path, output, size)
    except (ValueError, SourceChanged) as exc:
        _die(str(exc))
    except OSError as exc:
        _die(f"{exc.filename or path}: {exc.strerror or exc}", 1)
    _show({"dataCid": res.data_cid, "pieceCid": res.piece_cid, "pieceSize": res.piece_size,
           "carSize": res.car_size, "car": res.car_path}, as_json)


def commp(file: str = typer.Argument(..., help="File to hash, or - for standard input."),
          piece_size: Optional[str] = typer.Option(None, "--piece-size", help="Pad the piece to this size."),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Piece commitment of a file or stdin, like stream-commp."""
    from shared.ipld.commp import CommP
    size = _piece_size(piece_size)
    h = CommP()
    try:
        src = sys.stdin.buffer if file == "-" else open(file, "rb", buffering=0)
        with src:
            buf = bytearray(4 << 20)
            while n := src.readinto(buf):
                h.update(memoryview(buf)[:n])
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
