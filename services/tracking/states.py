"""Deriving a deal's state from market state, as the reference tool does; pure functions only."""
from __future__ import annotations

from shared.models import DealStatus

EPOCH_SECONDS = 30


class BadMarketDeal(ValueError):
    pass


def epoch_time(genesis: int, epoch: int | None) -> int | None:
    """Unix seconds, as the DealState model has it (a number), for an epoch of a chain born at `genesis`."""
    if epoch is None or epoch < 0:
        return None
    return genesis + epoch * EPOCH_SECONDS


def _int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadMarketDeal(f"{name} is not an integer: {value!r}")
    return value


def parse_market_deal(deal: dict) -> dict:
    """The fields we use from a MarketDeal; tolerant of fields newer nodes add."""
    try:
        proposal, state = deal["Proposal"], deal["State"]
        piece = proposal["PieceCID"]
        piece_cid = piece["/"] if isinstance(piece, dict) else piece
        parsed = {
            "pieceCid": piece_cid,
            "client": proposal["Client"],
            "provider": proposal["Provider"],
            "startEpoch": _int(proposal["StartEpoch"], "StartEpoch"),
            "endEpoch": _int(proposal["EndEpoch"], "EndEpoch"),
            "sectorStartEpoch": _int(state["SectorStartEpoch"], "SectorStartEpoch"),
            "slashEpoch": _int(state["SlashEpoch"], "SlashEpoch"),
            "sectorId": state.get("SectorNumber"),
        }
    except (KeyError, TypeError) as exc:
        raise BadMarketDeal(f"missing field {exc}") from None
    if not isinstance(parsed["pieceCid"], str):
        raise BadMarketDeal("PieceCID is not a CID")
    return parsed


def chain_state(deal: dict, height: int) -> str:
    """`deal` as parse_market_deal returns it."""
    if deal["slashEpoch"] > 0:
        return DealStatus.SLASHED.value
    if deal["sectorStartEpoch"] < 0:
        return DealStatus.PROPOSAL_EXPIRED.value if height > deal["startEpoch"] else DealStatus.PUBLISHED.value
    return DealStatus.EXPIRED.value if height > deal["endEpoch"] else DealStatus.ACTIVE.value


def vanished_state(local: dict, height: int) -> str | None:
    """The state of a deal we had seen on chain that market state no longer holds.

    None when absence proves nothing yet (the deal is still inside its window and was never
    seen active, e.g. a node reading an older state): it stays as it is.
    """
    end, start = local.get("endEpoch"), local.get("startEpoch")
    if end is not None and height > end:
        return DealStatus.EXPIRED.value
    if local.get("sectorStartEpoch") is None or local["sectorStartEpoch"] < 0:
        if start is not None and height > start:
            return DealStatus.PROPOSAL_EXPIRED.value
        return None
    # Activated, gone before its end: the market actor removes terminated deals once slashed.
    return DealStatus.SLASHED.value


def unpublished_state(local: dict, height: int) -> str | None:
    """A proposal never found on chain: past its start epoch it can no longer be published."""
    start = local.get("startEpoch")
    if start is not None and height > start:
        return DealStatus.PROPOSAL_EXPIRED.value
    return None


# Where a tracked deal may go from each state it is watched in; anything else would move it back
# (an activated deal shown unactivated by a node reading a bad state, say) and is ignored.
_FORWARD = {
    DealStatus.PROPOSED.value: {DealStatus.PUBLISHED.value, DealStatus.ACTIVE.value, DealStatus.EXPIRED.value,
                                DealStatus.SLASHED.value, DealStatus.PROPOSAL_EXPIRED.value},
    DealStatus.PUBLISHED.value: {DealStatus.ACTIVE.value, DealStatus.EXPIRED.value, DealStatus.SLASHED.value,
                                 DealStatus.PROPOSAL_EXPIRED.value},
    DealStatus.ACTIVE.value: {DealStatus.EXPIRED.value, DealStatus.SLASHED.value},
}


def moves_forward(current: str, new: str) -> bool:
    """Whether a deal in `current` may be updated to `new` (staying put is allowed)."""
    return new == current or new in _FORWARD.get(current, set())
