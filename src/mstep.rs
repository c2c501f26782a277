//! The closed-form M-step, shared by every backend: sufficient statistics in, new parameters out, in f64.

use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::linalg::packed_index;
use crate::mixture::Mixture;
use crate::stats::SuffStats;

/// Which parameters the M-step keeps at their current values (`GmmParamsBuilder::freeze`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Frozen {
    pub weights: bool,
    pub means: bool,
    pub covariances: bool,
}

/// scikit-learn adds 10·eps to every N_k so that an empty component does not divide by zero.
pub(crate) const NK_EPS: f64 = 10.0 * f64::EPSILON;

/// Updates `mix` from statistics accumulated around `centres` (row-major K x d, normally the previous
/// means). With N_k = S0_k + 10·eps and δ_k = S1_k / N_k:
/// - π_k = N_k / Σ N_k
/// - μ_k = c_k + δ_k
/// - N_k·Σ_k = Σ r (x − μ_k)(x − μ_k)ᵀ = S2_k − δ_k S1_kᵀ − S1_k δ_kᵀ + S0_k δ_k δ_kᵀ, exactly,
///   then Σ_k += reg_covar·I (tied: summed over k and divided by Σ N_k; spherical: the mean of the diagonal).
///
/// Because z = x − c is small when c is near the data, nothing cancels: the moments are centred for
/// every covariance type. Then every covariance is factored (in f64) into its precision Cholesky factor.
/// `scratch` holds d·d values.
pub(crate) fn m_step(
    stats: &SuffStats,
    centres: &[f64],
    reg_covar: f64,
    mix: &mut Mixture,
    scratch: &mut [f64],
) -> Result<(), GmmError> {
    m_step_frozen(stats, centres, reg_covar, mix, scratch, Frozen::default())
}

/// [`m_step`] keeping the `frozen` parameters at their current values: the constrained
/// maximiser, since the means' update does not depend on the covariances, and with frozen means
/// (which are then the E-step's centres) the covariances are the scatter around them.
pub(crate) fn m_step_frozen(
    stats: &SuffStats,
    centres: &[f64],
    reg_covar: f64,
    mix: &mut Mixture,
    scratch: &mut [f64],
    frozen: Frozen,
) -> Result<(), GmmError> {
    estimate_moments_frozen(stats, centres, reg_covar, mix, frozen);
    if frozen.covariances {
        // The precision factors stay bitwise as they were; the constants follow the weights.
        mix.refresh();
        Ok(())
    } else {
        mix.set_precisions_from_covariances(scratch)
    }
}

/// The weights, means and covariances of the M-step, without factoring the covariances.
pub(crate) fn estimate_moments(stats: &SuffStats, centres: &[f64], reg_covar: f64, mix: &mut Mixture) {
    estimate_moments_frozen(stats, centres, reg_covar, mix, Frozen::default());
}

