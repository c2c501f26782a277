//! The closed-form M-step, shared by every backend: sufficient statistics in, new parameters out, in f64.

use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::linalg::packed_index;
use crate::mixture::Mixture;
use crate::stats::SuffStats;

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
    estimate_moments(stats, centres, reg_covar, mix);
    mix.set_precisions_from_covariances(scratch)
}

/// The weights, means and covariances of the M-step, without factoring the covariances.
pub(crate) fn estimate_moments(stats: &SuffStats, centres: &[f64], reg_covar: f64, mix: &mut Mixture) {
    let (k_n, d) = (mix.n_components, mix.n_features);
    debug_assert!(stats.has_shape(mix.cov_type, k_n, d));
    let total: f64 = stats.s0.iter().map(|s| s + NK_EPS).sum();
    for k in 0..k_n {
        let nk = stats.s0[k] + NK_EPS;
        mix.weights[k] = nk / total;
        for i in 0..d {
            mix.means[k * d + i] = centres[k * d + i] + stats.s1[k * d + i] / nk;
        }
    }
    let s2_len = SuffStats::s2_len(mix.cov_type, d);
    if mix.cov_type == CovarianceType::Tied {
        mix.covariances.fill(0.0);
    }
    for k in 0..k_n {
        let nk = stats.s0[k] + NK_EPS;
        let s0 = stats.s0[k];
        let s1 = &stats.s1[k * d..(k + 1) * d];
        let s2 = &stats.s2[k * s2_len..(k + 1) * s2_len];
        // Scatter around the new mean: S2 − δS1ᵀ − S1δᵀ + S0·δδᵀ, with δ = S1 / N_k.
        let scatter = |i: usize, j: usize, s2ij: f64| {
            let (di, dj) = (s1[i] / nk, s1[j] / nk);
            s2ij - di * s1[j] - s1[i] * dj + s0 * di * dj
        };
        match mix.cov_type {
            CovarianceType::Full => {
                let cov = &mut mix.covariances[k * d * d..(k + 1) * d * d];
                for i in 0..d {
                    for j in i..d {
                        let v = scatter(i, j, s2[packed_index(i, j, d)]) / nk;
                        cov[i * d + j] = v;
                        cov[j * d + i] = v;
                    }
                    cov[i * d + i] += reg_covar;
                }
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
        let cov = &mut mix.covariances;
        for i in 0..d {
            for j in i..d {
                let v = cov[i * d + j] / total;
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
            cov[i * d + i] += reg_covar;
        }
    }
}
