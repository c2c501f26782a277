#!/usr/bin/env python3
"""Side-by-side markdown of a device run: `gmm bench --json` lines against the PyTorch peer.

Usage: python3 benches/device/compare.py DIR            (DIR holds gmm_bench.jsonl, torch.json)
       python3 benches/device/compare.py GMM.jsonl TORCH.json

Tolerant of missing files, fields, error rows and lines that are not JSON: what is absent prints
as '-'. The ratio is torch ms / gmm ms (above 1: gmm is faster). A second table sets each case's
exact runs beside its fast one (ms per iteration, and exact / fast) against issue 17's targets:
fast at least 6 times faster than two-float on B, E and F, at least 2 times on A.
"""

import json
import os
import sys


def load_gmm(path):
    rows, meta = [], {}
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        print(f"(no gmm results: {e})", file=sys.stderr)
        return rows, meta
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        # one object per (case, covariance); also accept {"cases": [...]} with shared fields
        subs = obj.get("cases") if isinstance(obj.get("cases"), list) else [obj]
        for sub in subs:
            if not isinstance(sub, dict):
                continue
            row = {**{k: v for k, v in obj.items() if k != "cases"}, **sub}
            for key in ("adapter", "timing", "peaks"):
                if key in row and key not in meta:
                    meta[key] = row[key]
            rows.append(row)
    return rows, meta


def load_torch(path):
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError as e:
        print(f"(no torch results: {e})", file=sys.stderr)
        return [], {}
    # the JSON object is the last line that parses (warnings may precede it)
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
                break
            except ValueError:
                continue
    else:
        return [], {}
    meta = {k: obj.get(k) for k in ("torch", "device", "dtype", "tf32", "scale")}
    return [c for c in obj.get("cases", []) if isinstance(c, dict)], meta


def num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def fmt(v, digits=3):
    v = num(v)
    if v is None:
        return "-"
    if isinstance(v, int):
        return f"{v:,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.1f}"
    return f"{v:.{digits}g}" if abs(v) < 0.01 else f"{v:.{digits}f}".rstrip("0").rstrip(".")


def key(row):
    # a `--kernels split` run of a case the fused pass takes is its own row, beside the fused one;
    # so is a run in an arithmetic other than fast (the peer's fp32 is compared with fast)
    split = " (split)" if row.get("kernels_asked") == "split" else ""
    precision = row.get("precision")
    arith = f" ({precision})" if precision and precision != "fast" else ""
    return (str(row.get("case", "?")).upper(), str(row.get("covariance", "") or "") + split + arith)


# Issue 17: how much faster fast must be than exact in two-float, per case.
TWO_FLOAT_TARGETS = {"A": 2.0, "B": 6.0, "E": 6.0, "F": 6.0}