/// [`estimate_moments`], leaving the `frozen` parameters as they are; with frozen means the
/// scatter is taken around the centres, which are those means.
pub(crate) fn estimate_moments_frozen(
    stats: &SuffStats,
    centres: &[f64],
    reg_covar: f64,
    mix: &mut Mixture,
    frozen: Frozen,
) {
    let (k_n, d) = (mix.n_components, mix.n_features);
    debug_assert!(stats.has_shape(mix.cov_type, k_n, d));
    let total: f64 = stats.s0.iter().map(|s| s + NK_EPS).sum();
    for k in 0..k_n {
        let nk = stats.s0[k] + NK_EPS;
        if !frozen.weights {
            mix.weights[k] = nk / total;
        }
        if !frozen.means {
            for i in 0..d {
                mix.means[k * d + i] = centres[k * d + i] + stats.s1[k * d + i] / nk;
            }
        }
    }
    if frozen.covariances {
        return;
    }
    // The offset of the new means from the centres, per unit of S1: none where the means stay.
    let shift = if frozen.means { 0.0 } else { 1.0 };
    let s2_len = SuffStats::s2_len(mix.cov_type, d);
    if mix.cov_type == CovarianceType::Tied {
        mix.covariances.fill(0.0);
    }
    for k in 0..k_n {
        let nk = stats.s0[k] + NK_EPS;
        let s0 = stats.s0[k];
        let s1 = &stats.s1[k * d..(k + 1) * d];
        let s2 = &stats.s2[k * s2_len..(k + 1) * s2_len];
        // Scatter around the new mean: S2 − δS1ᵀ − S1δᵀ + S0·δδᵀ, with δ = S1 / N_k (0 where
        // the means are frozen at the centres).
        let scatter = |i: usize, j: usize, s2ij: f64| {
            let (di, dj) = (shift * s1[i] / nk, shift * s1[j] / nk);
            s2ij - di * s1[j] - s1[i] * dj + s0 * di * dj
        };
        match mix.cov_type {
            CovarianceType::Full => {
                let cov = &mut mix.covariances[k * d * d..(k + 1) * d * d];
                set_symmetric(cov, d, reg_covar, |i, j| scatter(i, j, s2[packed_index(i, j, d)]) / nk);
            }
            CovarianceType::Tied => {
                for i in 0..d {
                    for j in i..d {
                        mix.covariances[i * d + j] += scatter(i, j, s2[packed_index(i, j, d)]);
                    }
                }
            }
            CovarianceType::Diag => {
                for (i, (cov, &s2i)) in mix.covariances[k * d..(k + 1) * d].iter_mut().zip(s2).enumerate() {
                    *cov = scatter(i, i, s2i) / nk + reg_covar;
                }
            }
            CovarianceType::Spherical => {
                let trace = (0..d).fold(s2[0], |t, i| t + scatter(i, i, 0.0));
                mix.covariances[k] = trace / (nk * d as f64) + reg_covar;
            }
        }
    }
    if mix.cov_type == CovarianceType::Tied {
        divide_upper(&mut mix.covariances, d, total, reg_covar);
    }
}

