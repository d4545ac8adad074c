"""The dataset roots (`deal_preparation_service.dataset_roots`): every file or folder a request
names, a dataset to prepare or a CAR file to replicate, must resolve inside one of them, and the
hosting service checks an imported CAR's path against them again before serving it."""
from __future__ import annotations

import os

from shared.api import InvalidParameter

ROOTS_KEY = "deal_preparation_service.dataset_roots"


def inside_roots(path: str, roots: list[str]) -> bool:
    """Whether the resolved `path` lies in one of the resolved roots (or is one)."""
    for root in roots:
        root = os.path.realpath(os.path.expanduser(root))
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def resolve_inside(raw: str, roots: list[str]) -> str:
    """`raw` resolved (symlinks followed), or the 400 naming the key when it lies outside every root."""
    path = os.path.realpath(os.path.expanduser(raw))
    if not inside_roots(path, roots):
        # Said before anything else about the path, so the API tells nothing about what lies
        # outside the roots (not even whether it exists).
        raise InvalidParameter(f"path is outside every {ROOTS_KEY} directory: add a directory holding it to "
                               f"{ROOTS_KEY} in the preparation service's config",
                               {"path": raw[:300], "key": ROOTS_KEY})
    return path
