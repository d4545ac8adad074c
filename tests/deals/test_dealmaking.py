"""POST /deal, GET /deals and GET /deal/:id against the fake boost executable."""
from __future__ import annotations

import asyncio
import json
import os

import pytest

from shared import models
from shared.deal_params import encode_address

from .conftest import DATA_CID, PIECE_CID, PROVIDER, WALLET, assert_sent

OTHER_PIECE = "baga6ea4seaqhf2ymr6ahkxe3i2txmnqbmltzyf65nwcdvq2hvwmcdaeljdt4ipq"


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


async def test_online_deal_runs_boost_and_records_proposed(api, db, fake_boost, lotus, proposal, key_file, caplog):
    lotus.chain.height = 4000
    response = await api.post("/deal", json=proposal)
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert set(answer) >= {"proposalCid", "id"} and answer["state"] == "proposed"

    import_call, deal_call = fake_boost.calls()
    assert import_call[-2:] == ["wallet", "import"]
    assert deal_call[deal_call.index("--json") + 1] == "deal"
    assert _flag(deal_call, "--provider") == PROVIDER
    assert _flag(deal_call, "--commp") == PIECE_CID
    assert _flag(deal_call, "--payload-cid") == DATA_CID
    assert _flag(deal_call, "--piece-size") == str(2**35)
    assert _flag(deal_call, "--car-size") == str(30 * 2**30)
    assert _flag(deal_call, "--http-url") == "http://example.com/piece.car"
    assert _flag(deal_call, "--wallet") == WALLET
    assert "--verified=true" in deal_call and "--remove-unsealed-copy" not in deal_call
    # Both steps used the same throwaway repo, which is gone afterwards (it held the key).
    repo = _flag(deal_call, "--repo")
    assert _flag(import_call, "--repo") == repo
    from pathlib import Path
    assert not Path(repo).exists()

    deal = await db[models.DEAL_STATE].find_one({"_id": answer["id"]})
    assert deal["state"] == "proposed" and deal["proposalCid"] == answer["proposalCid"]
    # The fake boost read the head from the node given as FULLNODE_API_INFO.
    assert deal["startEpoch"] == 4000 + 5760 and deal["endEpoch"] == deal["startEpoch"] + 518400
    stored = json.dumps(deal, default=str)
    secret = str(key_file)
    assert secret not in stored and "secret" not in stored
    assert all(secret not in arg for call in fake_boost.calls() for arg in call)
    assert secret not in json.dumps(answer) and secret not in caplog.text

    got = await (await api.get(f"/deal/{answer['id']}")).json()
    assert got["proposalCid"] == answer["proposalCid"] and "keyPath" not in got


async def test_offline_deal_and_optional_flags(api, db, fake_boost, proposal):
    body = {**proposal, "verified": False, "duration": 1278 * 2880, "startEpoch": 200000, "price": "0",
            "keepUnsealed": False, "announceToIpni": False, "pieceSize": "32GiB"}
    del body["url"], body["carSize"]
    response = await api.post("/deal", json=body)
    assert response.status == 200, await response.text()
    await assert_sent(db, fake_boost, await response.json(), offline=True, url=None, carSize=None, verified=False,
                      duration=1278 * 2880, startEpoch=200000, endEpoch=200000 + 1278 * 2880, price="0",
                      keepUnsealed=False, announceToIpni=False, pieceSize=2**35, client=WALLET)
    argv = fake_boost.deal_calls()[0]
    assert "offline-deal" in argv and "--http-url" not in argv and "--car-size" not in argv
    assert "--verified=false" in argv and "--remove-unsealed-copy" in argv and "--skip-ipni-announce" in argv
    assert _flag(argv, "--duration") == str(1278 * 2880) and _flag(argv, "--start-epoch") == "200000"
    assert _flag(argv, "--storage-price") == "0" and _flag(argv, "--piece-size") == str(2**35)


async def test_other_cli_options_are_split_into_argv(api, db, deal_config, fake_boost, proposal):
    deal_config.deal_making_service.other_boost_client_cli_options = "--vv"
    response = await api.post("/deal", json=proposal)
    assert response.status == 200, await response.text()
    assert len(fake_boost.calls()) == 2 and all(call[0] == "--vv" for call in fake_boost.calls())
    await assert_sent(db, fake_boost, await response.json(), offline=False, url=proposal["url"])


