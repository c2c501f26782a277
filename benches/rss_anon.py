#!/usr/bin/env python3
"""Peak anonymous memory (RssAnon, not page cache) of `gmm fit --backend cpu` on a large float32 .npy.

Writes a seeded float32 data set of about --gb gigabytes (four well-separated blobs, 8 features)
in slices, then runs ``gmm -q fit DATA -k K --covariance C --backend cpu --max-iter M`` for each
covariance type (k-means init included), reading /proc/PID/status every 2 ms, and prints the peak
RssAnon and the wall time of each. Linux only.

Run from the crate root after ``cargo build --release``::

    python3 benches/rss_anon.py --gb 2
    python3 benches/rss_anon.py --gb 2 --gmm before=/path/to/old/gmm --gmm after=target/release/gmm
"""

import argparse
import os
import subprocess
import tempfile
import time

import numpy as np


def write_data(path, n, d, seed=0):
    """Four blobs, written in slices of at most 4M rows so that this script holds little."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.arange(4)[:, None] + np.arange(d)[None, :]
    header = {"descr": "<f4", "fortran_order": False, "shape": (n, d)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        done = 0
        while done < n:
            m = min(4_000_000, n - done)
            x = centres[(np.arange(done, done + m) % 4)] + rng.standard_normal((m, d))
            f.write(x.astype("<f4").tobytes())
            done += m


def peak_rss_anon(cmd):
    """Runs cmd; returns (peak RssAnon in bytes, seconds, exit status)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd)
    peak = 0
    status = f"/proc/{p.pid}/status"
    while p.poll() is None:
        try:
            with open(status) as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.002)
    return peak, time.perf_counter() - start, p.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=2.0, help="data size in GB (10^9 bytes)")
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("-k", type=int, default=4)
    ap.add_argument("--max-iter", type=int, default=3)
    ap.add_argument("--gmm", action="append", metavar="[NAME=]PATH", help="a gmm binary (repeatable)")
    ap.add_argument("--dir", help="where the data is written (default: a temporary folder)")
    a = ap.parse_args()
    binaries = [g.split("=", 1) if "=" in g else [g, g] for g in (a.gmm or ["target/release/gmm"])]
    d = a.features
    n = int(a.gb * 1e9) // (4 * d)
    with tempfile.TemporaryDirectory(dir=a.dir) as tmp:
        data = os.path.join(tmp, "x.npy")
        write_data(data, n, d)
        size = os.path.getsize(data)
        print(f"data: {n} x {d} float32, {size / 1e9:.2f} GB; K = {a.k}, {a.max_iter} EM iterations, k-means init")
        print("| binary | covariance | peak RssAnon | wall |")
        print("| --- | --- | --- | --- |")
        for name, path in binaries:
            for cov in ["full", "tied", "diag", "spherical"]:
                out = os.path.join(tmp, "m.json")
                cmd = [path, "-q", "fit", data, "-k", str(a.k), "--covariance", cov, "--backend", "cpu",
                       "--max-iter", str(a.max_iter), "-o", out]
                peak, secs, rc = peak_rss_anon(cmd)
                note = "" if rc == 0 else f" (exit {rc})"
                print(f"| {name} | {cov} | {peak / 2**20:.0f} MiB | {secs:.1f} s{note} |", flush=True)


if __name__ == "__main__":
    main()
