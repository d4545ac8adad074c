"""`singularity`: the command line for every service of the suite."""
from __future__ import annotations

import sys
from typing import Optional

import typer

from cli import common, deal, mount, oneshot, prep, provider, replication, retrieve, run, status
from cli.client import CliError
from cli.output import fail



def _plain_strings() -> None:
    """Take str and bool parameters (and absent options) as click gives them. Typer 0.29 checks every value through a
    pydantic TypeAdapter, and importing pydantic to check that a command-line string is a string
    costs about 65 ms of every command's start. Values of other types (ints, lists, paths) still go
    through typer. Without the internals this relies on (another typer version), nothing changes
    but the start-up time."""
    try:
        from typer import _coercion, core
        base, build, param_class = _coercion.RuntimeParam, _coercion.build_runtime_param, core._TyperParameter
        original = param_class.get_runtime_param
    except (ImportError, AttributeError):
        return

    class Plain(base):
        def _coerce_value(self, value, param, ctx):
            if self.annotation in (str, bool) and type(value) is self.annotation:
                return value
            if param.__dict__.get("_typed") is None:
                param._typed = build(param.type_descriptor)
            return param._typed._coerce_value(value, param, ctx)

    def get_runtime_param(self):
        # Absent options (None) and plain strings and flags never reach the adapter.
        descriptor = self.type_descriptor
        if self._runtime_param is None and descriptor.parameter_info.parser is None and not descriptor.is_file \
                and not descriptor.is_choice:
            self._runtime_param = Plain(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)
        return original(self)

    param_class.get_runtime_param = get_runtime_param


_plain_strings()

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
app.add_typer(replication.app, name="rep", help="Replicate datasets and CAR files to storage providers.")
app.add_typer(replication.app, name="replication", hidden=True)
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
