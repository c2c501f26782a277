#!/usr/bin/env python3
"""``gmm_gpu.GaussianMixture.fit`` against scikit-learn's, from Python, from the same start.

One seeded data set (default 1,000,000 x 8, K = 8, full covariances, float64) and one start
(weights, means and precisions from a seeded scikit-learn KMeans's labels), given to both as
``weights_init``, ``means_init`` and ``precisions_init`` with ``tol=0``, so both run the same EM
for exactly ``max_iter`` iterations. Each fit is timed whole, in this process (the minimum of
--runs); the per-iteration time is (t(1 + n) − t(1)) / n, so that validation, copies and set-up
cancel. It then checks that the two fits agree.

    pip install ./python && python3 python/benches/fit_vs_sklearn.py [--n 1000000] [--backend cpu]
"""

import argparse
import os
import time
import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters

from gmm_gpu import GaussianMixture


def start_of(X, k, covariance_type, seed):
    labels = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(X[:200_000]).predict(X)
    resp = np.zeros((len(X), k))
    resp[np.arange(len(X)), labels] = 1
    weights, means, covariances = _estimate_gaussian_parameters(X, resp, 1e-6, covariance_type)
    weights /= weights.sum()
    precisions = np.linalg.inv(covariances) if covariance_type in ("full", "tied") else 1 / covariances
    return dict(weights_init=weights, means_init=means, precisions_init=precisions)


def best_time(make, X, runs):
    best, model = float("inf"), None
    for _ in range(runs):
        gm = make()
        t = time.perf_counter()
        gm.fit(X)
        best = min(best, time.perf_counter() - t)
        model = gm
    return best, model


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--covariance-type", default="full")
    p.add_argument("--iters", type=int, default=20, help="the n of t(1 + n) - t(1)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--backend", default="cpu")
    p.add_argument("--float32", action="store_true", help="float32 data (for the GPU path)")
    a = p.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0 runs to max_iter on purpose

    rng = np.random.RandomState(0)
    centres = rng.uniform(-5, 5, size=(a.k, a.d))
    X = centres[rng.randint(a.k, size=a.n)] + rng.normal(size=(a.n, a.d))
    start = start_of(X, a.k, a.covariance_type, seed=0)
    if a.float32:
        X = X.astype(np.float32)
    common = dict(n_components=a.k, covariance_type=a.covariance_type, tol=0, **start)

    print(f"{a.n} x {a.d}, K = {a.k} {a.covariance_type}, {X.dtype}; {os.cpu_count()} CPUs; "
          f"min of {a.runs} runs; per iteration = (t({1 + a.iters}) - t(1)) / {a.iters}")
    results = {}
    for name, make in [
        (f"gmm_gpu ({a.backend})", lambda m: GaussianMixture(max_iter=m, backend=a.backend, **common)),
        ("scikit-learn", lambda m: SklearnGaussianMixture(max_iter=m, **common)),
    ]:
        t1, _ = best_time(lambda: make(1), X, a.runs)
        tn, model = best_time(lambda: make(1 + a.iters), X, a.runs)
        per = (tn - t1) / a.iters
        results[name] = model
        print(f"{name:>20}: fit of {1 + a.iters} iterations {tn:8.3f} s, of 1 {t1:7.3f} s; "
              f"per iteration {1e3 * per:8.2f} ms")
    ours, theirs = results.values()
    rel = max(
        float(np.max(np.abs(getattr(ours, f) - getattr(theirs, f)) / np.maximum(np.abs(getattr(theirs, f)), 1e-12)))
        for f in ("weights_", "means_", "covariances_")
    )
    print(f"largest relative difference in weights, means, covariances: {rel:.2e}; "
          f"lower bounds {ours.lower_bound_:.12f} vs {theirs.lower_bound_:.12f}")


if __name__ == "__main__":
    main()
