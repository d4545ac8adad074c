"""The data model: collection names, states and the shape of every stored document.

Lists that grow with a dataset (the files of a chunk, the blocks of a CAR) live in their own
collections, one document per item, because a MongoDB document is capped at 16 MiB.
"""
from __future__ import annotations

# One import path for the whole model (`from shared import models`); each area keeps its own file.
from shared.models import deals as _deals, preparation as _preparation, ranking as _ranking, replication as _replication
from shared.models.deals import *  # noqa: F401,F403
from shared.models.preparation import *  # noqa: F401,F403
from shared.models.ranking import *  # noqa: F401,F403
from shared.models.replication import *  # noqa: F401,F403

# Every index the suite needs, created at start (shared/database.py ensure_indexes).
INDEXES = _preparation.INDEXES + _deals.INDEXES + _ranking.INDEXES + _replication.INDEXES
