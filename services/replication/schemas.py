"""What the replication API accepts and answers (the routes declare these; see shared/schema.py).
Rules no schema can say (a known dataset, a wallet address, a key file inside key_dir, criteria
metrics, a CAR file inside the roots) stay in requests.py and carimport.py."""
from __future__ import annotations

from shared import criteria
from shared import deal_params as deal
from shared.api import InvalidParameter
from shared.operations import paged
from shared.schema import Arr, Bool, Custom, Int, Json, Num, Obj, Size, Str, Text, record

STATES = ("active", "paused", "removed")
MAX_REPLICAS = 50
# Epochs a start may be delayed by: boost refuses starts further out than a few weeks anyway.
MAX_START_DELAY = 30 * deal.EPOCHS_PER_DAY
MAX_LIMIT = 10**6

ID = Str("the replication request's id", max_length=100, example="65a1f0c2e4b0a1b2c3d4e5f6")


def _criteria(field: str, value):
    # The type only: the language and its metrics are checked by requests.check_criteria.
    if not isinstance(value, (str, list)):
        raise InvalidParameter(f"{field} must be a string or a list of entries")
    return value


def _replicas(description: str) -> Int:
    return Int(description, minimum=1, maximum=MAX_REPLICAS)


CRITERIA = Custom(criteria.SHAPE, _criteria, "which providers: the criteria language (string or list form)",
                  example="deals.acceptance_rate >= 0.5 && !deals.slashed")
MIN_REPLICAS = _replicas(f"live deals each chunk needs, 1 to {MAX_REPLICAS}")
MAX_REPLICAS_FIELD = _replicas("never more live deals per piece (default minReplicas)")
CLIENT = Str("the f1/f3 wallet proposing the deals", max_length=200, example="f1abjxfbp274xpdqcpuaykwkfb43omjotacm2p3za")
KEY_PATH = Str("its key file, inside deal_making_service.key_dir")
PRICE = Custom({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}]},
               lambda field, value: deal.price(field, value),
               "attoFIL per epoch per GiB, a whole number (integer or decimal string); default replication_service.price")

# Deal parameters a request may give (each defaults to [replication_service]).
DEAL_FIELDS = {
    "verified": Bool("a verified (DataCap) deal; default replication_service.verified"),
    "duration": Int("epochs, 180 to 1278 days; default replication_service.duration"),
    "startDelay": Int("epochs between the proposal and the deal's start (at most 30 days); "
                      "default replication_service.start_delay", minimum=0, maximum=MAX_START_DELAY),
    "price": PRICE,
    "keepUnsealed": Bool("ask the provider to keep an unsealed copy"),
    "announceToIpni": Bool("ask the provider to announce the data to IPNI"),
    "urlTemplate": Text("download URL with {dataCid} / {pieceCid} / {PIECE_CID}; empty for offline deals; "
                        "default <http_url_prefix>/{dataCid}.car"),
    "maxPendingPerProvider": Int("at most this many unsealed proposals per provider (all requests)",
                                 minimum=1, maximum=MAX_LIMIT),
    "dealsPerDay": Int("at most this many deals per provider in any 24 h (all requests)", minimum=1, maximum=MAX_LIMIT),
}

# POST /replication for a prepared dataset: datasetId; for a CAR file: path (+ its CIDs).
NEW_REPLICATION = Obj({
    "datasetId": Str("preparation id or name (or give path)"),
    "path": Str("a CAR file inside deal_preparation_service.dataset_roots (or give datasetId)"),
    "dataCid": Str("the CAR's root; read from its header when absent (path only)"),
    "pieceCid": Str("the CAR's piece CID; computed when absent, checked when given (path only)"),
    "pieceSize": Size("the padded piece size; computed when absent, checked when given (path only)"),
    "minReplicas": MIN_REPLICAS,
    "maxReplicas": MAX_REPLICAS_FIELD,
    "criteria": CRITERIA,
    "client": CLIENT,
    "keyPath": KEY_PATH,
    **DEAL_FIELDS,
}, required=("minReplicas", "criteria", "client", "keyPath"), closed=True, name="NewReplication",
    description="give exactly one of datasetId (a prepared dataset) and path (a CAR file)")

UPDATE = Obj({
    "minReplicas": MIN_REPLICAS, "maxReplicas": MAX_REPLICAS_FIELD, "criteria": CRITERIA, "client": CLIENT,
    "keyPath": KEY_PATH, "state": Str("paused, active or removed", enum=STATES),
}, closed=True, name="ReplicationUpdate", description="only the fields given change")

CREATED = Obj({"id": Text("the new request's id"), "datasetId": Text("its preparation"),
               "dataCid": Text("the CAR's root (CAR file requests only)"), "pieceCid": Text("(CAR file requests only)"),
               "pieceSize": Int("(CAR file requests only)"), "carSize": Int("bytes (CAR file requests only)")},
              required=("id", "datasetId"), name="ReplicationCreated",
              description="the request is created (for a CAR file: with its CIDs and sizes)")

REQUEST = record({
    "id": Text(), "datasetId": Text("its preparation"),
    "minReplicas": Int(), "maxReplicas": Int(), "client": Text(), "criteria": Json("as given"),
    "state": Text("what was asked: active or paused"), "status": Text("active, completed or error", nullable=True),
    "error": Text(nullable=True), "verified": Bool(), "duration": Int(), "startDelay": Int(),
    "price": Text("attoFIL per epoch per GiB"), "keepUnsealed": Bool(), "announceToIpni": Bool(),
    "urlTemplate": Text("empty for offline deals"), "maxPendingPerProvider": Int(), "dealsPerDay": Int(),
    "createdAt": Num("Unix seconds"), "lastRoundAt": Num("Unix seconds", nullable=True),
    "replicationFactor": Num("live deals per chunk, on average, at the last round", nullable=True),
    "replicationCompleted": Int(nullable=True), "replicationInProgress": Int(nullable=True),
    "replicationTotal": Int(nullable=True),
}, name="Replication")
UPDATED = Obj({**REQUEST.fields}, required=("id", "state"), name="ReplicationUpdated",
              description="the request as it is now ({id, state: removed} once removed)")

DEAL = record({
    "id": Text(), "client": Text(nullable=True), "provider": Text(nullable=True), "proposalCid": Text(nullable=True),
    "dataCid": Text(nullable=True), "dealId": Int("the on-chain deal id", nullable=True), "sectorId": Int(nullable=True),
    "activation": Num("Unix seconds", nullable=True), "expiration": Num("Unix seconds", nullable=True),
    "state": Text(nullable=True), "startEpoch": Int(nullable=True), "endEpoch": Int(nullable=True),
}, name="ReplicationDeal")
CHUNK = record({
    "generationRequestId": Text(), "index": Int(), "status": Text(nullable=True), "dataCid": Text(nullable=True),
    "pieceCid": Text(nullable=True), "pieceSize": Int(nullable=True), "deals": Arr(DEAL),
}, name="ReplicationChunk")

REPLICATIONS = record(paged("replications", REQUEST), name="ReplicationList")
DETAILS = record({**REQUEST.fields, **paged("replicationDetails", CHUNK, "the dataset's chunks")},
                 name="ReplicationDetails")

PROVIDER = Text("only this provider's deals (default: all)", nullable=True)
