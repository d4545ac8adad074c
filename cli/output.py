"""How commands print: a table or key/value lines for people, one JSON document with --json."""
from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence



class _Console:
    """rich's Console, made at first use: importing rich costs every command start-up, even those
    that print nothing through it."""

    def __init__(self) -> None:
        self._console = None

    def get(self):
        if self._console is None:
            from rich.console import Console
            # Piped output is read by people in logs and by grep: do not fold it at 80 columns.
            self._console = Console(width=None if sys.stdout.isatty() else 240)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.get(), name)


console = _Console()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_state(answer: dict, item_id: str, state: str, as_json: bool) -> None:
    """What a pause, resume or remove answered: all of it with --json, else `ID: state`."""
    if as_json:
        print_json(answer)
    else:
        console.print(f"{item_id}: {state}", highlight=False)


def print_table(rows: Iterable[dict], columns: Sequence[tuple[str, str]], title: str | None = None) -> None:
    """columns: (key in each row, header)."""
    from rich.table import Table
    table = Table(title=title, header_style="bold")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(key) is None else str(row.get(key)) for key, _ in columns))
    console.print(table)


def print_fields(data: dict, keys: Sequence[tuple[str, str]]) -> None:
    width = max(len(label) for _, label in keys)
    for key, label in keys:
        value = data.get(key)
        console.print(f"{label:<{width}}  {'' if value is None else value}", highlight=False)


def fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def print_page_note(offset: int, shown: int, total: int, what: str) -> None:
    """Under a table that is one page of a longer list: which part of it was shown."""
    if shown < total:
        first = f"{offset + 1}-{offset + shown}" if shown else "none"
        console.print(f"{what} {first} of {total} (use --offset/--limit)", highlight=False)
