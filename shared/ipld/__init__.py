"""IPLD for the data path: UnixFS DAGs, CARv1 files and Filecoin piece commitments."""
import importlib

__all__ = ["CommP", "Piece", "PackCancelled", "PackEntry", "PackResult", "SourceChanged", "pack_chunk", "pack_path"]
_HOME = {"CommP": "commp", "Piece": "commp"}


def __getattr__(name: str):
    # Loaded on first use: `singularity commp` needs commp alone, not the packer.
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME.get(name, 'pack')}", __name__), name)
