"""Plots the curve of examples/online_vs_batch.rs: held-out mean log-likelihood against samples
seen (left) and against wall time (right), for batch EM and one pass of online EM.

    python3 benches/plot_online.py online_vs_batch.csv online_vs_batch.png

Needs matplotlib. The start (0 samples seen, the same model for both) is left out, as it lies far
below the rest; the y axis spans the other points, at most half a nat below batch EM's converged
value. The dashed line is 0.01 nats below that value.
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1])))
    curves = {}
    start = float(rows[0]["heldout_ll"])
    for r in rows:
        if int(r["samples_seen"]) == 0:
            continue
        c = curves.setdefault(r["method"], {"seen": [], "wall": [], "ll": []})
        c["seen"].append(int(r["samples_seen"]))
        c["wall"].append(float(r["wall_s"]))
        c["ll"].append(float(r["heldout_ll"]))
    target = curves["batch"]["ll"][-1]
    top = max(max(c["ll"]) for c in curves.values())
    bottom = max(min(min(c["ll"]) for c in curves.values()), target - 0.5)
    pad = 0.05 * (top - bottom) + 1e-4
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, x, label in [
        (axes[0], "seen", "samples seen"),
        (axes[1], "wall", "wall time (s, evaluations excluded)"),
    ]:
        for method, style in [("batch", "o-"), ("online", ".-")]:
            c = curves[method]
            ax.plot(c[x], c["ll"], style, label=f"{method} EM", markersize=4)
        ax.axhline(target - 0.01, color="gray", linestyle="--", linewidth=1, label="batch converged − 0.01")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_xscale("log")
    axes[0].set_ylabel("held-out mean log-likelihood (nats)")
    axes[0].set_ylim(bottom - pad, top + pad)
    axes[0].legend(loc="lower right")
    n = curves["online"]["seen"][-1]
    fig.suptitle(
        f"Online (one pass) vs batch EM from the same start (held-out {start:.4g}), N = {n:,}"
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=120)


if __name__ == "__main__":
    main()