def precision_rows(gmm_rows):
    """Per (case, covariance, kernels) of the runs: fast, f64 and two-float ms per iteration, the
    ratios exact / fast, and whether the two-float ratio meets its target."""
    runs = {}
    for r in gmm_rows:
        if r.get("error") or num(r.get("iteration_ms")) is None:
            continue
        base = (str(r.get("case", "?")).upper(), str(r.get("covariance", "") or ""), r.get("kernels_asked") or "auto")
        runs.setdefault(base, {})[str(r.get("precision") or "fast")] = num(r["iteration_ms"])
    rows = []
    for (case, cov, kernels), by in sorted(runs.items()):
        fast, f64, two = by.get("fast"), by.get("exact (f64)"), by.get("exact (two-float)")
        if fast is None or (f64 is None and two is None):
            continue
        target = TWO_FLOAT_TARGETS.get(case)
        ratio = two / fast if two is not None and fast > 0 else None
        verdict = "-" if target is None or ratio is None else ("met" if ratio >= target else "not met")
        rows.append([case, cov + ("" if kernels == "auto" else f" ({kernels})"), fmt(fast), fmt(f64), fmt(two),
                     f"{f64 / fast:.2f}x" if f64 is not None and fast > 0 else "-",
                     f"{ratio:.2f}x" if ratio is not None else "-",
                     f">= {target:g}x" if target else "-", verdict])
    return rows


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def main(argv):
    if len(argv) == 1:
        d = argv[0]
        gmm_path, torch_path = os.path.join(d, "gmm_bench.jsonl"), os.path.join(d, "torch.json")
    elif len(argv) == 2:
        gmm_path, torch_path = argv
    else:
        print(__doc__, file=sys.stderr)
        return 2
    gmm_rows, gmeta = load_gmm(gmm_path)
    torch_rows, tmeta = load_torch(torch_path)

    peaks = gmeta.get("peaks") if isinstance(gmeta.get("peaks"), dict) else {}
    print(f"gmm: adapter {gmeta.get('adapter', '-')}, timing {gmeta.get('timing', '-')}, "
          f"peaks copy {fmt(peaks.get('copy_gbs'))} GB/s, FMA {fmt(peaks.get('fma_gflops'))} GFLOP/s")
    print(f"torch: {tmeta.get('torch', '-')} on {tmeta.get('device', '-')}, {tmeta.get('dtype', '-')}"
          f"{', TF32' if tmeta.get('tf32') else ''}, scale {tmeta.get('scale', '-')}")
    print()

    # Pair rows by (case, covariance); a gmm error row without covariance matches the case.
    order, gmm_by, torch_by = [], {}, {}
    for r in gmm_rows:
        gmm_by.setdefault(key(r), r)
        order.append(key(r))
    for r in torch_rows:
        torch_by.setdefault(key(r), r)
        order.append(key(r))
    seen, keys = set(), []
    for k in sorted(order, key=lambda k: (k[0], k[1])):
        if k not in seen:
            seen.add(k)
            keys.append(k)
    # drop a covariance-less gmm error row when the case has proper rows
    keys = [k for k in keys if k[1] or not any(o[0] == k[0] and o[1] for o in keys)]

    rows = []
    for k in keys:
        g = gmm_by.get(k) or gmm_by.get((k[0], ""), {})
        t = torch_by.get(k, {})
        gms, tms = num(g.get("iteration_ms")), num(t.get("ms_per_iter_median"))
        ratio = f"{tms / gms:.2f}x" if gms and tms else "-"
        n = g.get("n", t.get("n"))
        note = "; ".join(str(x) for x in (g.get("error"), t.get("error") and f"torch: {t['error']}",
                                           g.get("reference")) if x)
        rows.append([k[0], k[1] or "-", fmt(n), fmt(g.get("d", t.get("d"))), fmt(g.get("k", t.get("k"))),
                     fmt(gms), fmt(g.get("kernels_ms")), fmt(tms), fmt(t.get("ms_per_iter_min")), fmt(t.get("estep_ms")), ratio,
                     fmt(g.get("lower_bound")), fmt(t.get("lower_bound"), 6), note or ""])
    print(table(["case", "cov", "N", "d", "K", "gmm ms/iter", "gmm kernels ms", "torch ms/iter (median)", "torch min",
                 "torch E-step ms", "torch/gmm", "gmm lower bound", "torch lower bound", "note"], rows))

    prows = precision_rows(gmm_rows)
    if prows:
        print()
        print("fast against exact, ms per iteration (issue 17's targets: two-float / fast)")
        print(table(["case", "cov", "fast", "exact (f64)", "exact (two-float)", "f64 / fast", "two-float / fast",
                     "target", "verdict"], prows))

    for k in keys:
        g = gmm_by.get(k)
        kernels = g.get("kernels") if g else None
        if not isinstance(kernels, list) or not kernels:
            continue
        print()
        print(f"case {k[0]} {k[1]}: gmm kernels (iteration {fmt(g.get('iteration_ms'))} ms)")
        krows = []
        for kr in kernels:
            if not isinstance(kr, dict):
                continue
            b, f = num(kr.get("bytes")), num(kr.get("flops"))
            krows.append([str(kr.get("name", "?")), fmt(kr.get("ms")),
                          fmt(b / 1e6) if b is not None else "-", fmt(f / 1e9) if f is not None else "-",
                          fmt(kr.get("gbs")), fmt(kr.get("gflops")),
                          fmt(kr.get("pct_copy"), 2), fmt(kr.get("pct_fma"), 2)])
        print(table(["kernel", "ms", "MB", "GFLOP", "GB/s", "GFLOP/s", "% copy peak", "% FMA peak"], krows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
