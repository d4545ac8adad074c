"""The pure rules: chain state mapping, vanished deals, addresses, boost's environment."""
from __future__ import annotations

import pytest

from services.dealmaking import boost
from services.tracking import states
from shared.api import InvalidParameter
from shared.config import Connection
from shared.deal_params import encode_address, wallet_address


def market(sector_start=-1, slash=-1, start=100, end=200):
    return {"slashEpoch": slash, "sectorStartEpoch": sector_start, "startEpoch": start, "endEpoch": end}


@pytest.mark.parametrize("deal, height, expected", [
    (market(), 50, "published"),
    (market(), 100, "published"),
    (market(), 101, "proposal_expired"),
    (market(sector_start=90), 150, "active"),
    (market(sector_start=90), 200, "active"),
    (market(sector_start=90), 201, "expired"),
    (market(sector_start=90, slash=150), 160, "slashed"),
    (market(slash=150), 160, "slashed"),
])
def test_chain_state(deal, height, expected):
    assert states.chain_state(deal, height) == expected


@pytest.mark.parametrize("local, height, expected", [
    ({"startEpoch": 100, "endEpoch": 200, "sectorStartEpoch": 90}, 201, "expired"),
    ({"startEpoch": 100, "endEpoch": 200, "sectorStartEpoch": 90}, 150, "slashed"),
    ({"startEpoch": 100, "endEpoch": 200, "sectorStartEpoch": None}, 150, "proposal_expired"),
    ({"startEpoch": 100, "endEpoch": 200, "sectorStartEpoch": None}, 99, None),
])
def test_vanished_state(local, height, expected):
    assert states.vanished_state(local, height) == expected


def test_parse_market_deal_tolerates_new_fields_and_rejects_broken_ones():
    deal = {"Proposal": {"PieceCID": {"/": "baga"}, "Client": "f01", "Provider": "f02", "StartEpoch": 1,
                         "EndEpoch": 2, "NewField": 1},
            "State": {"SectorStartEpoch": -1, "SlashEpoch": -1, "LastUpdatedEpoch": -1, "SectorNumber": 7}}
    assert states.parse_market_deal(deal)["sectorId"] == 7
    del deal["State"]["SlashEpoch"]
    with pytest.raises(states.BadMarketDeal):
        states.parse_market_deal(deal)


def test_epoch_time():
    assert states.epoch_time(1598306400, 2) == 1598306460
    assert states.epoch_time(1598306400, -1) is None


def test_known_mainnet_addresses():
    # Published addresses with valid checksums.
    assert wallet_address("w", "f1abjxfbp274xpdqcpuaykwkfb43omjotacm2p3za")
    assert wallet_address("w", "t1d2xrzcslx7xlbbylc5c3d5lvandqw4iwl6epxba")
    with pytest.raises(InvalidParameter):
        wallet_address("w", "f1abjxfbp274xpdqcpuaykwkfb43omjotacm2p3zb")
    assert wallet_address("w", encode_address(3, bytes(48), network="t"))


def test_full_node_info_for_boost(monkeypatch):
    monkeypatch.delenv("FULLNODE_API_INFO", raising=False)
    assert boost.environment(Connection(full_node_api="http://n:1234"))["FULLNODE_API_INFO"] == "http://n:1234"
    env = boost.environment(Connection(full_node_api="http://n:1234", full_node_token="a.b.c"))
    assert env["FULLNODE_API_INFO"] == "a.b.c:http://n:1234"
    monkeypatch.setenv("FULLNODE_API_INFO", "mine")
    assert boost.environment(Connection(full_node_api="http://n:1234"))["FULLNODE_API_INFO"] == "mine"
