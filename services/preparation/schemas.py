"""What the preparation API accepts and answers (the routes declare these; see shared/schema.py)."""
from shared.operations import paged
from shared.schema import Arr, Bool, Int, Json, Map, Num, Obj, Size, Str, Text, record

STATES = ("active", "paused", "removed")

ID = Str("the preparation's id", max_length=100, example="65a1f0c2e4b0a1b2c3d4e5f6")

NEW_PREPARATION = Obj({
    "name": Str("a unique name for the dataset: one file name of at most 255 bytes of UTF-8", max_length=255,
                example="my-dataset"),
    "path": Str("an existing, readable directory on the preparation host (stored as an absolute path)",
                example="/data/my-dataset"),
    "dealSize": Size("the piece size: a power of two between 256 B and 64 GiB "
                     "(default: deal_preparation_service.default_deal_size)"),
    "minSize": Size("the smallest chunk of data (default 0.6 x dealSize)"),
    "maxSize": Size("the largest chunk of data, below dealSize x 127/128 (default 0.9 x dealSize)"),
    "inline": Bool("write no CAR files: record each CAR's layout and serve pieces from the dataset's own files "
                   "(default: deal_preparation_service.inline)"),
}, required=("name", "path"), closed=True, name="NewPreparation")

NEW_STATE = Obj({"state": Str("pause or resume scanning and packing, or delete every record",
                              enum=STATES),
                  "rescan": Bool("true: walk the dataset again and pack what is new or changed into new chunks "
                                 "(give either state or rescan)")},
                 closed=True, name="NewState")

CREATED = record({"id": Text("the new preparation's id")}, name="Created", description="the preparation is created")
STATE = Obj({"id": Text(), "state": Text(enum=STATES),
             "rescan": Text("the rescan asked (with rescan: true); it runs when the preparation is active")},
            required=("id", "state"), name="PreparationState", description="the state now")

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
    "indexStale": Bool("the dataset changed since the index was built (a rescan); it is being rebuilt"),
    "rescanPending": Bool("a rescan, or the refresh of chunks that failed on changed files, is asked or running"),
    "lastRescan": Json("what the last rescan found: added, changed, unchanged, deleted, refreshed, at",
                       nullable=True),
    "createdAt": Num("Unix seconds"),
    "inline": Bool("no CAR files: pieces are assembled from the dataset's files"),
    "generationCompleted": Int(), "generationInprogress": Int(), "generationFailed": Int(),
    "generationTotal": Int(), "bytesDone": Int(), "rate": Int("bytes per second being packed"),
    "generationUnservable": Int("completed inline chunks refused because a source file changed or vanished, "
                                "which `prep resume` rebuilds"),
}, name="PreparationSummary")

CHUNK = record({
    "id": Text(), "index": Int(), "workerId": Text(nullable=True), "status": Text(),
    "fileCount": Int(), "size": Int(), "dataCid": Text(nullable=True), "pieceCid": Text(nullable=True),
    "pieceSize": Int(nullable=True), "carSize": Int(nullable=True), "error": Text(nullable=True),
    "inline": Bool("served from its layout and the source files (no CAR file)"),
    "unservable": Json("why an inline chunk can no longer be served: {file, reason, status, at}", nullable=True),
}, name="Chunk")

PROBLEM = record({"kind": Text("error or skipped"), "path": Text(), "reason": Text()}, name="ScanProblem")

DETAILS = record({**SUMMARY.fields, **paged("generationRequests", CHUNK, "the preparation's chunks"),
                  "problems": Arr(PROBLEM, "the first 100")}, name="PreparationDetails")

FILE_ENTRY = record({
    "path": Text(), "relativePath": Text(), "name": Text(), "directory": Bool(), "size": Int(), "mtime": Num(),
    "start": Int(), "end": Int(), "cid": Text(nullable=True),
}, name="ChunkFile", description="a file, or the range [start, end) of one, or an empty directory")

GENERATION = record({**CHUNK.fields, "preparationId": Text(), "name": Text(), "path": Text(), "state": Text(),
                     **paged("fileList", FILE_ENTRY, "the chunk's entries")}, name="ChunkDetails")

