"""What the deal making API accepts and answers (the routes declare these; see shared/schema.py).
The values' own rules (address checksums, CID codecs, power-of-two sizes) are in shared/deal_params.py."""
from shared import deal_params as v
from shared.models import DealStatus
from shared.operations import paged
from shared.schema import Arr, Bool, Custom, Int, Json, Map, Num, Obj, Size, Str, Text, record

PROPOSAL = Obj({
    "wallet": Str("the client's f1 or f3 wallet address; it signs the proposal",
                  example="f1abjxfbp274xpdqcpuaykwkfb43omjotacm2p3za"),
    "keyPath": Str("the wallet's exported key file, inside deal_making_service.key_dir (never stored or echoed)"),
    "provider": Str("the storage provider's ID address", example="f01234"),
    "pieceCid": Str("the piece CID (commP)",
                    example="baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"),
    "pieceSize": Size("the padded piece size: a power of two up to 64 GiB"),
    "dataCid": Str("the payload (root) CID of the CAR"),
    "url": Str("where the provider downloads the CAR (http or https); omit it for an offline deal"),
    "carSize": Size("the CAR's size in bytes; required with url"),
    "verified": Bool("a verified (DataCap) deal", default=True),
    "duration": Int("in epochs: 180 to 1278 days", default=v.DEFAULT_DURATION),
    "startEpoch": Int("the epoch the deal starts by (default: boost's choice)"),
    "price": Custom({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}]}, v.price,
                    "attoFIL per epoch per GiB: a whole number, as an integer or a decimal string"),
    "keepUnsealed": Bool("the provider keeps an unsealed copy", default=True),
    "announceToIpni": Bool("the provider announces the deal to IPNI", default=True),
}, required=("wallet", "keyPath", "provider", "pieceCid", "pieceSize", "dataCid"), closed=True, name="DealProposal")

PROPOSED = record({
    "proposalCid": Text("boost's deal UUID"), "id": Text("the DealState id"), "state": Text(),
    "existing": Bool("true when a pending deal for this client, provider and piece was returned instead"),
}, name="DealProposed", description="the proposal was sent, or an identical one is pending")

_ALWAYS = ("id", "client", "provider", "pieceCid", "pieceSize", "dataCid", "state", "createdAt", "updatedAt")
DEAL = Obj({
    "id": Text(), "datasetId": Text(nullable=True), "client": Text(), "provider": Text(), "pieceCid": Text(),
    "pieceSize": Int(), "dataCid": Text(), "label": Text(), "url": Text(nullable=True), "carSize": Int(nullable=True),
    "verified": Bool(), "duration": Int(), "price": Text(nullable=True), "keepUnsealed": Bool(),
    "announceToIpni": Bool(), "offline": Bool(),
    "state": Text(", ".join(s.value for s in DealStatus)), "proposalCid": Text(nullable=True),
    "startEpoch": Int(nullable=True), "endEpoch": Int(nullable=True), "message": Text(nullable=True),
    "providerCollateral": Json(nullable=True), "dealId": Int("the on-chain deal id", nullable=True),
    "clientId": Text(nullable=True), "sectorId": Int(nullable=True), "sectorStartEpoch": Int(nullable=True),
    "activation": Num("Unix seconds", nullable=True), "expiration": Num("Unix seconds", nullable=True),
    "slashEpoch": Int(nullable=True), "trackedHeight": Int(nullable=True),
    "createdAt": Num("Unix seconds"), "updatedAt": Num("Unix seconds"),
}, required=_ALWAYS, name="DealState")

DEALS = record(paged("deals", DEAL), name="DealList")

DEAL_FILTERS = {
    "state": Str("only deals in this state", enum=tuple(s.value for s in DealStatus)),
    "provider": Str("only deals with this provider"),
    "piece": Str("only deals of this piece CID"),
    "client": Str("only deals of this client wallet"),
}

ID = Str("the DealState id", max_length=100)

STATE_NAMES = ", ".join(s.value for s in DealStatus)

HISTORY = record({
    "bucket": Int("bucket length, seconds", minimum=1), "since": Int("start of the window, Unix seconds"),
    "until": Int("end of the window, Unix seconds"),
    "states": Arr(Text(), "every state counted, in lifecycle order (" + STATE_NAMES + ")"),
    "points": Arr(record({
        "time": Int("the end of the bucket, Unix seconds (the last one ends at until)"),
        "counts": Map(Int(), "deals in each state then (every state of `states`, 0 included)"),
    }, name="DealHistoryPoint"), "one per bucket, oldest first"),
}, name="DealHistory", description="how many deals were in each state at the end of each bucket")

TRANSITION = record({
    "id": Text("<deal>|<from state>"), "deal": Text("the DealState id"),
    "dealId": Int("the on-chain deal id, once known", nullable=True), "provider": Text(nullable=True),
    "pieceCid": Text(nullable=True), "client": Text(nullable=True),
    "from": Text("the state left; null for the deal's creation", nullable=True), "to": Text("the state entered"),
    "epoch": Int("the chain height the tracker saw the change at; null for changes made by deal making",
                 nullable=True),
    "time": Num("Unix seconds"),
}, name="DealTransition")

TRANSITIONS = record(paged("transitions", TRANSITION), name="DealTransitionList")

TRANSITION_FILTERS = {
    "deal": Str("only the transitions of this DealState id", max_length=100),
    "provider": Str("only transitions of deals with this provider"),
}
