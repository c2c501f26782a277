#!/usr/bin/env python3
"""Per-EM-iteration time of the gmm CPU path against scikit-learn, side by side, from the same start.

For each case this writes a seeded data set (.npy, float64) and a start (weights, means and
precisions from a seeded k-means, as init.json), then times whole processes:

- scikit-learn: ``GaussianMixture(..., tol=0, max_iter=m, weights_init=..., means_init=...,
  precisions_init=...)`` in a fresh ``python3``, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset;
- gmm: ``gmm fit DATA --backend cpu --init-file init.json --tol 0 --max-iter m``, for each binary given.

Per-iteration time is (t(1 + n) − t(1)) / n, each t the minimum of --runs runs, so that loading,
start-up and initialisation cancel. It also times numpy's f64 matmul (the machine's practical peak)
and reports each gmm binary's GFLOP/s and share of that peak, with the flops counted as below.

Run from the crate root after ``cargo build --release``::

    python3 benches/compare_sklearn.py                      # target/release/gmm
    python3 benches/compare_sklearn.py --gmm before=/path/to/old/gmm --gmm after=target/release/gmm

Flops counted per EM iteration (useful work only; padding and the M-step are not counted):
full: N·K·(2d² + 8d) (triangular solve d(d+1), its squared norm 2d, the second moments d(d+1),
centring, weighting and first moments 4d); diag: N·K·9d.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

CASES = [
    # (n, d, k, covariance)
    (100_000, 8, 8, "full"),
    (100_000, 32, 16, "full"),
    (100_000, 32, 16, "diag"),
    (1_000_000, 8, 8, "full"),
    (1_000_000, 8, 8, "diag"),
]

SKLEARN = r"""
import json, sys, warnings
import numpy as np
from sklearn.mixture import GaussianMixture
warnings.simplefilter("ignore")
data, init, k, cov, iters = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
x = np.load(data)
s = json.load(open(init))
GaussianMixture(k, covariance_type=cov, tol=0.0, max_iter=iters, reg_covar=1e-6,
                init_params="random_from_data", weights_init=s["weights"], means_init=s["means"],
                precisions_init=s["precisions"]).fit(x)
"""


def make_case(dir_, n, d, k, cov, seed=0):
    """Seeded blobs and a start from a seeded k-means; returns (data path, init path)."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    labels = rng.integers(k, size=n)
    x = centres[labels] + rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5, size=(k, d))[labels]
    data = os.path.join(dir_, f"x_{n}_{d}.npy")
    if not os.path.exists(data):
        np.save(data, x)
    # k-means on a seeded subsample: only the start matters, and both sides get the same one.
    sub = x[rng.choice(n, size=min(n, 20_000), replace=False)]
    km = KMeans(k, n_init=1, random_state=seed).fit(sub)
    weights, means, precisions = [], [], []
    for j in range(k):
        pts = sub[km.labels_ == j]
        weights.append(len(pts) / len(sub))
        means.append(pts.mean(axis=0))
        c = np.cov(pts, rowvar=False) + 1e-6 * np.eye(d)
        precisions.append(np.linalg.inv(c) if cov == "full" else 1.0 / np.diag(c))
    init = os.path.join(dir_, f"init_{n}_{d}_{k}_{cov}.json")
    with open(init, "w") as f:
        json.dump(
            {
                "weights": weights,
                "means": [m.tolist() for m in means],
                "precisions": [p.tolist() for p in precisions],
            },
            f,
        )
    return data, init


def wall(cmd, env=None):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def per_iteration(cmd_for, n_iter, runs, env=None):
    """(t(1 + n) − t(1)) / n in ms, t the minimum over `runs` whole-process runs."""
    t1 = min(wall(cmd_for(1), env) for _ in range(runs))
    tn = min(wall(cmd_for(1 + n_iter), env) for _ in range(runs))
    return (tn - t1) / n_iter * 1e3


def flops(n, d, k, cov):
    return n * k * (2 * d * d + 8 * d if cov == "full" else 9 * d)


def matmul_peak():
    """numpy's f64 matmul rate in GFLOP/s, the best of a few 2048² products."""
    a = np.random.default_rng(0).normal(size=(2048, 2048))
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(5))
    return 2 * 2048**3 / best / 1e9


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gmm", action="append", metavar="[NAME=]PATH", help="a gmm binary (repeatable)")
    p.add_argument("--iters", type=int, default=10, help="n: the extra iterations timed")
    p.add_argument("--runs", type=int, default=3, help="runs per timing; the minimum is kept")
    p.add_argument("--cases", default="all", help="comma-separated case numbers (0-based) or 'all'")
    p.add_argument("--dir", help="where data and starts are written (default: a temporary folder)")
    a = p.parse_args()
    bins = [(g.split("=", 1) if "=" in g else ("gmm", g)) for g in (a.gmm or ["target/release/gmm"])]
    cases = CASES if a.cases == "all" else [CASES[int(i)] for i in a.cases.split(",")]
    sk_env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}

    peak = matmul_peak()
    print(f"numpy f64 matmul: {peak:.0f} GFLOP/s; {a.runs} runs, n = {a.iters}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dir_ = a.dir or tmp
        os.makedirs(dir_, exist_ok=True)
        for n, d, k, cov in cases:
            data, init = make_case(dir_, n, d, k, cov)
            sk = per_iteration(
                lambda m: [sys.executable, "-c", SKLEARN, data, init, str(k), cov, str(m)], a.iters, a.runs, sk_env
            )
            times = []
            for _, path in bins:
                cmd = lambda m, path=path: [  # noqa: E731
                    path, "-q", "fit", data, "-k", str(k), "--covariance", cov, "--init-file", init,
                    "--tol", "0", "--max-iter", str(m), "--backend", "cpu",
                ]
                times.append(per_iteration(cmd, a.iters, a.runs))
            rows.append(((n, d, k, cov), sk, times))
            print(f"done {n}x{d} K={k} {cov}", file=sys.stderr)

    head = "| case | scikit-learn | " + " | ".join(f"{name} | ratio" for name, _ in bins)
    head += " | " + " | ".join(f"{name} GFLOP/s (% peak)" for name, _ in bins) + " |"
    print(head)
    print("|" + " --- |" * (2 + 3 * len(bins)))
    for (n, d, k, cov), sk, times in rows:
        case = f"{n // 1000}k×{d}, K={k} {cov}" if n < 1_000_000 else f"{n // 1_000_000}M×{d}, K={k} {cov}"
        cells = [f"{t:,.0f} ms | {sk / t:.1f}×" for t in times]
        rates = [f"{flops(n, d, k, cov) / t / 1e6:.0f} ({flops(n, d, k, cov) / t / 1e6 / peak:.0%})" for t in times]
        print(f"| {case} | {sk:,.0f} ms | " + " | ".join(cells) + " | " + " | ".join(rates) + " |")


if __name__ == "__main__":
    main()