MAPPED_FILE = record({
    "relativePath": Text(), "directory": Bool(), "size": Int(), "start": Int(), "end": Int(),
    "version": Int("the version of the path this entry belongs to (a rescan adds one per change)"),
    "latest": Bool("of the newest version: what the index, bundles and retrievals serve"),
    "deleted": Bool("a tombstone: the path was gone at this version (no chunk)"),
    "cid": Text(nullable=True), "chunk": Int(nullable=True), "generationId": Text(nullable=True),
    "status": Text(nullable=True),
    "dataCid": Text(nullable=True), "pieceCid": Text(nullable=True), "pieceSize": Int(nullable=True),
}, name="MappedFile")

FILES = record({"id": Text(), "name": Text(), **paged("files", MAPPED_FILE, "the entries under the path")},
               name="FileMapping")

PREPARATIONS = record(paged("preparations", SUMMARY), name="PreparationList")

MATERIALIZE = Obj({"chunk": Int("only this chunk (its index); default: every inline chunk", minimum=0,
                                 maximum=2**63 - 1)},
                  closed=True, name="Materialize")
PRUNE = Obj({"minActive": Int("providers with an active deal a chunk needs before its CAR file goes (default 3)",
                              minimum=1, maximum=1000)}, closed=True, name="PruneCars")
QUEUED = record({"id": Text(), "queued": Int("jobs queued (or asked again)"),
                 "chunks": Int("chunks the request applies to")}, name="ConversionsQueued")
CONVERSION = record({
    "id": Text(), "chunk": Int(), "generationId": Text(), "action": Text(enum=("materialize", "prune")),
    "minActive": Int(nullable=True), "status": Text("active, completed or error"), "workerId": Text(nullable=True),
    "error": Text(nullable=True), "createdAt": Num(nullable=True), "completedAt": Num(nullable=True),
}, name="Conversion")
CONVERSIONS = record({"id": Text(), **paged("conversions", CONVERSION, "oldest first")}, name="ConversionList")

PATH_PREFIX = Str("a file or folder of the dataset, relative to its root (default: all)", blank=True, default="")

_BEAT = {"host": Text(nullable=True), "pid": Int(nullable=True), "startedAt": Num("Unix seconds", nullable=True),
         "lastHeartbeat": Num("Unix seconds", nullable=True), "age": Num("seconds since then", nullable=True),
         "alive": Bool("reported within deal_preparation_service.worker_timeout")}
RUN = record({**_BEAT, "modules": Arr(Text()), "database": Json("the database the run uses", nullable=True)},
             name="RunningProcess", description="a `singularity run` and its modules")
JOB = record({"kind": Text(enum=("scan", "generation", "conversion")), "id": Text(), "preparationId": Text(),
              "name": Text(nullable=True), "index": Int(nullable=True), "claimedAt": Num(nullable=True),
              "size": Int(nullable=True), "bytesDone": Int(nullable=True)}, name="ClaimedJob")
WORKER = record({"id": Text(), **_BEAT, "slots": Int(nullable=True), "jobs": Arr(JOB)}, name="Worker")
DATABASE = record({"embedded": Bool(), "name": Text(), "server": Text("nx-27017 or mongodb", nullable=True),
                   "version": Text(nullable=True), "schemaVersion": Int("what the database holds"),
                   "codeSchemaVersion": Int("what this code knows"),
                   "migrating": Json("the migration under way", nullable=True)}, name="DatabaseStatus")
STATUS = record({
    "time": Num("Unix seconds"), "hosts": Arr(RUN), "workers": Arr(WORKER),
    "truncated": Bool("more heartbeats than are listed"), "database": DATABASE,
    "counts": record({name: Map(Int(minimum=0), "how many in each state")
                      for name in ("preparations", "chunks", "deals")}),
}, name="SuiteStatus")

HISTORY = record({
    "bucket": Int("bucket length, seconds", minimum=1), "since": Int("start of the window, Unix seconds"),
    "until": Int("end of the window, Unix seconds"),
    "points": Arr(record({
        "time": Int("the end of the bucket, Unix seconds (the last one ends at until)"),
        "bytes": Int("dataset bytes in the chunks packed during the bucket", minimum=0),
        "carBytes": Int("the size of their CAR files", minimum=0),
        "chunks": Int("chunks packed", minimum=0),
        "files": Int("file entries in them (files, ranges of split files, empty directories)", minimum=0),
    }, name="PreparedPoint"), "one per bucket, oldest first"),
}, name="PreparedHistory", description="what was packed into CARs in each bucket of the window")
