#!/usr/bin/env python3
"""A plain PyTorch EM for Gaussian mixtures: the peer that `gmm bench` is measured against.

No third-party GMM library: batched, vectorised PyTorch, as a good PyTorch user would write it,
with scikit-learn's GaussianMixture semantics (log-space E-step through the Cholesky factor of the
precision, responsibilities normalised by log-sum-exp, M-step with reg_covar on the diagonal and
nk = sum(resp) + 10 eps). `benches/peers/check_torch_em.py` checks it against scikit-learn in
float64.

One EM iteration over X (N x d), processed in chunks of samples so the temporaries stay bounded:

  E-step   full:  Y = X @ U_cat - (mu_k @ U_k)   one GEMM (n, d) x (d, K*d) with the bias fused,
                  U_k the Cholesky factor of precision_k; |Y_k|^2 by one vector_norm pass;
                  log N_k = -(d log 2pi + |Y_k|^2)/2 + sum log diag U_k
           diag:  |.|^2 = [x, x^2] @ [-2 mu p ; p]^T + sum mu^2 p                     one GEMM
           log-sum-exp over k -> log-likelihood per sample; responsibilities by softmax
  M-step   Nk += sum r;  S1 += r^T X  (diag: r^T [x, x^2], one GEMM)
           full: W_k += sum_i r_ik y_ik y_ik^T with y = the E-step's Y (centred on the previous
                 means, whitened): one in-place sqrt(r) scaling, one batched GEMM; the finish
                 unwhitens (U^-T W U^-1) and shifts to the new means
  finish   (in float64, K x d x d work) means = S1 / Nk, covariances (+1e-6 I), Cholesky and
           triangular inverse -> U_k.

Cases (N is multiplied by --scale):
  A 1M x 8, K 8 full and diag; B 1M x 32, K 64 full; C 1M x 64, K 64 diag;
  D 1M x 128, K 1024 diag; E 100k x 32, K 16 full; F 100k x 512, K 16 full.

Usage: python3 benches/peers/torch_em.py [--case A|B|C|D|E|F|all] [--scale S] [--iters N]
           [--warmup N] [--device cuda|cpu] [--dtype float32|float64] [--chunk N] [--seed S]
           [--tf32] [--json]
"""

import argparse
import json
import math
import statistics
import sys
import time

import torch

CASES = {
    # name: (N, d, K, covariance types)
    "A": (1_000_000, 8, 8, ("full", "diag")),
    "B": (1_000_000, 32, 64, ("full",)),
    "C": (1_000_000, 64, 64, ("diag",)),
    "D": (1_000_000, 128, 1024, ("diag",)),
    "E": (100_000, 32, 16, ("full",)),
    "F": (100_000, 512, 16, ("full",)),
}

LOG_2PI = math.log(2.0 * math.pi)
REG_COVAR = 1e-6
# The temporaries of one chunk (bytes): the full E-step's (n, K*d) product, the full M-step's
# (K, n, d) centred samples, or the diag path's few (n, K) matrices.
DEFAULT_CHUNK_BYTES = 1 << 30


# ----------------------------------------------------------------------------------------------
# Data and start
# ----------------------------------------------------------------------------------------------


