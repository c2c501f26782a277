//! The E-step, in f64: the CPU twin of `shaders/estep.wgsl` (entry points `logprob` and `normalise`).
//!
//! [`log_densities`] and [`normalise`] work on a block of samples, lane-parallel across samples
//! (see `block.rs`); `logprob` and `normalise_row` are the one-sample formulas they are tested against.

// Lane loops index by lane on purpose: `for l in 0..W` over several arrays is what vectorises.
#![allow(clippy::needless_range_loop)]

use super::block::{Block, CHUNKS, Packed};
use super::lanes::{self, L, W, multiversion};
use crate::kinds::CovarianceType;
#[cfg(test)]
use crate::{data::Element, mixture::Mixture};

/// The finite floor the log-sum-exp starts from (never −∞, so an all-(−∞) row cannot make ∞ − ∞).
pub(crate) const LOG_FLOOR: f64 = -f64::MAX;

/// Columns of U per register tile: 4 columns x 8 lanes is 8 AVX2 accumulators.
const TILE: usize = 4;

multiversion! {
    /// `b.resp[k]` = log π_k + log N(x | μ_k, Σ_k) = c_k − ½‖U_kᵀ(x − μ_k)‖² for every sample of the
    /// block, through the precision's Cholesky factor U_k (upper triangular for full and tied; 1/σ for
    /// diag and spherical).
    fn log_densities(p: &Packed, b: &mut Block) {
        // Each kernel takes its buffers as separate slices: borrowed through one `&mut Block`, the
        // compiler must assume they may overlap, and then it does not vectorise.
        let Block {
            chunks, xt, z, resp, ..
        } = b;
        for k in 0..p.k {
            for ch in 0..*chunks {
                resp[k * CHUNKS + ch] = log_density(p, k, xt, ch, z);
            }
        }
    }
}

/// Component k's log-density for lane vector `ch` of the block; `z` is dp vectors of scratch.
#[inline(always)]
fn log_density(p: &Packed, k: usize, xt: &[L], ch: usize, z: &mut [L]) -> L {
    let dp = p.dp;
    let mu = &p.means[k * dp..(k + 1) * dp];
    let q = match p.kind.expect("an E-step needs a mixture") {
        CovarianceType::Full | CovarianceType::Tied => {
            // z is read once per tile of columns: worth keeping.
            centre(xt, ch, mu, z);
            maha_full(z, &p.factors[k * dp * dp..(k + 1) * dp * dp])
        }
        CovarianceType::Diag | CovarianceType::Spherical => maha_diag(xt, ch, mu, &p.factors[k * dp..(k + 1) * dp]),
    };
    let c = p.consts[k];
    let mut out = L::ZERO;
    for l in 0..W {
        out.0[l] = (-0.5f64).mul_add(q[l], c);
    }
    out
}

/// z_j = x_j − μ_j for lane vector `ch` of the feature-major `xt`.
#[inline(always)]
fn centre(xt: &[L], ch: usize, mu: &[f64], z: &mut [L]) {
    for (j, (z, &m)) in z.iter_mut().zip(mu).enumerate() {
        let x = &xt[j * CHUNKS + ch].0;
        for l in 0..W {
            z.0[l] = x[l] - m;
        }
    }
}

/// ‖Uᵀz‖² per lane, U upper triangular (dp x dp, zero-padded): y = zᵀU a tile of columns at a
/// time, each column summing only the rows at or above the tile's last.
#[inline(always)]
fn maha_full(z: &[L], u: &[f64]) -> [f64; W] {
    let dp = z.len();
    let mut q = [0.0; W];
    for t in (0..dp).step_by(TILE) {
        let mut y = [[0.0; W]; TILE];
        // No bounds check may stay in the loop: it costs a quarter of the loop's speed.
        assert!(t + TILE <= dp && u.len() >= dp * dp);
        for (zi, ui) in z[..t + TILE].iter().zip(u.chunks_exact(dp)) {
            let ur: &[f64; TILE] = ui[t..t + TILE].try_into().unwrap();
            for c in 0..TILE {
                for l in 0..W {
                    y[c][l] = zi.0[l].mul_add(ur[c], y[c][l]);
                }
            }
        }
        for yc in &y {
            for l in 0..W {
                q[l] = yc[l].mul_add(yc[l], q[l]);
            }
        }
    }
    q
}

