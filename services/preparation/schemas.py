"""What the preparation API accepts and answers (the routes declare these; see shared/schema.py)."""
from shared.schema import Arr, Bool, Int, Json, Num, Obj, Size, Str, Text, record

STATES = ("active", "paused", "removed")

ID = Str("the preparation's id", max_length=100, example="65a1f0c2e4b0a1b2c3d4e5f6")

NEW_PREPARATION = Obj({
    "name": Str("a unique name for the dataset", max_length=200, example="my-dataset"),
    "path": Str("an existing, readable directory on the preparation host (stored as an absolute path)",
                example="/data/my-dataset"),
    "dealSize": Size("the piece size: a power of two between 256 B and 64 GiB "
                     "(default: deal_preparation_service.default_deal_size)"),
    "minSize": Size("the smallest chunk of data (default 0.6 x dealSize)"),
    "maxSize": Size("the largest chunk of data, below dealSize x 127/128 (default 0.9 x dealSize)"),
}, required=("name", "path"), closed=True, name="NewPreparation")

NEW_STATE = Obj({"state": Str("pause or resume scanning and packing, or delete every record",
                              enum=STATES)}, required=("state",), closed=True, name="NewState")

CREATED = record({"id": Text("the new preparation's id")}, name="Created", description="the preparation is created")
STATE = record({"id": Text(), "state": Text(enum=STATES)}, name="PreparationState", description="the state now")

SUMMARY = record({
    "id": Text(), "name": Text(), "path": Text(),
    "dealSize": Text("e.g. \"32 GiB\""), "minSize": Text(), "maxSize": Text(),
    "state": Text("what was asked: active or paused"),
    "scanningStatus": Text("active, paused, completed or error"),
    "scanningError": Text(nullable=True),
    "scannedFiles": Int(), "scannedBytes": Int(),
    "errorCount": Int("files that could not be read"), "skippedCount": Int("symlinks and special files"),
    "indexCid": Text("the dataset index's root, once every chunk is packed", nullable=True),
    "indexError": Text(nullable=True),
    "indexPin": Json("the index's pinning status in kubo", nullable=True),
    "createdAt": Num("Unix seconds"),
    "generationCompleted": Int(), "generationInprogress": Int(), "generationFailed": Int(),
    "generationTotal": Int(), "bytesDone": Int(), "rate": Int("bytes per second being packed"),
}, name="PreparationSummary")

CHUNK = record({
    "id": Text(), "index": Int(), "workerId": Text(nullable=True), "status": Text(),
    "fileCount": Int(), "size": Int(), "dataCid": Text(nullable=True), "pieceCid": Text(nullable=True),
    "pieceSize": Int(nullable=True), "carSize": Int(nullable=True), "error": Text(nullable=True),
}, name="Chunk")

PROBLEM = record({"kind": Text("error or skipped"), "path": Text(), "reason": Text()}, name="ScanProblem")

DETAILS = record({**SUMMARY.fields, "generationRequests": Arr(CHUNK), "problems": Arr(PROBLEM, "the first 100"),
                  "offset": Int(), "limit": Int()}, name="PreparationDetails")

FILE_ENTRY = record({
    "path": Text(), "relativePath": Text(), "name": Text(), "directory": Bool(), "size": Int(), "mtime": Num(),
    "start": Int(), "end": Int(), "cid": Text(nullable=True),
}, name="ChunkFile", description="a file, or the range [start, end) of one, or an empty directory")

GENERATION = record({**CHUNK.fields, "preparationId": Text(), "name": Text(), "path": Text(), "state": Text(),
                     "fileList": Arr(FILE_ENTRY), "offset": Int(), "limit": Int()}, name="ChunkDetails")

MAPPED_FILE = record({
    "relativePath": Text(), "directory": Bool(), "size": Int(), "start": Int(), "end": Int(),
    "cid": Text(nullable=True), "chunk": Int(), "generationId": Text(), "status": Text(),
    "dataCid": Text(nullable=True), "pieceCid": Text(nullable=True), "pieceSize": Int(nullable=True),
}, name="MappedFile")

FILES = record({"id": Text(), "name": Text(), "files": Arr(MAPPED_FILE), "offset": Int(), "limit": Int()},
               name="FileMapping")

PREPARATIONS = Arr(SUMMARY, "every preparation")

PATH_PREFIX = Str("a file or folder of the dataset, relative to its root (default: all)", blank=True, default="")