def make_blobs(n, d, k, seed, device, dtype):
    """Seeded blobs: K centres ~ N(0, 9 I), each sample a random centre plus N(0, I) noise."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    centres = 3.0 * torch.randn(k, d, generator=g, device=device, dtype=dtype)
    labels = torch.randint(0, k, (n,), generator=g, device=device)
    x = torch.randn(n, d, generator=g, device=device, dtype=dtype)
    x += centres[labels]
    return x, g


def initial_params(x, k, cov_type, g):
    """Means = K distinct random samples, covariances = I, weights uniform."""
    n, d = x.shape
    idx = torch.randperm(n, generator=g, device=x.device)[:k]
    means = x[idx].clone()
    weights = torch.full((k,), 1.0 / k, device=x.device, dtype=x.dtype)
    if cov_type == "full":
        prec_chol = torch.eye(d, device=x.device, dtype=x.dtype).expand(k, d, d).clone()
    else:
        prec_chol = torch.ones(k, d, device=x.device, dtype=x.dtype)
    return {"weights": weights, "means": means, "prec_chol": prec_chol}


def default_chunk(n, d, k, cov_type, itemsize, budget=DEFAULT_CHUNK_BYTES):
    if cov_type == "full":
        per_sample = k * d * itemsize  # one (n, K*d) or (K, n, d) temporary at a time
    else:
        per_sample = (3 * k + 2 * d) * itemsize  # (n, K) log-probs, resp, exp + [x, x^2]
    return max(1, min(n, budget // per_sample))


# ----------------------------------------------------------------------------------------------
# EM
# ----------------------------------------------------------------------------------------------


class Prepared:
    """Per-iteration quantities derived from the parameters, shared by every chunk."""

    def __init__(self, params, cov_type):
        w, mu, pc = params["weights"], params["means"], params["prec_chol"]
        k, d = mu.shape
        self.cov_type = cov_type
        self.d = d
        self.k = k
        if cov_type == "full":
            log_det = torch.log(torch.diagonal(pc, dim1=-2, dim2=-1)).sum(-1)  # (K,)
            # U_cat[i, k*d + j] = U_k[i, j]
            self.u_cat = pc.permute(1, 0, 2).reshape(d, k * d)
            self.neg_mu_u = -torch.einsum("ki,kij->kj", mu, pc).reshape(k * d)
            self.const = torch.log(w) + log_det - 0.5 * d * LOG_2PI  # (K,)
        else:
            prec = pc * pc  # (K, d)
            log_det = torch.log(pc).sum(-1)
            # [x, x^2] @ b  ==  -(x^2 p^T - 2 x (mu p)^T) / 2
            self.b = torch.cat([mu * prec, -0.5 * prec], dim=1).t().contiguous()  # (2d, K)
            self.const = torch.log(w) + log_det - 0.5 * d * LOG_2PI - 0.5 * (mu * mu * prec).sum(-1)


def estep_chunk(xc, prep, xx=None, keep_y=False):
    """Log-sum-exp (n,) and responsibilities (n, K) of one chunk; with keep_y (full), also the
    whitened centred samples Y (n, K*d) for the M-step."""
    n = xc.shape[0]
    if prep.cov_type == "full":
        # Y = X U_cat - mu U, the bias fused into the GEMM; then |Y_k|^2 in one read.
        y = torch.addmm(prep.neg_mu_u, xc, prep.u_cat)  # (n, K*d)
        wlp = torch.linalg.vector_norm(y.view(n, prep.k, prep.d), dim=-1)  # (n, K)
        if not keep_y:
            del y
        wlp.square_().mul_(-0.5).add_(prep.const)
    else:
        wlp = torch.addmm(prep.const, xx, prep.b)  # (n, K)
    lse = torch.logsumexp(wlp, dim=1)  # (n,)
    resp = torch.softmax(wlp, dim=1)  # exp(wlp - lse), one fused pass
    if keep_y:
        return lse, resp, y
    return lse, resp


def em_iteration(x, params, cov_type, chunk, reg_covar=REG_COVAR):
    """One EM iteration. Returns (new params, lower bound under the old params as a 0-d tensor)."""
    n, d = x.shape
    mu_old = params["means"]
    k = mu_old.shape[0]
    dt, dev = x.dtype, x.device
    prep = Prepared(params, cov_type)
    nk = torch.zeros(k, device=dev, dtype=dt)
    ll = torch.zeros((), device=dev, dtype=dt)
    if cov_type == "full":
        s1 = torch.zeros(k, d, device=dev, dtype=dt)
        s2 = torch.zeros(k, d, d, device=dev, dtype=dt)
    else:
        s12 = torch.zeros(k, 2 * d, device=dev, dtype=dt)
    for start in range(0, n, chunk):
        xc = x[start : start + chunk]
        xx = None if cov_type == "full" else torch.cat([xc, xc * xc], dim=1)
        if cov_type == "full":
            lse, resp, y = estep_chunk(xc, prep, keep_y=True)
        else:
            lse, resp = estep_chunk(xc, prep, xx)
        ll += lse.sum()
        nk += resp.sum(0)
        if cov_type == "full":
            s1.addmm_(resp.t(), xc)
            # W_k = sum_i r_ik y_ik y_ik^T, y_ik = (x_i - m_k) U_k the E-step's own product:
            # second moments centred on the previous means at the cost of one in-place scaling
            # and one batched GEMM over the strided (K, n, d) view of y.
            yv = y.view(-1, k, d)
            yv.mul_(resp.sqrt().unsqueeze(-1))
            yk = yv.transpose(0, 1)  # (K, n, d), strides (d, K*d, 1)
            s2.baddbmm_(yk.transpose(1, 2), yk)
            del y, yv, yk
        else:
            s12.addmm_(resp.t(), xx)
        del resp, lse, xx

    # The finish is tiny (K x d x d), so it runs in float64 whatever the data's dtype, as gmm-gpu's
    # host M-step does: a float32 Cholesky fails on the near-singular covariances (a component with
    # fewer samples than features, plus only 1e-6 I) that float64 factorises.
    f64 = torch.float64
    r_sum = nk.to(f64)
    nk = r_sum + 10 * torch.finfo(dt).eps
    weights = nk / nk.sum()
    if cov_type == "full":
        s1, s2 = s1.to(f64), s2.to(f64)
        mu_old, u_old = mu_old.to(f64), params["prec_chol"].to(f64)
        means = s1 / nk.unsqueeze(1)
        # Unwhiten: sum r (x - m_old)(x - m_old)^T = U^-T W U^-1, where U^-1 = L_old^T, the
        # transposed Cholesky factor of the old covariance (kept from the last finish).
        eye = torch.eye(d, device=dev, dtype=f64).expand(k, d, d)
        if params.get("cov_chol") is not None:
            u_inv = params["cov_chol"].transpose(1, 2)
        else:
            u_inv = torch.linalg.solve_triangular(u_old, eye, upper=True)
        m2 = u_inv.transpose(1, 2) @ s2 @ u_inv
        # Shift to the new means: with s = sum r (x - m_old) and delta = m - m_old,
        # sum r (x - m)(x - m)^T = M2 - delta s^T - s delta^T + R delta delta^T.
        s = s1 - r_sum.unsqueeze(1) * mu_old
        delta = means - mu_old
        cov = m2 - delta.unsqueeze(2) * s.unsqueeze(1) - s.unsqueeze(2) * delta.unsqueeze(1)
        cov += r_sum.view(k, 1, 1) * delta.unsqueeze(2) * delta.unsqueeze(1)
        cov = 0.5 * (cov + cov.transpose(1, 2))
        cov /= nk.view(k, 1, 1)
        cov.diagonal(dim1=-2, dim2=-1).add_(reg_covar)
        chol, jittered = safe_cholesky(cov)
        prec_chol = torch.linalg.solve_triangular(chol, eye, upper=False).transpose(1, 2)
    else:
        s12 = s12.to(f64)
        means = s12[:, :d] / nk.unsqueeze(1)
        # E[x^2] - m^2 as scikit-learn; the floor only matters where float32 sums cancel.
        cov = (s12[:, d:] / nk.unsqueeze(1) - means * means + reg_covar).clamp_min(reg_covar)
        prec_chol = torch.rsqrt(cov)
        jittered = 0
        chol = None
    weights, means, prec_chol, cov = (t.to(dt) for t in (weights, means, prec_chol, cov))
    new = {"weights": weights, "means": means, "prec_chol": prec_chol, "covariances": cov,
           "jittered": jittered, "cov_chol": chol}
    return new, ll / n


def safe_cholesky(cov, tries=8):
    """Batched Cholesky; a factor that fails (a component with fewer samples than features, whose
    float32 sums leave it a little short of positive definite) is retried with a growing jitter on
    the diagonal, as GPyTorch's psd_safe_cholesky does. Returns (factors, components jittered)."""
    chol, info = torch.linalg.cholesky_ex(cov)
    bad = info > 0
    if not bool(bad.any()):  # one sync, after all the iteration's work is queued
        return chol, 0
    n_bad = int(bad.sum())
    scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1, keepdim=True)  # (K, 1)
    eye = torch.eye(cov.shape[-1], device=cov.device, dtype=cov.dtype)
    for j in range(tries):
        jitter = scale[bad] * (1e-8 * 10.0**j)
        fixed, info_b = torch.linalg.cholesky_ex(cov[bad] + jitter.unsqueeze(-1) * eye)
        ok = info_b == 0
        idx = bad.nonzero().squeeze(1)
        chol[idx[ok]] = fixed[ok]
        bad[idx[ok]] = False
        if not bool(bad.any()):
            return chol, n_bad
    raise RuntimeError("a covariance is not positive definite even with jitter; raise reg_covar")