/// Σ_j ((x_j − μ_j)·p_j)² per lane for lane vector `ch` of the feature-major `xt`, z made on the fly.
#[inline(always)]
fn maha_diag(xt: &[L], ch: usize, mu: &[f64], p: &[f64]) -> [f64; W] {
    let mut q = [0.0; W];
    assert!(ch < CHUNKS); // no bounds check (and so no panic path) in the loop
    for ((xj, &m), &pj) in xt.chunks_exact(CHUNKS).zip(mu).zip(p) {
        let x = &xj[ch].0;
        for l in 0..W {
            let t = (x[l] - m) * pj;
            q[l] = t.mul_add(t, q[l]);
        }
    }
    q
}

multiversion! {
    /// Log-sum-exp over the K components, per sample: turns `b.resp` into w·responsibilities and fills
    /// `b.score` with w·log p(x); a zero-weight sample (and padding) gets exact zeros.
    fn normalise(k: usize, b: &mut Block) {
        for ch in 0..b.chunks {
            let w = b.w[ch].0;
            b.score[ch] = normalise_chunk(k, &mut b.resp, ch, w);
        }
    }
}

/// [`normalise`] for lane vector `ch`; returns w·log p(x).
#[inline(always)]
fn normalise_chunk(k: usize, resp: &mut [L], ch: usize, w: [f64; W]) -> L {
    let mut m = [LOG_FLOOR; W];
    for kk in 0..k {
        let v = &resp[kk * CHUNKS + ch].0;
        for l in 0..W {
            m[l] = if v[l] > m[l] { v[l] } else { m[l] };
        }
    }
    let mut s = [0.0; W];
    for kk in 0..k {
        let v = &mut resp[kk * CHUNKS + ch].0;
        for l in 0..W {
            v[l] = lanes::exp(v[l] - m[l]);
            s[l] += v[l];
        }
    }
    // A zero weight gives exact zeros, even where w·value would be NaN (an all-(−∞) row). The zero
    // is made by masking the bits: a select would be compiled as a branch, and a branch stops the
    // lane loops from vectorising.
    let (mut scale, mut keep, mut score) = ([0.0; W], [0u64; W], L::ZERO);
    for l in 0..W {
        scale[l] = 1.0 / s[l];
        keep[l] = u64::from(w[l] == 0.0).wrapping_sub(1);
        let log_p = m[l] + lanes::ln(s[l]);
        score.0[l] = f64::from_bits((w[l] * log_p).to_bits() & keep[l]);
    }
    for kk in 0..k {
        let v = &mut resp[kk * CHUNKS + ch].0;
        for l in 0..W {
            v[l] = f64::from_bits((w[l] * (v[l] * scale[l])).to_bits() & keep[l]);
        }
    }
    score
}

/// The first most likely component of every sample in lane vector `ch`, from the log-densities.
#[inline(always)]
pub(crate) fn argmax(k: usize, b: &Block, ch: usize) -> [f64; W] {
    let mut best = b.resp[ch].0;
    let mut at = [0.0; W];
    for kk in 1..k {
        let v = &b.resp[kk * CHUNKS + ch].0;
        for l in 0..W {
            if v[l] > best[l] {
                best[l] = v[l];
                at[l] = kk as f64;
            }
        }
    }
    at
}

