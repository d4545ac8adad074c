"""One tracking round: read the chain head and market state, bring every watched DealState in line.

A round first reads everything and decides, then writes. Each write sets values derived only from
chain state at the round's height, guarded so an older height never overwrites a newer one. So a
round is idempotent: a tracker killed mid-round and started again reaches the same states. A round
that fails to read the chain writes nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pymongo.asynchronous.database import AsyncDatabase

from services.tracking import states
from shared import deal_pending as pending, deal_transitions as transitions
from shared.lotus import LotusClient, LotusMalformed
from shared import models

log = logging.getLogger(__name__)

# Up to this many deals, all with a deal id, are asked for one by one instead of reading all of
# market state.
ONE_BY_ONE_LIMIT = 50


@dataclass
class RoundResult:
    height: int
    watched: int = 0
    updated: int = 0
    mode: str = "idle"
    skipped: bool = False
    scanned: int = 0  # deals read from StateMarketDeals (every client's)
    changes: dict[str, str] = field(default_factory=dict)


def _match_key(client_id: str, provider: str, piece: str, start, end) -> tuple:
    return client_id, provider, piece, start, end


class Tracker:
    def __init__(self, db: AsyncDatabase, lotus: LotusClient, one_by_one_limit: int = ONE_BY_ONE_LIMIT):
        self.db = db
        self.lotus = lotus
        self.one_by_one_limit = one_by_one_limit
        # wallet -> ID address; an actor's ID never changes once assigned.
        self.ids: dict[str, str] = {}

    async def last_height(self) -> int | None:
        doc = await self.db[models.DEAL_TRACKER].find_one({"_id": models.DEAL_TRACKER_ID})
        return None if doc is None else doc["height"]

    async def round(self) -> RoundResult:
        height, timestamp = await self.lotus.chain_head()
        genesis = timestamp - states.EPOCH_SECONDS * height
        last = await self.last_height()
        if last is not None and height < last:
            # A node still syncing or a different node: its older state must not undo newer results.
            log.warning("chain head %d is behind the last tracked height %d; skipping this round", height, last)
            return RoundResult(height, skipped=True)
        # Changes an earlier round (or deal making) recorded but was stopped before copying.
        await transitions.repair(self.db)
        watched = [d async for d in self.db[models.DEAL_STATE].find(
            {"state": {"$in": list(models.DEAL_TRACKED_STATES)}}).sort("_id", 1)]
        result = RoundResult(height, watched=len(watched))
        if watched:
            client_ids = await self._resolve({d["client"] for d in watched})
            with_id = [d for d in watched if d.get("dealId") is not None]
            if len(with_id) == len(watched) and len(watched) <= self.one_by_one_limit:
                result.mode = "one-by-one"
                decided = await self._one_by_one(watched, height)
            else:
                result.mode = "market-deals"
                decided = await self._scan(watched, client_ids, height)
                result.scanned = self.lotus.market_deals_seen
            changed: list[tuple[dict, list[dict]]] = []
            for deal in watched:
                update = self._update(deal, decided.get(deal["_id"]), client_ids, height, genesis)
                if update is None:
                    continue
                applied = await self._apply(deal, update, height)
                if applied:
                    result.updated += 1
                    result.changes[deal["_id"]] = update["state"]
                    if applied is not True:
                        changed.append(applied)
            # One batch for the round's changes; a round stopped before it leaves them to `repair`.
            await transitions.copy(self.db, changed)
        await self._release_settled()
        await self.db[models.DEAL_TRACKER].update_one(
            {"_id": models.DEAL_TRACKER_ID}, {"$set": {"height": height, "updatedAt": models.now()}}, upsert=True)
        log.info("round at height %d: %d watched, %d updated (%s)", height, result.watched, result.updated,
                 result.mode)
        return result

    async def _resolve(self, wallets: set[str]) -> dict[str, str]:
        for wallet in sorted(wallets - set(self.ids)):
            found = await self.lotus.lookup_id(wallet)
            if found is not None:
                self.ids[wallet] = found
        return {w: self.ids[w] for w in wallets if w in self.ids}

    async def _one_by_one(self, watched: list[dict], height: int) -> dict[str, tuple[int, dict] | None]:
        decided: dict[str, tuple[int, dict] | None] = {}
        for deal in watched:
            market = await self.lotus.market_deal(deal["dealId"])
            decided[deal["_id"]] = None if market is None else (deal["dealId"], _parse(deal["dealId"], market))
        return decided

    async def _scan(self, watched: list[dict], client_ids: dict[str, str], height: int
                    ) -> dict[str, tuple[int, dict] | None]:
        """Local deal id -> (dealId, parsed MarketDeal), or None for a deal id market state lacks.
        Local deals without a deal id and no match are absent from the result."""
        by_deal_id = {d["dealId"]: d["_id"] for d in watched if d.get("dealId") is not None}
        unmatched: dict[tuple, list[str]] = {}
        for d in watched:
            if d.get("dealId") is None and d["client"] in client_ids:
                key = _match_key(client_ids[d["client"]], d["provider"], d["pieceCid"], d.get("startEpoch"),
                                 d.get("endEpoch"))
                unmatched.setdefault(key, []).append(d["_id"])
        decided: dict[str, tuple[int, dict] | None] = {local: None for local in by_deal_id.values()}
        candidates: dict[tuple, list[tuple[int, dict]]] = {}
        async for deal_id, market in self.lotus.market_deals(set(client_ids.values())):
            if deal_id in by_deal_id:
                decided[by_deal_id[deal_id]] = (deal_id, _parse(deal_id, market))
                continue
            try:
                parsed = states.parse_market_deal(market)
            except states.BadMarketDeal:
                proposal = market.get("Proposal") if isinstance(market, dict) else None
                client = proposal.get("Client") if isinstance(proposal, dict) else None
                if isinstance(client, str) and client in client_ids.values():
                    raise LotusMalformed(f"market deal {deal_id}: malformed") from None
                continue  # malformed, and nothing says it is ours: another client's problem
            key = _match_key(parsed["client"], parsed["provider"], parsed["pieceCid"], parsed["startEpoch"],
                             parsed["endEpoch"])
            if key in unmatched:
                candidates.setdefault(key, []).append((deal_id, parsed))
        # Pairing in a fixed order (oldest local deal, lowest deal id) whatever order the node streams in.
        for key, found in candidates.items():
            for local, chain in zip(unmatched[key], sorted(found, key=lambda c: c[0])):
                decided[local] = chain
        return decided

    @staticmethod
    def _update(deal: dict, chain: tuple[int, dict] | None, client_ids: dict[str, str], height: int,
                genesis: int) -> dict | None:
        if chain is not None:
            deal_id, parsed = chain
            state = states.chain_state(parsed, height)
            sector_start = parsed["sectorStartEpoch"] if parsed["sectorStartEpoch"] >= 0 else None
            update = {
                "state": state, "dealId": deal_id, "clientId": parsed["client"],
                "startEpoch": parsed["startEpoch"], "endEpoch": parsed["endEpoch"],
                "sectorStartEpoch": sector_start, "sectorId": parsed["sectorId"],
                "activation": states.epoch_time(genesis, sector_start),
                "expiration": states.epoch_time(genesis, parsed["endEpoch"]),
                "slashEpoch": parsed["slashEpoch"] if parsed["slashEpoch"] > 0 else None,
            }
        elif deal.get("dealId") is not None:
            state = states.vanished_state(deal, height)
            if state is None:
                return None
            update = {"state": state}
        else:
            state = states.unpublished_state(deal, height)
            if state is None:
                return None
            update = {"state": state}
        if not states.moves_forward(deal["state"], state):
            log.warning("deal %s: chain state says %s after %s; not moving it back", deal["_id"], state,
                        deal["state"])
            return None
        if client_ids.get(deal["client"]) and not deal.get("clientId"):
            update.setdefault("clientId", client_ids[deal["client"]])
        if all(deal.get(k) == v for k, v in update.items()):
            return None
        return update

    async def _apply(self, deal: dict, update: dict, height: int) -> bool | tuple[dict, list[dict]]:
        """False when a newer round got there first; True when applied without a change of state;
        (the deal, the changes to copy) when its state changed."""
        query = {"_id": deal["_id"], "state": {"$in": list(models.DEAL_TRACKED_STATES)},
                 # $nor rather than $or on null: nx-27017's $or misses explicit nulls.
                 "$nor": [{"trackedHeight": {"$gt": height}}]}
        fields = {**update, "trackedHeight": height, "updatedAt": models.now()}
        if update["state"] == deal["state"]:
            result = await self.db[models.DEAL_STATE].update_one(query, {"$set": fields})
            return result.modified_count == 1
        change = models.state_change(deal["state"], update["state"], epoch=height)
        written = {**fields, **transitions.fields(change)}
        # Guarded by the state read at the round's start too, so the change recorded is the one
        # made. ($in of one: nx-27017 matches nothing with $eq beside $nor.)
        result = await self.db[models.DEAL_STATE].update_one({**query, "state": {"$in": [deal["state"]]}},
                                                             {"$set": written})
        if result.modified_count != 1:
            return False
        return transitions.to_copy(deal, written, change)

    async def _release_settled(self) -> None:
        """Free the pending keys of deals that left the pending states (also after a killed round)."""
        held = [p["dealStateId"] async for p in self.db[models.DEAL_PENDING].find({}, {"dealStateId": 1})]
        if not held:
            return
        settled = [d["_id"] async for d in self.db[models.DEAL_STATE].find(
            {"_id": {"$in": held}, "state": {"$nin": list(models.DEAL_PENDING_STATES)}}, {"_id": 1})]
        await pending.release(self.db, settled)


def _parse(deal_id: int, market: dict) -> dict:
    try:
        return states.parse_market_deal(market)
    except states.BadMarketDeal as exc:
        # Not skipped: skipping would make a live deal look vanished and wrongly expire it.
        raise LotusMalformed(f"market deal {deal_id}: {exc}") from None
