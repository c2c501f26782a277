#!/usr/bin/env python3
"""Checks benches/peers/torch_em.py against scikit-learn's GaussianMixture, in float64 on the CPU.

From the same start (means, uniform weights, identity precisions), scikit-learn with max_iter=m
and tol=0 reports as lower_bound_ the mean log-likelihood of the m-th E-step, and holds the
parameters after m M-steps; torch_em's m-th iteration must give the same numbers. Run for
m = 1..3, full and diag, with chunks smaller than N so the chunked accumulation is exercised.

Prints each difference; exits 1 if any relative difference exceeds 1e-9.
Usage: python3 benches/peers/check_torch_em.py
"""

import os
import sys
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_em  # noqa: E402

TOL = 1e-9


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def check(n, d, k, cov_type, chunk, seed, iters=3):
    dev = torch.device("cpu")
    x, g = torch_em.make_blobs(n, d, k, seed, dev, torch.float64)
    start = torch_em.initial_params(x, k, cov_type, g)
    xn = x.numpy()
    precisions_init = (np.broadcast_to(np.eye(d), (k, d, d)).copy() if cov_type == "full"
                       else np.ones((k, d)))

    params = start
    worst = 0.0
    for m in range(1, iters + 1):
        params, lb = torch_em.em_iteration(x, params, cov_type, chunk)
        gm = GaussianMixture(
            n_components=k, covariance_type=cov_type, tol=0.0, reg_covar=1e-6, max_iter=m,
            n_init=1, init_params="random_from_data", random_state=0,
            weights_init=start["weights"].numpy(), means_init=start["means"].numpy(),
            precisions_init=precisions_init,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(xn)
        diffs = {
            "lower_bound": rel(float(lb), gm.lower_bound_),
            "weights": rel(params["weights"].numpy(), gm.weights_),
            "means": rel(params["means"].numpy(), gm.means_),
            "covariances": rel(params["covariances"].numpy(), gm.covariances_),
            "prec_chol": rel(params["prec_chol"].numpy(), gm.precisions_cholesky_),
        }
        worst = max(worst, *diffs.values())
        print(f"{cov_type:<5} N={n:<5} d={d:<3} K={k:<3} chunk={chunk:<4} iter {m}: "
              f"lower bound torch {float(lb):.12f} sklearn {gm.lower_bound_:.12f}; rel diff "
              + ", ".join(f"{key} {v:.1e}" for key, v in diffs.items()))
    return worst


def main():
    torch.set_default_dtype(torch.float64)
    worst = 0.0
    for cov_type in ("full", "diag"):
        worst = max(worst, check(n=600, d=5, k=4, cov_type=cov_type, chunk=128, seed=0))
        worst = max(worst, check(n=400, d=12, k=7, cov_type=cov_type, chunk=97, seed=1))
        worst = max(worst, check(n=500, d=3, k=9, cov_type=cov_type, chunk=500, seed=2))
    ok = worst <= TOL
    print(f"worst relative difference {worst:.2e} (tolerance {TOL:.0e}): {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