/// Sets the symmetric d × d matrix `cov` to f(i, j) for i <= j (mirrored below the diagonal), plus
/// `reg` on the diagonal.
pub(crate) fn set_symmetric(cov: &mut [f64], d: usize, reg: f64, f: impl Fn(usize, usize) -> f64) {
    for i in 0..d {
        for j in i..d {
            let v = f(i, j);
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
        cov[i * d + i] += reg;
    }
}

/// A tied covariance summed in its upper triangle, divided by `denom` and mirrored, plus `reg` on
/// the diagonal.
pub(crate) fn divide_upper(cov: &mut [f64], d: usize, denom: f64, reg: f64) {
    for i in 0..d {
        for j in i..d {
            let v = cov[i * d + j] / denom;
            cov[i * d + j] = v;
            cov[j * d + i] = v;
        }
        cov[i * d + i] += reg;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    /// Statistics of `x` (N x d) under responsibilities `r` (N x K) around `centres`, summed naively.
    pub(crate) fn naive_stats(
        kind: CovarianceType,
        x: &[f64],
        r: &[f64],
        centres: &[f64],
        k_n: usize,
        d: usize,
    ) -> SuffStats {
        let mut s = SuffStats::new(kind, k_n, d);
        let s2_len = SuffStats::s2_len(kind, d);
        for (row, resp) in x.chunks(d).zip(r.chunks(k_n)) {
            for k in 0..k_n {
                let z: Vec<f64> = (0..d).map(|i| row[i] - centres[k * d + i]).collect();
                s.s0[k] += resp[k];
                for (s1, zi) in s.s1[k * d..(k + 1) * d].iter_mut().zip(&z) {
                    *s1 += resp[k] * zi;
                }
                let s2 = &mut s.s2[k * s2_len..(k + 1) * s2_len];
                match kind {
                    CovarianceType::Full | CovarianceType::Tied => {
                        for i in 0..d {
                            for j in i..d {
                                s2[packed_index(i, j, d)] += resp[k] * z[i] * z[j];
                            }
                        }
                    }
                    CovarianceType::Diag => (0..d).for_each(|i| s2[i] += resp[k] * z[i] * z[i]),
                    CovarianceType::Spherical => s2[0] += resp[k] * z.iter().map(|v| v * v).sum::<f64>(),
                }
            }
        }
        s
    }

    /// The documented M-step computed in two passes over the samples: μ_k = c_k + Σ r·(x − c_k) / N_k,
    /// then N_k·Σ_k = Σ r·(x − μ_k)(x − μ_k)ᵀ (as a full d x d matrix per component, before the
    /// covariance type reduces it; [`expected_covariances`] adds reg_covar·I). Also returns the N_k.
    fn naive_moments(
        x: &[f64],
        r: &[f64],
        centres: &[f64],
        k_n: usize,
        d: usize,
    ) -> (Vec<f64>, Vec<f64>, Vec<Vec<f64>>, Vec<f64>) {
        let nk: Vec<f64> = (0..k_n)
            .map(|k| r.iter().skip(k).step_by(k_n).sum::<f64>() + NK_EPS)
            .collect();
        let total: f64 = nk.iter().sum();
        let weights = nk.iter().map(|n| n / total).collect();
        let mut means = centres.to_vec();
        let mut scatter = vec![vec![0.0; d * d]; k_n];
        for k in 0..k_n {
            for (row, resp) in x.chunks(d).zip(r.chunks(k_n)) {
                for i in 0..d {
                    means[k * d + i] += resp[k] * (row[i] - centres[k * d + i]) / nk[k];
                }
            }
            for (row, resp) in x.chunks(d).zip(r.chunks(k_n)) {
                for i in 0..d {
                    for j in 0..d {
                        scatter[k][i * d + j] += resp[k] * (row[i] - means[k * d + i]) * (row[j] - means[k * d + j]);
                    }
                }
            }
        }
        (weights, means, scatter, nk)
    }

    /// The covariances the naive scatter gives for `kind`, laid out as `Mixture::covariances`.
    fn expected_covariances(kind: CovarianceType, scatter: &[Vec<f64>], nk: &[f64], reg: f64, d: usize) -> Vec<f64> {
        let eye = |i: usize, j: usize| if i == j { reg } else { 0.0 };
        match kind {
            CovarianceType::Full => scatter
                .iter()
                .zip(nk)
                .flat_map(|(s, n)| (0..d * d).map(move |ij| s[ij] / n + eye(ij / d, ij % d)))
                .collect(),
            CovarianceType::Tied => {
                let total: f64 = nk.iter().sum();
                (0..d * d)
                    .map(|ij| scatter.iter().map(|s| s[ij]).sum::<f64>() / total + eye(ij / d, ij % d))
                    .collect()
            }
            CovarianceType::Diag => scatter
                .iter()
                .zip(nk)
                .flat_map(|(s, n)| (0..d).map(move |i| s[i * d + i] / n + reg))
                .collect(),
            CovarianceType::Spherical => scatter
                .iter()
                .zip(nk)
                .map(|(s, n)| (0..d).map(|i| s[i * d + i]).sum::<f64>() / (n * d as f64) + reg)
                .collect(),
        }
    }

    /// The worst relative difference and where it is.
    fn worst(got: &[f64], want: &[f64]) -> (f64, usize) {
        assert_eq!(got.len(), want.len());
        got.iter()
            .zip(want)
            .map(|(g, w)| {
                let e = (g - w).abs() / w.abs().max(f64::MIN_POSITIVE);
                // NaN compares false with everything: count it as the worst.
                if e.is_nan() { f64::INFINITY } else { e }
            })
            .enumerate()
            .fold((0.0, 0), |(m, at), (i, e)| if e > m { (e, i) } else { (m, at) })
    }

    #[test]
    fn moments_match_two_passes_over_the_samples() {
        // Three components: an ordinary one, one whose responsibilities total 7e-15 (so that N_k's
        // 10·eps is a third of it), and an empty one. The centres sit several spreads from the data,
        // so δ = S1 / N_k is large and every term of the scatter formula counts.
        let (n, d, k_n, reg) = (7, 3, 3, 1e-3);
        let mut rng = StdRng::seed_from_u64(5);
        let x: Vec<f64> = (0..n * d).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
        let mut r = vec![0.0; n * k_n];
        for row in r.chunks_mut(k_n) {
            row[0] = 0.25 + rng.random::<f64>();
            row[1] = 1e-15 * (0.5 + rng.random::<f64>());
        }
        let centres = [5.0, -3.0, 2.0, -4.0, 6.0, 1.5, 0.5, 0.25, -0.75];
        let (weights, means, scatter, nk) = naive_moments(&x, &r, &centres, k_n, d);
        for kind in CovarianceType::ALL {
            let stats = naive_stats(kind, &x, &r, &centres, k_n, d);
            // NaN in every output: each must be written afresh (a tied covariance is a sum, so it
            // must start from zero, not from the last iteration's).
            let mut mix = Mixture::zeros(kind, k_n, d);
            for v in [&mut mix.weights, &mut mix.means, &mut mix.covariances] {
                v.fill(f64::NAN);
            }
            estimate_moments(&stats, &centres, reg, &mut mix);
            // One-pass scatter from centres ~5 spreads away cancels about 25x (5²) in relative terms,
            // and the naive sums round too: 1e-12 leaves 10x over the 9.2e-14 seen (full, tied).
            for (what, got, want) in [
                ("weights", &mix.weights, &weights),
                ("means", &mix.means, &means),
                (
                    "covariances",
                    &mix.covariances,
                    &expected_covariances(kind, &scatter, &nk, reg, d),
                ),
            ] {
                let (err, at) = worst(got, want);
                assert!(
                    err < 1e-12,
                    "{kind:?} {what}[{at}]: {} vs {} ({err:e})",
                    got[at],
                    want[at]
                );
            }
        }
    }

    #[test]
    fn empty_components_keep_their_centres_and_share_the_weight() {
        // With no responsibility anywhere, N_k = 10·eps for every k: equal weights, the means stay
        // at the centres, each covariance is reg_covar·I, and (reg_covar = 1/4) each precision
        // factor 2·I.
        let (k_n, d, reg) = (3, 2, 0.25);
        let centres = [1.0, 2.0, -3.0, 4.0, 0.0, -1.0];
        let mut scratch = vec![0.0; d * d];
        for kind in CovarianceType::ALL {
            let stats = SuffStats::new(kind, k_n, d);
            let mut mix = Mixture::zeros(kind, k_n, d);
            m_step(&stats, &centres, reg, &mut mix, &mut scratch).unwrap();
            assert_eq!(mix.weights, vec![1.0 / 3.0; k_n], "{kind:?}");
            assert_eq!(mix.means, centres, "{kind:?}");
            let per_matrix = |v: f64| -> Vec<f64> {
                match kind {
                    CovarianceType::Full => [v, 0.0, 0.0, v].repeat(k_n),
                    CovarianceType::Tied => vec![v, 0.0, 0.0, v],
                    CovarianceType::Diag => vec![v; k_n * d],
                    CovarianceType::Spherical => vec![v; k_n],
                }
            };
            assert_eq!(mix.covariances, per_matrix(reg), "{kind:?}");
            assert_eq!(mix.precisions_cholesky, per_matrix(2.0), "{kind:?}");
        }
    }

    #[test]
    fn an_empty_component_weighs_scikit_learns_ten_eps() {
        // Beside a component holding weight 1, an empty one weighs 10·eps / (1 + 20·eps), as
        // scikit-learn's `nk = resp.sum(axis=0) + 10 * np.finfo(resp.dtype).eps` makes it.
        let eps10 = 10.0 * f64::EPSILON;
        let mut stats = SuffStats::new(CovarianceType::Diag, 2, 1);
        stats.s0[0] = 1.0;
        let mut mix = Mixture::zeros(CovarianceType::Diag, 2, 1);
        estimate_moments(&stats, &[0.0, 0.0], 0.0, &mut mix);
        assert_eq!(
            mix.weights,
            [(1.0 + eps10) / (1.0 + 2.0 * eps10), eps10 / (1.0 + 2.0 * eps10)]
        );
    }
}
