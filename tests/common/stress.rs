//! Ill-conditioned stress data for the GPU (f32) against CPU (f64) comparisons of issue 7: seeded,
//! N x d row-major f64 with K = 3 clusters, built to have every feature that hurts f32 statistics.
//!
//! Within each cluster k (spread σ_k, latent centre c_k, latent draws g ~ N(0, 1)):
//! - Scales from 1e-3 to 1e3: Gaussian column j is `scale_j · (offset_j + c_kj + σ_k·g)`, with
//!   scale_j from 1e3 (columns 0 and 1, values ~3e4 ± 1e3) down to 1e-3 (column 7, a count-like column
//!   around 0.1 ± 0.01): the variances span 1e6 to 1e-4.
//! - Pairs correlated to 1 − 1e-6: columns (0, 1) at scale 1e3 and (2, 3) at scale 1e2 are
//!   `s·(o + c + σ·u)` and `s·(o + c + σ·(ρ·u + √(1 − ρ²)·v))` with ρ = 1 − 1e-6, so the pair's
//!   2 x 2 covariance has eigenvalues ≈ 2·s²σ² and s²σ²·1e-6: its determinant is 1e-6 of the product
//!   of its diagonal, and an f32 error of a few 1e-7 in the entries makes it indefinite. At scale 1e3
//!   the small eigenvalue (≈ 1) is 1e6 times reg_covar = 1e-6, which cannot rescue it.
//! - Sparse pixel-like columns: columns 8 and 9 are 0 in 97% of the rows (independently) and a small
//!   integer 1..=8 elsewhere, like the border pixels of images.
//! - Condition numbers about 2e10: each cluster's covariance has λ_max ≈ 2e6·σ² (the scale-1e3 pair)
//!   and λ_min ≈ 1e-4·σ² (columns 6 and 7); [`condition_numbers`] measures them with [`jacobi_eigenvalues`].
//!
//! The `far` variant puts the latent cluster centres 1e4 apart (spread σ_k ≈ 1) on every Gaussian
//! column: the host's centring on the global mean leaves samples ~1e4 spreads from 0, where an f32
//! keeps only ~1e-3 of a spread (ulp(1e4) = 2⁻¹⁰) — a loss no global shift removes.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal};

/// Samples, features and clusters of [`stress`].
pub const N: usize = 4500;
pub const D: usize = 10;
pub const K: usize = 3;
/// The within-cluster correlation of the pairs (0, 1) and (2, 3).
pub const RHO: f64 = 1.0 - 1e-6;

/// A stress data set: the samples and the truth they were drawn from.
pub struct StressData {
    pub name: &'static str,
    /// Row-major N x D.
    pub x: Vec<f64>,
    pub n: usize,
    pub d: usize,
    /// The cluster each row was drawn from.
    pub labels: Vec<usize>,
    /// What the data holds, in words.
    pub description: String,
}

/// Multipliers of the Gaussian columns 0..8 (columns 8 and 9 are the sparse pixels).
const SCALES: [f64; 8] = [1e3, 1e3, 1e2, 1e2, 1e1, 1.0, 1e-2, 1e-3];
/// Latent offsets of the Gaussian columns (removed by the host's global centring, as in real data).
const OFFSETS: [f64; 8] = [30.0, 30.0, -20.0, -20.0, 5.0, 0.0, 3.0, 100.0];
/// Latent units per unit of the column: column 7 is a count around 100 ± 10, times 1e-3.
const UNITS: [f64; 8] = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0];
/// Cluster weights and spreads: three different sizes and shapes.
const WEIGHTS: [f64; K] = [0.5, 0.3, 0.2];
const SPREADS: [f64; K] = [1.0, 0.6, 1.5];

