"""`singularity --help` and `singularity commp` start without the heavy libraries that only other
commands need (the start-up time itself is measured by bench/cli.py)."""
import json
import subprocess
import sys

import pytest

HEAVY = ("pymongo", "aiohttp", "pydantic", "rich", "libipld", "shared.ipld.pack", "services")


def imported(args, tmp_path) -> set[str]:
    code = ("import sys, json, runpy; sys.argv = ['singularity', *json.loads(sys.argv[1])]\n"
            "try:\n    runpy.run_module('cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted(sys.modules)), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    return set(json.loads(out.stderr.strip().splitlines()[-1])), out.stdout


@pytest.mark.parametrize("args", [["--help"], ["commp", "FILE"], ["prep", "--help"]])
def test_commands_start_without_heavy_imports(args, tmp_path):
    (tmp_path / "FILE").write_bytes(b"x")
    modules, stdout = imported(args, tmp_path)
    assert "Usage" in stdout or "pieceCid" in stdout
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)
    assert not loaded, loaded


def test_help_still_lists_every_command(tmp_path):
    _, stdout = imported(["--help"], tmp_path)
    for command in ("run", "prep", "pack", "commp", "deal", "provider", "retrieve", "status"):
        assert f" {command} " in stdout or f" {command}\n" in stdout, command


def test_typed_options_are_still_checked(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cli", "prep", "list", "--offset", "abc"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "offset" in result.stderr.lower()
