"""Start-up time of the command line: `singularity --help` and `singularity commp` of a 1-byte
file, median of 10 runs each, beside `python -c pass` (the interpreter alone) measured in the same
run. Target: 150 ms.

    .venv/bin/python bench/cli.py [--runs 10]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 0.150


def median_seconds(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    singularity = os.path.join(os.path.dirname(sys.executable), "singularity")
    with tempfile.TemporaryDirectory() as tmp:
        one = os.path.join(tmp, "one")
        with open(one, "wb") as f:
            f.write(b"x")
        rows = [("python -c pass (baseline)", [sys.executable, "-c", "pass"], None),
                ("singularity --help", [singularity, "--help"], TARGET),
                ("singularity commp 1-byte file", [singularity, "commp", one], TARGET)]
        print(f"CLI start-up, median of {args.runs} (load average {os.getloadavg()[0]:.1f})")
        for name, command, target in rows:
            seconds = median_seconds(command, args.runs)
            verdict = "" if target is None else f"target <= {target * 1000:.0f} ms: " + (
                "met" if seconds <= target else "MISSED")
            print(f"  {name:<32} {seconds * 1000:7.1f} ms  {verdict}")


if __name__ == "__main__":
    main()
