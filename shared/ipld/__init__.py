"""IPLD for the data path: UnixFS DAGs, CARv1 files and Filecoin piece commitments."""
from .commp import CommP, Piece
from .pack import PackCancelled, PackEntry, PackResult, SourceChanged, pack_chunk, pack_path

__all__ = ["CommP", "Piece", "PackCancelled", "PackEntry", "PackResult", "SourceChanged", "pack_chunk", "pack_path"]
