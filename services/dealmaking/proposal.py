"""A deal proposal as POST /deal receives it, checked field by field before anything runs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared import deal_params as v
from shared.api import InvalidParameter


@dataclass(frozen=True)
class Proposal:
    wallet: str
    # Excluded from repr so a logged proposal never shows where the key lives.
    key_path: Path = None  # type: ignore[assignment]
    verified: bool = True
    url: str | None = None
    piece_size: int = 0
    piece_cid: str = ""
    data_cid: str = ""
    provider: str = ""
    car_size: int | None = None
    duration: int = v.DEFAULT_DURATION
    start_epoch: int | None = None
    price: str | None = None
    keep_unsealed: bool = True
    announce_to_ipni: bool = True

    def __repr__(self) -> str:
        return f"Proposal(wallet={self.wallet}, provider={self.provider}, pieceCid={self.piece_cid})"

    @property
    def offline(self) -> bool:
        return self.url is None

    def record(self) -> dict:
        """The fields a DealState keeps; the key path is deliberately not among them."""
        return {
            "client": self.wallet, "provider": self.provider, "pieceCid": self.piece_cid,
            "pieceSize": self.piece_size, "dataCid": self.data_cid, "label": self.data_cid,
            "url": self.url, "carSize": self.car_size, "verified": self.verified,
            "duration": self.duration, "price": self.price, "keepUnsealed": self.keep_unsealed,
            "announceToIpni": self.announce_to_ipni, "offline": self.offline,
        }


def parse(body: dict, key_dir: str) -> Proposal:
    """`body` has the shape of schemas.PROPOSAL (sizes in bytes, defaults filled in); here each
    value's own rules, in the order the fields are listed there."""
    wallet = v.wallet_address("wallet", body["wallet"])
    provider = v.provider_address("provider", body["provider"])
    piece_cid = v.piece_cid("pieceCid", body["pieceCid"])
    data_cid = v.data_cid("dataCid", body["dataCid"])
    piece_size = v.piece_size("pieceSize", body["pieceSize"])
    url = body["url"]
    if url is not None:
        url = v.http_url("url", url)
    car_size = body["carSize"]
    if car_size is not None:
        car_size = v.car_size("carSize", car_size, piece_size)
    elif url is not None:
        # boost sizes the download by it and the provider checks the transfer against it.
        raise InvalidParameter("carSize is required for an online deal (one with a url)")
    duration = v.duration("duration", body["duration"])
    start_epoch = body["startEpoch"]
    if start_epoch is not None:
        start_epoch = v.start_epoch("startEpoch", start_epoch)
    key_path = v.key_path("keyPath", body["keyPath"], key_dir)
    return Proposal(
        wallet=wallet, key_path=key_path, verified=body["verified"], url=url, piece_size=piece_size,
        piece_cid=piece_cid, data_cid=data_cid, provider=provider, car_size=car_size,
        duration=duration, start_epoch=start_epoch, price=body["price"],
        keep_unsealed=body["keepUnsealed"], announce_to_ipni=body["announceToIpni"],
    )