/// The one-sample reference: `out[k]` = log π_k + log N(x | μ_k, Σ_k) = c_k − ½‖U_kᵀ(x − μ_k)‖²,
/// through the precision's Cholesky factor U_k (upper triangular for full and tied; 1/σ for diag and spherical).
/// `diff` holds d values of scratch.
#[cfg(test)]
pub(crate) fn logprob<T: Element>(x: &[T], mix: &Mixture, diff: &mut [f64], out: &mut [f64]) {
    let d = mix.n_features;
    for (k, out_k) in out.iter_mut().enumerate() {
        let mu = &mix.means[k * d..(k + 1) * d];
        for ((z, &xi), &m) in diff.iter_mut().zip(x).zip(mu) {
            *z = xi.to_f64() - m;
        }
        let u = mix.precision_factor(k);
        let maha = match mix.cov_type {
            CovarianceType::Full | CovarianceType::Tied => {
                // y_j = Σ_{i<=j} z_i·U[i][j]: U is upper triangular.
                let mut q = 0.0;
                for j in 0..d {
                    let mut y = 0.0;
                    for i in 0..=j {
                        y += diff[i] * u[i * d + j];
                    }
                    q += y * y;
                }
                q
            }
            CovarianceType::Diag => diff.iter().zip(u).map(|(z, p)| (z * p) * (z * p)).sum(),
            CovarianceType::Spherical => diff.iter().map(|z| z * z).sum::<f64>() * (u[0] * u[0]),
        };
        *out_k = mix.log_consts[k] - 0.5 * maha;
    }
}

