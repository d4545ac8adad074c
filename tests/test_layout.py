"""The layout rule of the developers' guide: a service module imports `shared/`, the indexing
library and its own package, never another service (it calls that one over its HTTP API)."""
from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parent.parent / "services"
LIBRARIES = {"indexing"}  # services/indexing has no API of its own: every module may use it


def imported_services(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else \
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "services":
                if len(parts) > 1:
                    found.add(parts[1])
                elif isinstance(node, ast.ImportFrom):  # from services import hosting
                    found.update(alias.name for alias in node.names)
    return found


def test_no_service_imports_another():
    crossings = {}
    for path in sorted(SERVICES.glob("*/**/*.py")):
        own = path.relative_to(SERVICES).parts[0]
        others = imported_services(path) - {own} - LIBRARIES
        if others:
            crossings[str(path.relative_to(SERVICES.parent))] = sorted(others)
    assert crossings == {}


def test_the_check_sees_a_crossing(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from services.hosting.paths import car_path\nimport services.ranking.table\n"
                      "from services import dealmaking\n")
    assert imported_services(module) == {"hosting", "ranking", "dealmaking"}