async def test_rejection_is_recorded_with_the_providers_message(api, db, fake_boost, proposal):
    fake_boost.control(reject="deal rejected as piece size is too large")
    response = await api.post("/deal", json=proposal)
    assert response.status == 422
    answer = await response.json()
    assert "piece size is too large" in answer["error"]
    deal = await db[models.DEAL_STATE].find_one({"_id": answer["detail"]["id"]})
    assert deal["state"] == "rejected" and deal["message"] == "deal rejected as piece size is too large"
    # A rejection frees the piece: a retry sends a new proposal.
    fake_boost.control()
    again = await api.post("/deal", json=proposal)
    assert again.status == 200 and len(fake_boost.deal_calls()) == 2


@pytest.mark.parametrize("control, expected", [
    ({"fail": "connecting to provider: no route to peer"}, "no route to peer"),
    ({"garbage": True}, "no JSON"),
    ({"sleep": 30}, "did not finish within"),
])
async def test_tool_failure_is_recorded_as_error(api, db, deal_config, fake_boost, proposal, control, expected):
    deal_config.deal_making_service.timeout = 1.5
    fake_boost.control(**control)
    response = await api.post("/deal", json=proposal)
    assert response.status == 502
    answer = await response.json()
    deal = await db[models.DEAL_STATE].find_one({"_id": answer["detail"]["id"]})
    assert deal["state"] == "error" and expected in deal["message"]
    assert await db[models.DEAL_PENDING].count_documents({}) == 0


async def test_missing_boost_is_503(api, deal_config, proposal, tmp_path):
    deal_config.deal_making_service.boost_path = str(tmp_path / "no-such-boost")
    response = await api.post("/deal", json=proposal)
    assert response.status == 503 and "cannot start" in (await response.json())["detail"]


async def test_retry_while_pending_returns_the_existing_proposal(api, db, fake_boost, proposal):
    first = await (await api.post("/deal", json=proposal)).json()
    await assert_sent(db, fake_boost, first, pieceCid=PIECE_CID)
    second = await api.post("/deal", json=proposal)
    assert second.status == 200
    again = await second.json()
    assert again["proposalCid"] == first["proposalCid"] and again["existing"] is True
    assert again["id"] == first["id"] and len(fake_boost.deal_calls()) == 1
    assert await db[models.DEAL_STATE].count_documents({}) == 1
    other = await api.post("/deal", json={**proposal, "pieceCid": OTHER_PIECE})
    assert other.status == 200 and len(fake_boost.deal_calls()) == 2
    await assert_sent(db, fake_boost, await other.json(), pieceCid=OTHER_PIECE)


async def test_concurrent_requests_send_one_proposal(api, db, fake_boost, proposal):
    fake_boost.control(sleep=0.5)
    responses = await asyncio.gather(*(api.post("/deal", json=proposal) for _ in range(5)))
    answers = [await r.json() for r in responses]
    assert all(r.status == 200 for r in responses), answers
    assert len({a["proposalCid"] for a in answers}) == 1
    assert len(fake_boost.deal_calls()) == 1
    assert await db[models.DEAL_STATE].count_documents({}) == 1


async def test_stale_pending_key_of_a_crashed_sender_is_cleared(api, db, fake_boost, proposal):
    old = models.now() - 6 * 365 * 86400  # years ago
    await db[models.DEAL_STATE].insert_one({"_id": "crashed", "state": "sending", "client": WALLET})
    await db[models.DEAL_PENDING].insert_one(
        {"_id": f"{WALLET}|{PROVIDER}|{PIECE_CID}", "dealStateId": "crashed", "createdAt": old})
    response = await api.post("/deal", json=proposal)
    assert response.status == 200 and (await response.json())["existing"] is False
    assert (await db[models.DEAL_STATE].find_one({"_id": "crashed"}))["state"] == "error"
    answer = await response.json()
    assert answer["id"] != "crashed" and len(fake_boost.deal_calls()) == 1
    await assert_sent(db, fake_boost, answer, pieceCid=PIECE_CID)
    # The new proposal holds the key now: a retry gets it back instead of sending again.
    assert (await db[models.DEAL_PENDING].find_one({"_id": f"{WALLET}|{PROVIDER}|{PIECE_CID}"}))["dealStateId"] == answer["id"]


F3 = encode_address(3, bytes(range(48)))
BAD_CHECKSUM = WALLET[:-1] + ("a" if WALLET[-1] != "a" else "b")


