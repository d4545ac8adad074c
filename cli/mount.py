"""`singularity mount NAME|INDEX_CID MOUNTPOINT`: a dataset as a read-only file system (FUSE).

The file-system operations are services/indexing/mountfs.py; this wraps them in mfusepy (ctypes
over libfuse 2 or 3) when the machine has FUSE: /dev/fuse, libfuse, and the binding
(`pip install mfusepy`). Without them the command says which one is missing, and exits 1.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import List, Optional

import typer

from cli.client import CliError
from cli.common import get_config
from cli.output import print_json

# The retrieval client is imported by the command itself, so that every other command starts without it.


def fuse_binding():
    """The mfusepy (or fusepy) module, or a CliError saying what this machine lacks."""
    if not os.path.exists("/dev/fuse"):
        raise CliError("FUSE is not available on this machine: /dev/fuse is missing "
                       "(load the fuse kernel module, or give the container the device)")
    try:
        import mfusepy as fuse  # type: ignore[import-not-found]
    except ImportError:
        try:
            import fuse  # type: ignore[import-not-found,no-redef]  # fusepy
        except ImportError:
            raise CliError("FUSE is not available to singularity: install the binding (pip install mfusepy)") from None
        except OSError as exc:
            raise CliError(f"FUSE is not available on this machine: libfuse: {exc}") from None
    except OSError as exc:  # the binding loads libfuse when imported
        raise CliError(f"FUSE is not available on this machine: libfuse: {exc} (install fuse3 / libfuse3)") from None
    return fuse


def operations(fuse, fs):
    from services.indexing import mountfs

    class Operations(fuse.Operations):
        def _call(self, fn, *args):
            try:
                return fn(*args)
            except mountfs.FsError as exc:
                raise fuse.FuseOSError(exc.errno) from None
            except Exception:  # noqa: BLE001 - the kernel gets EIO, never a traceback
                raise fuse.FuseOSError(errno.EIO) from None

        def getattr(self, path, fh=None):
            return self._call(fs.getattr, path)

        def readdir(self, path, fh):
            return self._call(fs.readdir, path)

        def read(self, path, size, offset, fh):
            return self._call(fs.read, path, size, offset)

        def open(self, path, flags):
            if flags & (os.O_WRONLY | os.O_RDWR):
                raise fuse.FuseOSError(errno.EROFS)
            self._call(fs.getattr, path)
            return 0

    return Operations()


def register(app: typer.Typer) -> None:
    @app.command("mount")
    def mount(
        target: str = typer.Argument(..., help="DATASET_NAME, INDEX_CID, a DNSLink name or /ipns/NAME."),
        mountpoint: str = typer.Argument(..., help="An empty folder to mount the dataset on."),
        from_: Optional[List[str]] = typer.Option(None, "--from", help="Hosting service or provider endpoint; "
                                                  "repeat to fall back (default: discovered per piece)."),
        foreground: bool = typer.Option(True, "--foreground/--background", help="Stay attached until unmounted."),
        json_: bool = typer.Option(False, "--json", help="Print what is mounted as JSON before serving it."),
    ) -> None:
        """Mount a dataset read-only; file ranges are fetched when read, every block verified."""
        point = Path(mountpoint)
        if not point.is_dir():
            raise CliError(f"{mountpoint}: not a folder", exit_code=2)
        fuse = fuse_binding()
        from cli import retrieve as cli_retrieve
        from services.indexing import mountfs, names, retrieval
        config = get_config()
        srcs = cli_retrieve._sources(from_) if from_ else []
        retriever = retrieval.Retriever(srcs, ("car", "block"), None if from_ else cli_retrieve._discovery())
        head, path = retrieval.split_target(target.removeprefix("/ipns/"))
        if path:
            raise CliError("mount takes a dataset, not a path inside it", exit_code=2)
        if target.startswith("/ipns/"):
            index_cid = names.ipns(head, config.deal_preparation_service.ipfs_api)
        else:
            index_cid = names.resolve(head, retriever.index_cid_of, config.connection.dns_resolver)
        fs = mountfs.IndexFS(retriever, index_cid)
        if json_:
            print_json({"indexCid": index_cid, "mountpoint": str(point.resolve())})
        fuse.FUSE(operations(fuse, fs), str(point), foreground=foreground, ro=True, nothreads=True,
                  fsname=f"singularity:{index_cid}")
