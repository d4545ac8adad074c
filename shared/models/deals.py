"""Deals: what deal making stores and tracking follows on chain."""
from __future__ import annotations

import time
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
# Every change of a deal's state, one document each (the dashboard's charts of deal states over
# time). A deal's states only move forward, so it leaves each state at most once: the _id
# `<deal>|<from>` makes writing a transition again (after a crash, by a repair) a no-op.
DEAL_TRANSITION = "DealTransition"


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


def transition_id(deal_id: str, from_state: str | None) -> str:
    return f"{deal_id}|{from_state or ''}"


def state_change(from_state: str | None, to_state: str, epoch: int | None = None,
                 at: float | None = None) -> dict:
    """One change of a deal's state. It is stored on the DealState in the update that changes the
    state (`changedFrom`, `changedAt`, `changedEpoch`, with a `historyPending` token), then copied
    to DealTransition, so it is never lost between the two writes (shared/deal_transitions.py)."""
    return {"from": from_state, "to": to_state, "epoch": epoch, "time": time.time() if at is None else at}


def deal_transition(deal: dict, change: dict) -> dict:
    """The DealTransition document of one change of `deal`."""
    return {
        "_id": transition_id(deal["_id"], change["from"]), "deal": deal["_id"], "dealId": deal.get("dealId"),
        "provider": deal.get("provider"), "pieceCid": deal.get("pieceCid"), "client": deal.get("client"),
        "from": change["from"], "to": change["to"], "epoch": change.get("epoch"), "time": change["time"],
    }


INDEXES += [
    (DEAL_TRANSITION, [("time", 1)], {}),
    # The history counts the transitions into and out of each state by time.
    (DEAL_TRANSITION, [("to", 1), ("time", 1)], {}),
    (DEAL_TRANSITION, [("from", 1), ("time", 1)], {}),
    (DEAL_TRANSITION, [("provider", 1), ("time", 1)], {}),
    (DEAL_TRANSITION, [("deal", 1), ("time", 1)], {}),
    # The deals whose recorded changes are not yet in DealTransition (a writer stopped in between).
    (DEAL_STATE, [("historyPending", 1)], {}),
]

INDEXES += [
    (DEAL_STATE, [("state", 1), ("provider", 1)], {}),
    (DEAL_STATE, [("pieceCid", 1)], {}),
    (DEAL_STATE, [("dealId", 1)], {}),
    (DEAL_STATE, [("client", 1), ("provider", 1), ("pieceCid", 1)], {}),
]