@pytest.mark.parametrize("change", [
    {"wallet": "f01234"},
    {"wallet": BAD_CHECKSUM},
    {"wallet": "f1abc"},
    {"wallet": F3[:-2]},
    {"wallet": "f2" + WALLET[2:]},
    {"wallet": 12},
    {"provider": "f1234"},
    {"provider": WALLET},
    {"provider": "f0012"},
    {"pieceCid": DATA_CID},
    {"pieceCid": "baga6ea4seaqnotacid"},
    {"pieceCid": "bagaXYZ"},
    {"dataCid": PIECE_CID},
    {"dataCid": "not-a-cid"},
    {"pieceSize": 3 * 2**30},
    {"pieceSize": 2**37},
    {"pieceSize": 64},
    {"pieceSize": -1},
    {"pieceSize": True},
    {"carSize": 2**35},
    {"carSize": 0},
    {"carSize": None},
    {"duration": 179 * 2880},
    {"duration": 1279 * 2880},
    {"duration": "518400"},
    {"startEpoch": -5},
    {"url": "ftp://example.com/a.car"},
    {"url": "file:///etc/passwd"},
    {"url": "http://"},
    {"url": ""},
    {"price": "-1"},
    {"price": "0.5"},
    {"price": 1.5},
    {"verified": "yes"},
    {"keepUnsealed": 1},
    {"keyPath": "/no/such/key"},
    {"keyPath": "/"},
    {"keyPath": None},
    {"wallet": None},
    {"provider": None},
    {"pieceCid": None},
    {"unexpected": 1},
])
async def test_bad_bodies_are_4xx_and_start_no_process(api, db, fake_boost, proposal, change):
    body = {**proposal, **change}
    response = await api.post("/deal", json=body)
    assert 400 <= response.status < 500, await response.text()
    answer = await response.json()
    assert answer["error"] and "detail" in answer
    assert fake_boost.calls() == []
    assert await db[models.DEAL_STATE].count_documents({}) == 0


async def test_f3_wallet_is_accepted(api, db, fake_boost, proposal):
    response = await api.post("/deal", json={**proposal, "wallet": F3})
    assert response.status == 200, await response.text()
    await assert_sent(db, fake_boost, await response.json(), client=F3)


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b""])
async def test_non_object_bodies_are_400(api, fake_boost, raw):
    response = await api.post("/deal", data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"]
    assert fake_boost.calls() == []


async def test_key_path_is_not_echoed_in_errors(api, proposal, tmp_path):
    secret = str(tmp_path / "hidden-location" / "key")
    response = await api.post("/deal", json={**proposal, "keyPath": secret})
    assert response.status == 400 and "hidden-location" not in await response.text()


async def test_list_and_get_deals(api, db, fake_boost, proposal):
    first = await (await api.post("/deal", json=proposal)).json()
    await api.post("/deal", json={**proposal, "pieceCid": OTHER_PIECE, "provider": "f09999"})
    listing = await (await api.get("/deals")).json()
    assert listing["total"] == 2 and [d["id"] for d in listing["deals"]][0] == first["id"]
    by_provider = await (await api.get("/deals", params={"provider": "f09999"})).json()
    assert [d["pieceCid"] for d in by_provider["deals"]] == [OTHER_PIECE]
    by_piece = await (await api.get("/deals", params={"piece": PIECE_CID, "state": "proposed"})).json()
    assert [d["id"] for d in by_piece["deals"]] == [first["id"]]
    assert (await (await api.get("/deals", params={"state": "active"})).json())["total"] == 0
    page = await (await api.get("/deals", params={"offset": 1, "limit": 1})).json()
    assert len(page["deals"]) == 1 and page["deals"][0]["pieceCid"] == OTHER_PIECE
    assert (await api.get("/deals", params={"state": "bogus"})).status == 400
    assert (await api.get("/deals", params={"limit": "x"})).status == 400
    missing = await api.get("/deal/nope")
    assert missing.status == 404 and (await missing.json())["error"]


async def test_timed_out_boost_is_killed(api, deal_config, fake_boost, proposal):
    deal_config.deal_making_service.timeout = 1.0
    fake_boost.control(sleep=60)
    response = await api.post("/deal", json=proposal)
    assert response.status == 502
    pids = [int(p) for p in (fake_boost.dir / "pids").read_text().split()]
    assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_unusable_key_is_an_error_and_sends_nothing(api, db, fake_boost, proposal, key_file):
    key_file.write_text("not a key")
    response = await api.post("/deal", json=proposal)
    assert response.status == 502
    answer = await response.json()
    assert "importing the wallet key failed" in answer["error"] and str(key_file) not in await response.text()
    assert fake_boost.deal_calls() == []
    assert (await db[models.DEAL_STATE].find_one({"_id": answer["detail"]["id"]}))["state"] == "error"
