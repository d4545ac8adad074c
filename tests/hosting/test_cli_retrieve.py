"""`singularity retrieve` as a user runs it: a separate process, name resolved by /index/{name}."""
from __future__ import annotations

import asyncio
import io
import json
import sys
import tarfile

from tests.hosting.test_retrieve import FILES
from tests.pipeline import snapshot


async def singularity(config_file, *args: str) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import main; main()", "--config", str(config_file), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out, err


def write_config(tmp_path, hosting: str):
    path = tmp_path / "config.toml"
    path.write_text(f'[connection]\nhttp_hosting_service = "{hosting}"\n[database]\nenabled = false\n')
    return path


async def test_cli_output_json_and_tar_to_stdout(indexed, hosting, tmp_path, source_dir):
    config_file = write_config(tmp_path, hosting)
    code, out, err = await singularity(config_file, "retrieve", "demo/a", "--output", str(tmp_path / "o"), "--json")
    assert code == 0, err.decode()
    summary = json.loads(out)
    assert summary["indexCid"] == indexed[1] and summary["fetched"] == 3
    assert snapshot(tmp_path / "o" / "a") == snapshot(source_dir / "a")
    code, out, err = await singularity(config_file, "retrieve", "demo/d", "--tar", "-")
    assert code == 0, err.decode()
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert tar.extractfile("d/e/f/deep.bin").read() == FILES["d/e/f/deep.bin"]


async def test_cli_failure_is_one_line_and_nonzero(indexed, hosting, tmp_path):
    config_file = write_config(tmp_path, hosting)
    code, _, err = await singularity(config_file, "retrieve", "demo/missing", "--output", str(tmp_path / "o"))
    assert code == 1 and b"no 'missing'" in err
    code, _, err = await singularity(config_file, "retrieve", "demo", "--output", "x", "--tar", "y")
    assert code == 2


async def test_cli_dnslink_name_and_a_name_without_record(indexed, hosting, tmp_path):
    from tests.hosting.fakes.network import DnsServer
    server = DnsServer({"_dnslink.data.example": [f"dnslink=/ipfs/{indexed[1]}"]})
    resolver = await server.start()
    config_file = tmp_path / "dns.toml"
    config_file.write_text(f'[connection]\nhttp_hosting_service = "{hosting}"\ndns_resolver = "{resolver}"\n'
                           f'ipni_api = ""\n[database]\nenabled = false\n')
    try:
        code, out, err = await singularity(config_file, "retrieve", "data.example/c/mid.bin", "--output",
                                           str(tmp_path / "o"), "--json")
        assert code == 0, err.decode()
        assert json.loads(out)["indexCid"] == indexed[1]
        assert (tmp_path / "o" / "mid.bin").read_bytes() == FILES["c/mid.bin"]
        code, out, err = await singularity(config_file, "retrieve", "nothing.example/c", "--output", str(tmp_path / "n"))
        assert code != 0 and out == b""
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and "no DNSLink TXT record at _dnslink.nothing.example" in lines[0], lines
        assert "Traceback" not in err.decode()
    finally:
        server.stop()