def estep_only(x, params, cov_type, chunk):
    """The E-step alone (log-densities, log-sum-exp, responsibilities) over all chunks."""
    prep = Prepared(params, cov_type)
    ll = torch.zeros((), device=x.device, dtype=x.dtype)
    for start in range(0, x.shape[0], chunk):
        xc = x[start : start + chunk]
        xx = None if cov_type == "full" else torch.cat([xc, xc * xc], dim=1)
        lse, resp = estep_chunk(xc, prep, xx)
        ll += lse.sum()
        del resp, lse, xx
    return ll / x.shape[0]


# ----------------------------------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------------------------------


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_case(name, cov_type, args, device, dtype):
    n0, d, k, _ = CASES[name]
    n = max(k, int(round(n0 * args.scale)))
    itemsize = torch.tensor([], dtype=dtype).element_size()
    chunk = args.chunk or default_chunk(n, d, k, cov_type, itemsize)
    x, g = make_blobs(n, d, k, args.seed, device, dtype)
    params = initial_params(x, k, cov_type, g)
    lower_bounds = []
    times = []
    jittered = 0
    for it in range(args.warmup + args.iters):
        sync(device)
        t0 = time.perf_counter()
        params, lb = em_iteration(x, params, cov_type, chunk)
        sync(device)
        t1 = time.perf_counter()
        lower_bounds.append(float(lb))
        jittered += params["jittered"]
        if it >= args.warmup:
            times.append((t1 - t0) * 1e3)
    # The E-step alone, in a separate pass so the phases' syncs don't perturb the main timing.
    e_times = []
    for _ in range(max(1, min(args.iters, 5))):
        sync(device)
        t0 = time.perf_counter()
        estep_only(x, params, cov_type, chunk)
        sync(device)
        e_times.append((time.perf_counter() - t0) * 1e3)

    if jittered:
        print(f"note: case {name} {cov_type}: {jittered} Cholesky factorisations needed a jitter",
              file=sys.stderr)
    finite = all(math.isfinite(v) for v in lower_bounds)
    # EM never lowers the bound in exact arithmetic; allow float32 rounding near convergence.
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    monotone = all(b >= a - tol * max(1.0, abs(a)) for a, b in zip(lower_bounds, lower_bounds[1:]))
    if not finite or not monotone:
        print(
            f"warning: case {name} {cov_type}: lower bound "
            f"{'not finite' if not finite else 'decreased'}: {lower_bounds}",
            file=sys.stderr,
        )
    del x, params
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "case": name,
        "covariance": cov_type,
        "n": n,
        "d": d,
        "k": k,
        "chunk": chunk,
        "iters": args.iters,
        "warmup": args.warmup,
        "ms_per_iter_median": statistics.median(times),
        "ms_per_iter_min": min(times),
        "estep_ms": statistics.median(e_times),
        "lower_bound": lower_bounds[-1],
        "lower_bounds": lower_bounds,
        "lower_bound_finite": finite,
        "lower_bound_monotone": monotone,
        "cholesky_jittered": jittered,
    }


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", default="all", help="A|B|C|D|E|F|all, or a comma list (default all)")
    p.add_argument("--covariance", default=None, help="only this covariance type (full|diag)")
    p.add_argument("--scale", type=float, default=1.0, help="N is multiplied by this (default 1)")
    p.add_argument("--iters", type=int, default=10, help="timed iterations (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default 2)")
    p.add_argument("--device", default=None, help="cuda|cpu (default cuda if available)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--chunk", type=int, default=0, help="samples per chunk (default: ~1 GiB temps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (default: full f32)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if args.iters < 1:
        p.error("--iters must be at least 1")

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, args.dtype)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32

    names = list(CASES) if args.case.lower() == "all" else [c.strip().upper() for c in args.case.split(",")]
    for c in names:
        if c not in CASES:
            p.error(f"unknown case {c!r}; choose from {', '.join(CASES)} or all")

    rows = []
    for name in names:
        for cov_type in CASES[name][3]:
            if args.covariance and cov_type != args.covariance:
                continue
            try:
                rows.append(run_case(name, cov_type, args, device, dtype))
            except (RuntimeError, torch.cuda.OutOfMemoryError) as e:  # keep the other cases
                n0, d, k, _ = CASES[name]
                print(f"error: case {name} {cov_type}: {e}", file=sys.stderr)
                rows.append({"case": name, "covariance": cov_type, "n": max(k, int(round(n0 * args.scale))),
                             "d": d, "k": k, "error": str(e).splitlines()[0] if str(e) else repr(e)})
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            if not args.json:
                print_row(rows[-1], header=len(rows) == 1, device=device, dtype=args.dtype)

    if args.json:
        print(json.dumps({
            "peer": "torch",
            "torch": torch.__version__,
            "device": device_name(device),
            "dtype": args.dtype,
            "tf32": args.tf32,
            "scale": args.scale,
            "cases": rows,
        }))
    return 0 if all("error" not in r for r in rows) else 1


def print_row(r, header, device, dtype):
    if header:
        print(f"torch {torch.__version__} on {device_name(device)}, {dtype}")
        print(f"{'case':<5}{'cov':<6}{'N':>9}{'d':>5}{'K':>6}{'chunk':>9}"
              f"{'ms/iter med':>13}{'min':>10}{'E-step ms':>11}  lower bound")
    if "error" in r:
        print(f"{r['case']:<5}{r['covariance']:<6}{r['n']:>9}{r['d']:>5}{r['k']:>6}  error: {r['error']}")
        return
    print(f"{r['case']:<5}{r['covariance']:<6}{r['n']:>9}{r['d']:>5}{r['k']:>6}{r['chunk']:>9}"
          f"{r['ms_per_iter_median']:>13.3f}{r['ms_per_iter_min']:>10.3f}{r['estep_ms']:>11.3f}"
          f"  {r['lower_bound']:.6f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
