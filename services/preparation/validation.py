"""Checks on a new preparation request, before anything is written: what the declared shape
(schemas.NEW_PREPARATION) cannot say."""
from __future__ import annotations

import os
from dataclasses import dataclass

from shared import models
from shared.api import InvalidParameter
from shared.car_overhead import smallest_deal_size
from shared.config import format_size
from shared.roots import resolve_inside

# Below this a piece cannot hold a chunk of even one small file with its CAR framing.
MIN_DEAL_SIZE = smallest_deal_size()
MAX_DEAL_SIZE = 64 * 2**30


@dataclass(frozen=True)
class NewPreparation:
    name: str
    path: str
    deal_size: int
    min_size: int
    max_size: int


def new_preparation(body: dict, default_deal_size: int, dataset_roots: list[str]) -> NewPreparation:
    """`body` has the shape of schemas.NEW_PREPARATION, sizes already in bytes."""
    name = body["name"].strip()
    problem = models.preparation_name_problem(name)
    if problem:
        raise InvalidParameter(f"name {problem}", name[:300])
    path = dataset_path(body["path"], dataset_roots)
    deal_size = body["dealSize"]
    deal_size = default_deal_size if deal_size is None else deal_size  # 0 is bad input, not "default"
    if deal_size & (deal_size - 1) or not MIN_DEAL_SIZE <= deal_size <= MAX_DEAL_SIZE:
        raise InvalidParameter(f"dealSize must be a power of two between {format_size(MIN_DEAL_SIZE)} and "
                               f"{format_size(MAX_DEAL_SIZE)}", deal_size)
    min_size, max_size = body["minSize"], body["maxSize"]
    min_size = int(deal_size * 0.6) if min_size is None else min_size
    max_size = int(deal_size * 0.9) if max_size is None else max_size
    limit = deal_size * 127 // 128
    if min_size <= 0:
        raise InvalidParameter("minSize must be positive", min_size)
    if min_size > max_size:
        raise InvalidParameter("minSize must not exceed maxSize", {"minSize": min_size, "maxSize": max_size})
    if max_size >= limit:
        # A CAR adds headers and DAG nodes to the data, and a piece holds 127/128 of its size.
        raise InvalidParameter("maxSize must be below dealSize * 127/128",
                               {"maxSize": max_size, "limit": limit})
    return NewPreparation(name, path, deal_size, min_size, max_size)


def dataset_path(raw: str, roots: list[str]) -> str:
    path = resolve_inside(raw, roots)
    if not os.path.isdir(path):
        raise InvalidParameter("path must be an existing directory", raw)
    try:
        path.encode("utf-8")  # a symlink may lead to a name the database cannot store
    except UnicodeEncodeError:
        raise InvalidParameter("path must be valid UTF-8 (rename the directory)",
                               os.fsencode(path).decode("utf-8", "backslashreplace")) from None
    if not os.access(path, os.R_OK | os.X_OK):
        raise InvalidParameter("path is not readable", raw)
    return path
