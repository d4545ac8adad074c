import json
import os

import typer
from typer.testing import CliRunner

from cli import oneshot
from shared.ipld.commp import CommP

import ipld_testdata as td


def app():
    a = typer.Typer()
    a.callback()(lambda: None)  # keep subcommand names even with one group
    oneshot.register(a)
    return a


def test_pack_json_and_human(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(td.det_bytes("cli", 3 << 20))
    r = CliRunner().invoke(app(), ["pack", str(f), "-o", str(tmp_path / "out"), "--json", "--piece-size", "8MiB"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["pieceSize"] == 8 << 20 and os.path.getsize(got["car"]) == got["carSize"]
    assert got["car"].endswith(got["dataCid"] + ".car")
    r = CliRunner().invoke(app(), ["pack", str(f), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0 and got["dataCid"] in r.stdout and "pieceCid" in r.stdout


def test_commp_file_and_stdin(tmp_path):
    data = td.det_bytes("cli2", 100_000)
    f = tmp_path / "f"
    f.write_bytes(data)
    h = CommP()
    h.update(data)
    want = h.digest()
    r = CliRunner().invoke(app(), ["commp", str(f), "--json"])
    assert json.loads(r.stdout) == {"pieceCid": want.cid, "pieceSize": want.padded_size, "payloadSize": 100_000,
                                    "unpaddedPieceSize": want.padded_size // 128 * 127}
    r = CliRunner().invoke(app(), ["commp", "-"], input=data)
    assert r.exit_code == 0 and want.cid in r.stdout


def test_bad_input_exits_2_with_one_line(tmp_path):
    cases = [["commp", str(tmp_path / "missing")],
             ["commp", "-", "--piece-size", "lots"],
             ["commp", "-", "--piece-size", "1000"],
             ["pack", str(tmp_path / "missing"), "-o", str(tmp_path)]]
    for args in cases:
        r = CliRunner().invoke(app(), args, input=b"x" * 5000)
        assert r.exit_code == 2, (args, r.output)
        assert r.exception is None or isinstance(r.exception, SystemExit)
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ")
    f = tmp_path / "f"
    f.write_bytes(b"y" * 5000)
    r = CliRunner().invoke(app(), ["pack", str(f), "-o", str(tmp_path / "o"), "--piece-size", "4KiB"])
    assert r.exit_code == 2 and "piece" in r.stderr