/// Log-sum-exp normalisation: turns the log-densities in `row` into responsibilities in place and
/// returns log p(x) = log Σ_k exp(row[k]).
#[cfg(test)]
pub(crate) fn normalise_row(row: &mut [f64]) -> f64 {
    let m = row.iter().fold(LOG_FLOOR, |m, &v| m.max(v));
    let s: f64 = row.iter().map(|&v| (v - m).exp()).sum();
    let log_p = m + s.ln();
    for v in row.iter_mut() {
        *v = (*v - log_p).exp();
    }
    log_p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::block::CHUNKS;

    /// A 2-feature, 2-component mixture given by its covariances, factored by the crate's own code.
    fn mixture(cov_type: CovarianceType, covariances: Vec<f64>) -> Mixture {
        let mut m = Mixture::zeros(cov_type, 2, 2);
        m.weights = vec![0.3, 0.7];
        m.means = vec![1.0, -2.0, 0.5, 3.0];
        m.covariances = covariances;
        m.set_precisions_from_covariances(&mut [0.0; 4]).unwrap();
        m
    }

    /// The textbook bivariate normal density, with the inverse and determinant written out by hand.
    fn naive_log_density(x: [f64; 2], mu: [f64; 2], s: [f64; 4]) -> f64 {
        let det = s[0] * s[3] - s[1] * s[2];
        let inv = [s[3] / det, -s[1] / det, -s[2] / det, s[0] / det];
        let z = [x[0] - mu[0], x[1] - mu[1]];
        let q = z[0] * (inv[0] * z[0] + inv[1] * z[1]) + z[1] * (inv[2] * z[0] + inv[3] * z[1]);
        -0.5 * q - (2.0 * std::f64::consts::PI).ln() - 0.5 * det.ln()
    }

    #[test]
    fn logprob_matches_the_textbook_density_for_every_type() {
        let cases = [
            (CovarianceType::Full, vec![2.0, 0.6, 0.6, 1.0, 0.5, -0.2, -0.2, 3.0]),
            (CovarianceType::Tied, vec![2.0, 0.6, 0.6, 1.0]),
            (CovarianceType::Diag, vec![2.0, 1.0, 0.5, 3.0]),
            (CovarianceType::Spherical, vec![2.0, 0.5]),
        ];
        for (cov_type, covs) in cases {
            let m = mixture(cov_type, covs);
            for x in [[0.0, 0.0], [1.0, -2.0], [7.5, -3.25], [-40.0, 12.0]] {
                let mut out = [0.0; 2];
                logprob(&x, &m, &mut [0.0; 2], &mut out);
                for (k, &got) in out.iter().enumerate() {
                    let s = m.dense_covariance(k);
                    let mu = [m.means[2 * k], m.means[2 * k + 1]];
                    let expect = m.weights[k].ln() + naive_log_density(x, mu, [s[0], s[1], s[2], s[3]]);
                    // Two routes through f64 with |value| < 1e3: they agree to ~1e-13 relative.
                    assert!(
                        (got - expect).abs() <= 1e-12 * expect.abs().max(1.0),
                        "{cov_type} x={x:?} k={k}: {got} vs {expect}"
                    );
                }
            }
        }
    }

    #[test]
    fn block_kernels_match_the_one_sample_formulas() {
        use crate::cpu::block::{Block, Packed};
        use crate::cpu::test_util;
        // Awkward shapes: fewer features than a lane vector, more than one, not whole; a short block.
        for d in [1, 3, 8, 11, 19] {
            for cov_type in CovarianceType::ALL {
                let k = 3;
                let m = test_util::mixture(cov_type, k, d, d as u64);
                let n = 37;
                let x = test_util::data(n, d, 7);
                let mut p = Packed::default();
                p.fill(Some(&m), &m.means, k, d);
                let mut b = Block::new(k, d, false);
                b.load(&x, d, None, 0, n);
                log_densities(&p, &mut b);
                let lp_block = b.resp.clone();
                normalise(k, &mut b);
                let (mut worst, mut at) = (0.0, (0, 0));
                for (i, xi) in x.chunks_exact(d).enumerate() {
                    let (ch, l) = (i / W, i % W);
                    let mut lp = vec![0.0; k];
                    logprob(xi, &m, &mut vec![0.0; d], &mut lp);
                    for (j, &want) in lp.iter().enumerate() {
                        // Two summation orders (fused and not) of ≤ 19·20 products: a few ulps of the
                        // largest term, which is at most ~10² here.
                        let err = (lp_block[j * CHUNKS + ch].0[l] - want).abs() / want.abs().max(1.0);
                        if err > worst {
                            (worst, at) = (err, (i, j));
                        }
                    }
                    let score = normalise_row(&mut lp);
                    // exp and ln within 2 ulps, then a handful of roundings: 1e-14 holds.
                    assert!(
                        (b.score[ch].0[l] - score).abs() <= 1e-14 * score.abs().max(1.0),
                        "d={d} {cov_type} score[{i}]"
                    );
                    for (j, &want) in lp.iter().enumerate() {
                        let got = b.resp[j * CHUNKS + ch].0[l];
                        // The log-densities' own error (ulps of values up to ~10²) carries into exp.
                        assert!(
                            (got - want).abs() <= 1e-13,
                            "d={d} {cov_type} resp[{i}][{j}]: {got} vs {want}"
                        );
                    }
                }
                assert!(
                    worst <= 1e-13,
                    "d={d} {cov_type}: log-density off by {worst:e} (relative) at (sample, component) {at:?}"
                );
                for ch in 0..b.chunks {
                    assert!(
                        b.w[ch]
                            .0
                            .iter()
                            .zip(&b.score[ch].0)
                            .all(|(w, s)| *w != 0.0 || *s == 0.0),
                        "padding scored"
                    );
                }
            }
        }
    }

    #[test]
    fn normalise_is_a_stable_log_sum_exp() {
        // By hand: log(e^1 + e^2 + e^3) = 3 + log(1 + e^-1 + e^-2).
        let mut row = [1.0, 2.0, 3.0];
        let lp = normalise_row(&mut row);
        let expect = 3.0 + (1.0 + (-1.0f64).exp() + (-2.0f64).exp()).ln();
        assert!((lp - expect).abs() < 1e-15);
        let total: f64 = row.iter().sum();
        assert!((total - 1.0).abs() < 4.0 * f64::EPSILON);
        assert!((row[2] - (3.0 - expect).exp()).abs() < 1e-16);
        // Far below exp's range: plain exp would give 0/0; the shifted sum does not.
        let mut row = [-1e4, -1e4 - 2.0f64.ln()];
        let lp = normalise_row(&mut row);
        // Values near −1e4 carry an ulp of 1.8e-12, which log p and the responsibilities inherit.
        assert!((lp - (-1e4 + 1.5f64.ln())).abs() < 1e-11, "{lp}");
        assert!(
            (row[0] - 2.0 / 3.0).abs() < 1e-11 && (row[1] - 1.0 / 3.0).abs() < 1e-11,
            "{row:?}"
        );
    }
}
