"""Throughput of commP and of the one-pass pack on a seeded random file; prints targets alongside.

    .venv/bin/python bench/pack.py [--size 1GiB] [--dir /tmp] [--runs 3]

`singularity commp` of the same input is timed with --threads 1 and with one thread per core
(`make bench` runs it on 2 GiB).

Inline preparation (issue 14) is timed against a normal one in the same run: the same chunk packed
with its CAR written and with only its layout recorded, each in a child process that reports the
bytes it wrote to storage (/proc/self/io write_bytes) and what is left in its out_dir.

With --runs N the pack runs N times on the same input; the best run is the row shown, with the
spread of all runs beside it. CPU time is split into user and sys: user is hashing (sha256 for
the CIDs, commP), sys is mostly reading the source and writing the CAR.
"""
import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from shared.config import parse_size  # noqa: E402
from shared.ipld import commp, commp_threads  # noqa: E402

MiB = 1 << 20
BLOCK = 4 * MiB


def make_file(path: str, size: int, seed: int = 42) -> None:
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(MiB, left)
            f.write(rnd.randbytes(n))
            left -= n


def timed_hash(path: str, update) -> float:
    """Seconds spent in update() over the file, read outside the timer (page cache)."""
    spent = 0.0
    buf = bytearray(BLOCK)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            t = time.perf_counter()
            update(memoryview(buf)[:n])
            spent += time.perf_counter() - t
    return spent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--dir", default=None, help="where to put the input and the CAR")
    ap.add_argument("--runs", type=int, default=1, help="pack runs; the best is reported, with the spread")
    args = ap.parse_args()
    size = parse_size(args.size)
    work = tempfile.mkdtemp(prefix="bench-pack-", dir=args.dir)
    try:
        os.mkdir(os.path.join(work, "src"))
        src = os.path.join(work, "src", "input.bin")
        make_file(src, size)
        os.sync()  # the input's writeback must not run during the timed pack
        mb = size / 1e6

        sha = hashlib.sha256()
        sha_s = timed_hash(src, sha.update)
        h = commp.CommP()
        cp_s = timed_hash(src, h.update)
        t = time.perf_counter()
        h.digest()
        cp_s += time.perf_counter() - t

        # The child reports its own peak (VmHWM): ru_maxrss of a child carries over this script's peak.
        code = ("import json,sys; from shared.ipld.pack import pack_path; r=pack_path(sys.argv[1], sys.argv[2]);"
                "hwm=[int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0];"
                "print(json.dumps({'pieceCid': r.piece_cid, 'carSize': r.car_size, 'direct': r.direct_bytes,"
                " 'rss_mb': hwm / 1024}))")
        runs = []
        for i in range(args.runs):
            out = os.path.join(work, f"out{i}")
            os.mkdir(out)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code, src, out], cwd=REPO, check=True, capture_output=True,
                                  text=True)
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            shutil.rmtree(out)
            runs.append({"wall": wall, "user": after.ru_utime - before.ru_utime,
                         "sys": after.ru_stime - before.ru_stime,
                         **json.loads(proc.stdout)})
        if len({(r["pieceCid"], r["carSize"]) for r in runs}) != 1:
            raise SystemExit(f"runs disagree: {runs}")
        # `singularity commp` of the input: the piece tree on one thread, then on every core.
        singularity = os.path.join(os.path.dirname(sys.executable), "singularity")
        one_shot = {}
        for threads in ("1", None):
            t = time.perf_counter()
            proc = subprocess.run([singularity, "commp", src, "--json", *(["--threads", threads] if threads else [])],
                                  check=True, capture_output=True, text=True)
            one_shot[threads] = (time.perf_counter() - t, json.loads(proc.stdout)["pieceCid"])
        if one_shot["1"][1] != one_shot[None][1]:
            raise SystemExit(f"commp threads disagree: {one_shot}")
        gib = size / (1 << 30)
        best = min(runs, key=lambda r: r["wall"])
        res = best
        cpu = best["user"] + best["sys"]

        def spread(values, fmt):
            return "" if len(values) < 2 else f"(runs {fmt(min(values))}..{fmt(max(values))})"

        sha_rate, cp_rate = mb / sha_s, mb / cp_s
        direct = res["direct"]
        rows = [
            ("input", f"{size / MiB:.0f} MiB seeded random", ""),
            ("load average", "%.2f %.2f %.2f" % os.getloadavg(), ""),
            ("hashlib sha256 (baseline)", f"{sha_rate:.0f} MB/s", ""),
            ("commP, one core" + ("" if commp.native_available() else " (PURE PYTHON)"),
             f"{cp_rate:.0f} MB/s = {cp_rate / sha_rate:.2f}x sha256", "target >= 0.22x sha256"),
            ("singularity commp, one thread", f"{mb / one_shot['1'][0]:.0f} MB/s", ""),
            (f"singularity commp, {commp_threads.cores()} threads",
             f"{mb / one_shot[None][0]:.0f} MB/s = {one_shot['1'][0] / one_shot[None][0]:.2f}x one thread",
             "target >= 1.6x on 2 cores"),
            ("pack (CAR + commP), wall",
             f"{mb / best['wall']:.0f} MB/s " + spread([mb / r["wall"] for r in runs], lambda v: f"{v:.0f}"),
             "target >= 350 MB/s"),
            ("pack CPU",
             f"{cpu / gib:.2f} CPU-s/GiB " + spread([(r["user"] + r["sys"]) / gib for r in runs], lambda v: f"{v:.2f}"),
             "target <= 3.5 CPU-s/GiB"),
            ("  of which user / sys", f"{best['user'] / gib:.2f} / {best['sys'] / gib:.2f} CPU-s/GiB", ""),
            ("CAR written with O_DIRECT",
             f"{'yes' if direct else 'NO (buffered)'}, {direct / MiB:.0f} of {res['carSize'] / MiB:.0f} MiB", ""),
            ("pack peak RSS", f"{max(r['rss_mb'] for r in runs):.0f} MB", "target <= 300 MB"),
            ("pack result", f"{res['pieceCid']} car {res['carSize']} B", ""),
        ]
        rows += inline_rows(work, os.path.dirname(src), size, args.runs)
        for name, value, target in rows:
            print(f"{name:<32} {value:<44} {target}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# A chunk of the input's folder packed as the worker packs it, normal or inline (layout only).
_CHUNK = ("import json,os,sys; from shared.ipld.pack import pack_chunk, scan_dir;"
          "from shared.ipld.layout import Recorder;"
          "files, dirs = scan_dir(sys.argv[1]); rec = Recorder(files) if sys.argv[3] == 'inline' else None;"
          "r = pack_chunk(files, sys.argv[2], empty_dirs=dirs, layout=rec);"
          "io = dict(l.split(': ') for l in open('/proc/self/io').read().splitlines());"
          "out = sum(os.path.getsize(os.path.join(sys.argv[2], f)) for f in os.listdir(sys.argv[2]));"
          "print(json.dumps({'pieceCid': r.piece_cid, 'written': int(io['write_bytes']), 'out_dir': out,"
          " 'layout': rec.stats() if rec else None}))")


def inline_rows(work: str, src_dir: str, size: int, runs: int) -> list[tuple[str, str, str]]:
    """Normal vs inline pack of the same chunk, alternating, best of `runs` each."""
    mb = size / 1e6
    best: dict[str, dict] = {}
    for i in range(max(runs, 1)):
        for mode in ("normal", "inline"):
            out = os.path.join(work, f"chunk-{mode}-{i}")
            os.mkdir(out)
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _CHUNK, src_dir, out, mode], cwd=REPO, check=True,
                                  capture_output=True, text=True)
            result = {"wall": time.perf_counter() - t, **json.loads(proc.stdout)}
            shutil.rmtree(out)
            if mode not in best or result["wall"] < best[mode]["wall"]:
                best[mode] = result
    normal, inline = best["normal"], best["inline"]
    if normal["pieceCid"] != inline["pieceCid"]:
        raise SystemExit(f"inline and normal packs disagree: {normal} {inline}")
    written = max(inline["written"], inline["out_dir"])
    layout = inline["layout"]
    return [
        ("chunk pack, normal (CAR)", f"{mb / normal['wall']:.0f} MB/s, wrote {normal['written'] / MiB:.0f} MiB", ""),
        ("chunk pack, inline (layout)", f"{mb / inline['wall']:.0f} MB/s = {normal['wall'] / inline['wall']:.2f}x "
                                        "normal", "target >= 1.0x"),
        ("  inline bytes written", f"{written} B = {100 * written / size:.4f}% of the data",
         "target < 1%"),
        ("  inline layout", f"{layout['bytes']} B in {layout['documents']} documents", ""),
    ]


if __name__ == "__main__":
    main()
