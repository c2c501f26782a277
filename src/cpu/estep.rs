//! The E-step for one sample, in f64: the CPU twin of `shaders/estep.wgsl` (entry points `logprob` and `normalise`).

use crate::data::Element;
use crate::mixture::Mixture;
use crate::params::CovarianceType;

/// The finite floor the log-sum-exp starts from (never −∞, so an all-(−∞) row cannot make ∞ − ∞).
pub(crate) const LOG_FLOOR: f64 = -f64::MAX;

/// `out[k]` = log π_k + log N(x | μ_k, Σ_k) = c_k − ½‖U_kᵀ(x − μ_k)‖², through the precision's
/// Cholesky factor U_k (upper triangular for full and tied; 1/σ for diag and spherical).
/// `diff` holds d values of scratch.
#[inline]
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
#[inline]
pub(crate) fn normalise(row: &mut [f64]) -> f64 {
    let m = row.iter().fold(LOG_FLOOR, |m, &v| m.max(v));
    let s: f64 = row.iter().map(|&v| (v - m).exp()).sum();
    let log_p = m + s.ln();
    for v in row.iter_mut() {
        *v = (*v - log_p).exp();
    }
    log_p
}
