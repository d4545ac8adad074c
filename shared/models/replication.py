"""Replication requests and what the replicators keep between rounds."""
from __future__ import annotations

from shared.models.deals import DEAL_STATE
from shared.models.preparation import REPLICATION, Status, new_id, now

INDEXES: list[tuple[str, list[tuple[str, int]], dict]] = []

# --- Replication (services/replication) ---
# Exponential backoff after a refused or failed proposal: one document per provider (`_id` the
# provider) and per (piece, provider) (`_id` "piece|provider"): {failures, until, error, updatedAt}.
REPLICATION_BACKOFF = "ReplicationBackoff"
# A short lease per piece, held while one replicator counts that piece's live deals and proposes
# one more: `_id` the piece CID, {workerId, requestId, provider, at}. Inserting it is atomic, so
# two replicators never both propose the last replica that maxReplicas allows.
REPLICA_LOCK = "ReplicaLock"

INDEXES += [
    (REPLICATION, [("preparationId", 1)], {}),
    (REPLICATION, [("state", 1), ("workerId", 1)], {}),
    (DEAL_STATE, [("createdAt", 1)], {}),
    (REPLICATION_BACKOFF, [("until", 1)], {}),
]


def replication_request(fields: dict) -> dict:
    """fields: the checked request (services/replication/requests.py)."""
    return {
        "_id": new_id(), **fields,
        "state": "active",  # what the user asked for: active or paused
        "status": Status.ACTIVE.value,  # of the replication: active, completed or error
        "workerId": None, "error": None, "createdAt": now(), "nextRoundAt": 0.0, "lastRoundAt": None,
        # What the last round found, so lists cost no query per request.
        "replicationFactor": 0.0, "replicationCompleted": 0, "replicationInProgress": 0, "replicationTotal": 0,
    }
