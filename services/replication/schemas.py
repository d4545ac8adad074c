"""What the replication API accepts, as plain data beside the routes: one entry per field with its
kind and meaning. `requests.py` checks bodies against these; the names are the API's."""
from __future__ import annotations

STATES = ("active", "paused", "removed")
MAX_REPLICAS = 50

# Deal parameters a request may give (each defaults to [replication_service]).
DEAL_FIELDS = {
    "verified": ("bool", "a verified (DataCap) deal; default replication_service.verified"),
    "duration": ("int", "epochs, 180 to 1278 days; default replication_service.duration"),
    "startDelay": ("int", "epochs between the proposal and the deal's start; default replication_service.start_delay"),
    "price": ("price", "attoFIL per epoch per GiB; default replication_service.price"),
    "keepUnsealed": ("bool", "ask the provider to keep an unsealed copy"),
    "announceToIpni": ("bool", "ask the provider to announce the data to IPNI"),
    "urlTemplate": ("template", "download URL with {dataCid} / {pieceCid}; empty for offline deals; "
                                "default <http_url_prefix>/{dataCid}.car"),
    "maxPendingPerProvider": ("int", "at most this many unsealed proposals per provider (all requests)"),
    "dealsPerDay": ("int", "at most this many deals per provider in any 24 h (all requests)"),
}

# POST /replication for a prepared dataset: datasetId; for a CAR file: path (+ its CIDs).
NEW_REPLICATION = {
    "datasetId": ("str", "preparation id or name"),
    "path": ("str", "a CAR file inside deal_preparation_service.dataset_roots"),
    "dataCid": ("str", "the CAR's root; read from its header when absent"),
    "pieceCid": ("str", "the CAR's piece CID; computed when absent, checked when given"),
    "pieceSize": ("size", "the padded piece size; computed when absent, checked when given"),
    "minReplicas": ("int", f"live deals each chunk needs, 1 to {MAX_REPLICAS}"),
    "maxReplicas": ("int", "never more live deals per piece (default minReplicas)"),
    "criteria": ("criteria", "which providers: the criteria language (string or list form)"),
    "client": ("wallet", "the f1/f3 wallet proposing the deals"),
    "keyPath": ("key", "its key file, inside deal_making_service.key_dir"),
    **DEAL_FIELDS,
}
NEW_REPLICATION_REQUIRED = ("minReplicas", "criteria", "client", "keyPath")

# POST /replication/{id}
UPDATE = {
    "minReplicas": NEW_REPLICATION["minReplicas"],
    "maxReplicas": NEW_REPLICATION["maxReplicas"],
    "criteria": NEW_REPLICATION["criteria"],
    "client": NEW_REPLICATION["client"],
    "keyPath": NEW_REPLICATION["keyPath"],
    "state": ("state", "paused, active or removed"),
}
