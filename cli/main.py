"""`singularity`: the command line for every service of the suite."""
from __future__ import annotations

import sys
from typing import Optional

import typer

from cli import common, deal, mount, oneshot, prep, provider, retrieve, run, status
from cli.client import CliError
from cli.output import fail

app = typer.Typer(
    name="singularity",
    help="Prepare datasets for Filecoin, make and track deals, host and retrieve the data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts hold paths like NAME[/path], not markup
    add_completion=False,
)


@app.callback()
def _global(config: Optional[str] = typer.Option(None, "--config", "-c", help="Path to config.toml "
            "(default: $SINGULARITY_CONFIG, then ./config.toml).")) -> None:
    common.options.config_path = config


run.register(app)
app.add_typer(prep.app, name="prep", help="Prepare datasets: scan into chunks, then CAR files.")
app.add_typer(prep.app, name="preparation", hidden=True)
for module in (oneshot, deal, provider, retrieve, mount, status):
    module.register(app)


def main() -> None:
    try:
        app()
    except CliError as exc:
        fail(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted")
        sys.exit(130)
