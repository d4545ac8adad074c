"""The metric sources, by name. Each declares its metrics; ranking enables those configured."""
from __future__ import annotations

from services.ranking.sources.base import Round, Source, SourceError
from services.ranking.sources.datacapstats import DataCapStats
from services.ranking.sources.deals import Deals
from services.ranking.sources.filrep import Filrep
from services.ranking.sources.ipni import Ipni
from services.ranking.sources.lotus import Lotus
from services.ranking.sources.retrieval import Retrieval

SOURCES: dict[str, type[Source]] = {cls.name: cls for cls in (Lotus, Deals, Retrieval, Filrep, DataCapStats, Ipni)}
# The order a round runs them in: listings first (they decide who is tracked), Lotus next (peer ids
# and HTTP endpoints), then those that need what Lotus found.
PHASES = (("filrep", "datacapstats", "deals"), ("lotus",), ("ipni", "retrieval"))

__all__ = ["Round", "Source", "SourceError", "SOURCES", "PHASES"]
