"""What counts as a replica of a piece: pure rules over DealState documents.

A replica is any live deal for the piece, from any client or request: sending (while its boost run
can still be going), proposed, published or active, and not ending within `renew_before` (such a
deal is renewed in time rather than counted). A deal that ended slashed, expired or
proposal_expired no longer counts; the provider of a slashed or never-published deal is not asked
for that piece again.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.models import DealStatus

LIVE_STATES = (DealStatus.SENDING.value, DealStatus.PROPOSED.value, DealStatus.PUBLISHED.value,
               DealStatus.ACTIVE.value)
# A provider that lost or never published the piece gets another provider's turn.
FAILED_ON_CHAIN = (DealStatus.SLASHED.value, DealStatus.PROPOSAL_EXPIRED.value)
# The fields of a DealState the rules read (the projection of the round's one deal query).
FIELDS = {"pieceCid": 1, "provider": 1, "client": 1, "state": 1, "endEpoch": 1, "createdAt": 1,
          "pieceSize": 1, "verified": 1}


@dataclass
class Rules:
    now: float
    renew_before: int  # epochs
    sending_timeout: float  # seconds after which a deal still "sending" was abandoned by its sender
    height: int | None = None  # the chain height deal tracking last applied (None: not known yet)


def is_live(deal: dict, rules: Rules) -> bool:
    state = deal.get("state")
    if state not in LIVE_STATES:
        return False
    if state == DealStatus.SENDING.value:
        created = deal.get("createdAt")
        return isinstance(created, (int, float)) and rules.now - created < rules.sending_timeout
    end = deal.get("endEpoch")
    # In epochs against the tracked chain height: the chain's clock, not this host's.
    return not (rules.height is not None and isinstance(end, int) and end - rules.height <= rules.renew_before)


@dataclass
class PieceState:
    live: int = 0
    active: int = 0
    pending: int = 0  # live but not active yet
    # Providers not to ask for this piece: they hold it, have it pending, or lost it on chain.
    excluded: set[str] = field(default_factory=set)


def piece_state(deals: list[dict], rules: Rules) -> PieceState:
    out = PieceState()
    for deal in deals:
        if is_live(deal, rules):
            out.live += 1
            if deal["state"] == DealStatus.ACTIVE.value:
                out.active += 1
            else:
                out.pending += 1
            out.excluded.add(deal.get("provider"))
        elif deal.get("state") in FAILED_ON_CHAIN:
            out.excluded.add(deal.get("provider"))
    return out