/// The stress data of issue 7 (see the module comment), clusters a few spreads apart, or (`far`)
/// 1e4 latent units apart.
pub fn stress(far: bool, seed: u64) -> StressData {
    let mut rng = StdRng::seed_from_u64(seed);
    let unit = Normal::new(0.0, 1.0).unwrap();
    // Latent centres: a few spreads apart (N(0, 3²) per column, the pairs sharing theirs), or 1e4·k.
    let mut centres = [[0.0f64; 8]; K];
    for (k, c) in centres.iter_mut().enumerate() {
        for cj in c.iter_mut() {
            *cj = if far {
                1e4 * k as f64 + unit.sample(&mut rng)
            } else {
                3.0 * unit.sample(&mut rng)
            };
        }
        c[1] = c[0];
        c[3] = c[2];
    }
    let tail = (1.0 - RHO * RHO).sqrt();
    let mut x = Vec::with_capacity(N * D);
    let mut labels = Vec::with_capacity(N);
    for _ in 0..N {
        let u: f64 = rng.random();
        let k = if u < WEIGHTS[0] {
            0
        } else if u < WEIGHTS[0] + WEIGHTS[1] {
            1
        } else {
            2
        };
        labels.push(k);
        let s = SPREADS[k];
        let mut g = [0.0f64; 8];
        g.iter_mut().for_each(|v| *v = unit.sample(&mut rng));
        // The correlated partners: ρ·u + √(1 − ρ²)·v.
        g[1] = RHO * g[0] + tail * g[1];
        g[3] = RHO * g[2] + tail * g[3];
        for j in 0..8 {
            x.push(SCALES[j] * UNITS[j] * (OFFSETS[j] + centres[k][j] + s * g[j]));
        }
        for _ in 0..2 {
            let pixel = if rng.random_bool(0.03) {
                f64::from(rng.random_range(1..=8u32))
            } else {
                0.0
            };
            x.push(pixel);
        }
    }
    let description = format!(
        "{N} x {D}, {K} clusters (weights {WEIGHTS:?}, spreads {SPREADS:?}) {}; columns 0-7 scaled by {SCALES:?} \
         (column 7 a count 100 ± 10 times 1e-3); pairs (0,1) and (2,3) correlated to 1 − 1e-6 within each \
         cluster; columns 8 and 9 zero in 97% of rows, integers 1..=8 elsewhere",
        if far {
            "with latent centres 1e4 spreads apart"
        } else {
            "with latent centres ~N(0, 3²) apart"
        }
    );
    StressData {
        name: if far { "stress-far" } else { "stress" },
        x,
        n: N,
        d: D,
        labels,
        description,
    }
}

/// The sample covariance (d x d, f64, two-pass) of the rows of `x` that `keep` selects.
pub fn covariance(x: &[f64], d: usize, keep: impl Fn(usize) -> bool) -> Vec<f64> {
    let rows: Vec<&[f64]> = x
        .chunks_exact(d)
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|r| r.1)
        .collect();
    let n = rows.len() as f64;
    let mut mean = vec![0.0; d];
    rows.iter()
        .for_each(|r| mean.iter_mut().zip(*r).for_each(|(m, v)| *m += v / n));
    let mut cov = vec![0.0; d * d];
    for r in &rows {
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] += (r[i] - mean[i]) * (r[j] - mean[j]) / n;
            }
        }
    }
    cov
}

/// The eigenvalues of a symmetric d x d matrix, ascending, by cyclic Jacobi rotations (accurate to
/// a few ulps of the largest, ample for condition numbers up to ~1e13).
pub fn jacobi_eigenvalues(a: &[f64], d: usize) -> Vec<f64> {
    let mut a = a.to_vec();
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j] * a[i * d + j])
            .sum();
        let diag: f64 = (0..d).map(|i| a[i * d + i] * a[i * d + i]).sum();
        if off <= 1e-32 * diag {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // A ← Jᵀ·A·J with J the rotation in the (p, q) plane.
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
            }
        }
    }
    let mut ev: Vec<f64> = (0..d).map(|i| a[i * d + i]).collect();
    ev.sort_by(f64::total_cmp);
    ev
}

/// λ_max / λ_min of a symmetric matrix (∞ if λ_min <= 0).
pub fn condition_number(a: &[f64], d: usize) -> f64 {
    let ev = jacobi_eigenvalues(a, d);
    if ev[0] <= 0.0 { f64::INFINITY } else { ev[d - 1] / ev[0] }
}

/// The condition numbers of each true cluster's sample covariance, then of the whole data's.
pub fn condition_numbers(data: &StressData) -> Vec<f64> {
    let k_n = data.labels.iter().max().map_or(0, |m| m + 1);
    let mut out: Vec<f64> = (0..k_n)
        .map(|k| condition_number(&covariance(&data.x, data.d, |i| data.labels[i] == k), data.d))
        .collect();
    out.push(condition_number(&covariance(&data.x, data.d, |_| true), data.d));
    out
}

/// The within-cluster correlation of columns (i, j), per true cluster.
pub fn cluster_correlations(data: &StressData, i: usize, j: usize) -> Vec<f64> {
    let k_n = data.labels.iter().max().map_or(0, |m| m + 1);
    (0..k_n)
        .map(|k| {
            let c = covariance(&data.x, data.d, |r| data.labels[r] == k);
            let d = data.d;
            c[i * d + j] / (c[i * d + i] * c[j * d + j]).sqrt()
        })
        .collect()
}
