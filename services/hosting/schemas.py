"""What the hosting service accepts and answers (the routes declare these; see shared/schema.py)."""
from shared.operations import Content, Empty
from shared.schema import Json, Str, Text, record

CID = Str("a CID in its canonical base32 form (anything else is a 404)", max_length=200,
          example="bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")
DATA_CID = Str("the CAR's root (data) CID", pattern="^[a-z0-9]+$", max_length=200,
               example="bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")
PREPARATION = Str("a preparation's name or id", max_length=300)
DATASET_PATH = Text("a file or folder inside the dataset")

RANGE_HEADERS = {
    "Range": Text("one byte range, e.g. bytes=0-1023 or bytes=-512"),
    "If-Range": Text("the ETag the client holds: the range applies only if it still matches"),
    "If-None-Match": Text("an ETag: 304 when it matches"),
}


def file_answers(media_type: str, what: str) -> dict:
    """The statuses of a file served with ranges and ETags."""
    return {200: Content(media_type, what), 206: Content(media_type, f"the requested range of {what}"),
            304: Empty("the client's copy (If-None-Match) is current")}


RANGE_ERRORS = {404: "not on this host (or not a canonical CID)", 416: "the range is outside the file",
                409: "an inline chunk whose source file changed since it was prepared (detail.file names it)",
                410: "an inline chunk whose source file is gone (detail.file names it)"}

INDEX = record({"id": Text(), "name": Text(), "indexCid": Text("the dataset index's root"),
                "indexPin": Json("its pinning status in kubo", nullable=True)}, name="DatasetIndex")
