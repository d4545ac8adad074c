"""Deals: what deal making stores and tracking follows on chain."""
from __future__ import annotations

from enum import StrEnum

INDEXES: list[tuple[str, list[tuple[str, int]], dict]] = []

# --- Deals (deal making and tracking services) ---
DEAL_STATE = "DealState"
# One document per (client, provider, piece) with a deal in flight; its unique _id is what makes
# a retried POST /deal return the existing proposal instead of sending a second one.
DEAL_PENDING = "DealPending"
# The tracker's progress: the last chain height it applied, so a restart never goes backwards.
DEAL_TRACKER = "DealTracker"
DEAL_TRACKER_ID = "tracker"  # its one document (replication reads the tracked height there too)


class DealStatus(StrEnum):
    SENDING = "sending"  # the boost client is running; no answer yet
    PROPOSED = "proposed"
    PUBLISHED = "published"
    ACTIVE = "active"
    EXPIRED = "expired"
    PROPOSAL_EXPIRED = "proposal_expired"
    SLASHED = "slashed"
    REJECTED = "rejected"
    ERROR = "error"


# While a deal is in one of these states, another request for the same piece returns it.
DEAL_PENDING_STATES = (DealStatus.SENDING.value, DealStatus.PROPOSED.value, DealStatus.PUBLISHED.value)
# The states the tracker watches on chain.
DEAL_TRACKED_STATES = (DealStatus.PROPOSED.value, DealStatus.PUBLISHED.value, DealStatus.ACTIVE.value)

INDEXES += [
    (DEAL_STATE, [("state", 1), ("provider", 1)], {}),
    (DEAL_STATE, [("pieceCid", 1)], {}),
    (DEAL_STATE, [("dealId", 1)], {}),
    (DEAL_STATE, [("client", 1), ("provider", 1), ("pieceCid", 1)], {}),
]
