"""Every command's --help renders (help texts hold brackets and paths that must not be markup)."""
import pytest
from typer.testing import CliRunner

from cli.main import app

COMMANDS = [[], ["run"], ["prep"], ["prep", "start"], ["prep", "status"], ["prep", "list"], ["prep", "generation"], ["prep", "files"],
            ["prep", "materialize"], ["prep", "prune-cars"],
            ["pack"], ["commp"], ["retrieve"], ["deal"], ["deal", "send"], ["deal", "list"], ["deal", "show"],
            ["provider"], ["provider", "lookup"], ["provider", "show"], ["provider", "refresh"], ["status"], ["mount"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "singularity")
def test_help(command):
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
