//! The variational M-step (design note §2; scikit-learn's `_estimate_weights`, `_estimate_means`
//! and `_estimate_precisions`) from the same statistics as maximum likelihood's, and the E-step's
//! constants c_k that take the place of ln w_k.

use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::mixture::Mixture;
use crate::mstep::{NK_EPS, estimate_moments};
use crate::stats::SuffStats;
use crate::variational::{Posterior, VbPrior, WeightPrior, digamma};

/// The variational M-step into `mix`: with N_k = S0_k + 10·eps, x̄_k and S_k the
/// maximum-likelihood means and covariances (reg_covar included, as scikit-learn), computed into
/// `ml` (scratch of the same shape), and dm_k = x̄_k − m0,
/// - weights: DD α_k = α0 + N_k; DP a_k = 1 + N_k, b_k = α0 + Σ_{j>k} N_j;
/// - β_k = β0 + N_k, m_k = (β0 m0 + N_k x̄_k)/β_k;
/// - full ν_k = ν0 + N_k, C_k = [Ψ0 + N_k S_k + N_k β0/β_k dm dmᵀ]/ν_k; tied ν = ν0 + ΣN/K,
///   C = [Ψ0 + (ΣN/K) S + β0/K Σ_k (N_k/β_k) dm dmᵀ]/ν; diag C_kj = [Ψ0_j + N_k(S_kj +
///   β0/β_k dm_j²)]/ν_k; spherical C_k = [Ψ0 + N_k(S_k + β0/β_k mean_j dm_j²)]/ν_k;
///
/// then the precision factors of C_k⁻¹, the weights' means (scikit-learn's `weights_`), and c_k.
// Indices keep the formulas' subscripts.
#[allow(clippy::needless_range_loop)]
pub(crate) fn vb_m_step(
    stats: &SuffStats,
    centres: &[f64],
    prior: &VbPrior,
    reg_covar: f64,
    mix: &mut Mixture,
    ml: &mut Mixture,
    scratch: &mut [f64],
) -> Result<(), GmmError> {
    let (k_n, d) = (mix.n_components, mix.n_features);
    estimate_moments(stats, centres, reg_covar, ml);
    // N_k on the fly: the M-step allocates nothing after the first.
    let nk = |k: usize| stats.s0[k] + NK_EPS;
    let total: f64 = (0..k_n).map(nk).sum();
    let mut post = mix.variational.take().unwrap_or_else(|| Posterior {
        weight_prior: prior.weight_prior,
        concentration_a: vec![0.0; k_n],
        concentration_b: Vec::new(),
        mean_precision: vec![0.0; k_n],
        dof: vec![0.0; if mix.cov_type == CovarianceType::Tied { 1 } else { k_n }],
        log_weights: vec![0.0; k_n],
    });
    let alpha0 = prior.weight_concentration;
    match prior.weight_prior {
        WeightPrior::DirichletDistribution => {
            post.concentration_b.clear();
            for (k, a) in post.concentration_a.iter_mut().enumerate() {
                *a = alpha0 + nk(k);
            }
        }
        WeightPrior::DirichletProcess => {
            post.concentration_b.resize(k_n, 0.0);
            // b_k = α0 + Σ_{j>k} N_j, summed from the last component as scikit-learn's cumsum.
            let mut tail = 0.0;
            for k in (0..k_n).rev() {
                post.concentration_a[k] = 1.0 + nk(k);
                post.concentration_b[k] = alpha0 + tail;
                tail += nk(k);
            }
        }
    }
    let beta0 = prior.mean_precision;
    for (k, beta) in post.mean_precision.iter_mut().enumerate() {
        let n = nk(k);
        *beta = beta0 + n;
        for j in 0..d {
            mix.means[k * d + j] = (beta0 * prior.mean[j] + n * ml.means[k * d + j]) / *beta;
        }
    }
    let dm = |k: usize, j: usize| ml.means[k * d + j] - prior.mean[j];
    let psi = &prior.covariance;
    match mix.cov_type {
        CovarianceType::Full => {
            for k in 0..k_n {
                let nu = prior.dof + nk(k);
                post.dof[k] = nu;
                let shrink = nk(k) * beta0 / post.mean_precision[k];
                for ij in 0..d * d {
                    let (i, j) = (ij / d, ij % d);
                    mix.covariances[k * d * d + ij] =
                        (psi[ij] + nk(k) * ml.covariances[k * d * d + ij] + shrink * dm(k, i) * dm(k, j)) / nu;
                }
            }
        }
        CovarianceType::Tied => {
            let per = total / k_n as f64;
            let nu = prior.dof + per;
            post.dof[0] = nu;
            for ij in 0..d * d {
                let (i, j) = (ij / d, ij % d);
                let spread: f64 = (0..k_n)
                    .map(|k| nk(k) / post.mean_precision[k] * dm(k, i) * dm(k, j))
                    .sum();
                mix.covariances[ij] = (psi[ij] + per * ml.covariances[ij] + beta0 / k_n as f64 * spread) / nu;
            }
        }
        CovarianceType::Diag => {
            for k in 0..k_n {
                let nu = prior.dof + nk(k);
                post.dof[k] = nu;
                let shrink = beta0 / post.mean_precision[k];
                for j in 0..d {
                    let s = ml.covariances[k * d + j] + shrink * dm(k, j) * dm(k, j);
                    mix.covariances[k * d + j] = (psi[j] + nk(k) * s) / nu;
                }
            }
        }
        CovarianceType::Spherical => {
            for k in 0..k_n {
                let nu = prior.dof + nk(k);
                post.dof[k] = nu;
                let spread = (0..d).map(|j| dm(k, j) * dm(k, j)).sum::<f64>() / d as f64;
                let s = ml.covariances[k] + beta0 / post.mean_precision[k] * spread;
                mix.covariances[k] = (psi[0] + nk(k) * s) / nu;
            }
        }
    }
    set_weights_and_constants(&mut post, &mut mix.weights, d);
    mix.variational = Some(post);
    mix.set_precisions_from_covariances(scratch)
}

/// scikit-learn's `weights_` (the weights' posterior means: DD α/Σα; DP the expected stick
/// lengths, renormalised) and the E-step constants c_k.
#[allow(clippy::needless_range_loop)]
pub(crate) fn set_weights_and_constants(post: &mut Posterior, weights: &mut [f64], d: usize) {
    let k_n = weights.len();
    match post.weight_prior {
        WeightPrior::DirichletDistribution => {
            let sum: f64 = post.concentration_a.iter().sum();
            let psi_sum = digamma(sum);
            for k in 0..k_n {
                weights[k] = post.concentration_a[k] / sum;
                post.log_weights[k] = digamma(post.concentration_a[k]) - psi_sum;
            }
        }
        WeightPrior::DirichletProcess => {
            // E[ln π_k] = ψ(a_k) − ψ(a_k + b_k) + Σ_{j<k} [ψ(b_j) − ψ(a_j + b_j)].
            let (mut rest, mut stick) = (0.0, 1.0);
            for k in 0..k_n {
                let (a, b) = (post.concentration_a[k], post.concentration_b[k]);
                let psi_ab = digamma(a + b);
                post.log_weights[k] = digamma(a) - psi_ab + rest;
                rest += digamma(b) - psi_ab;
                weights[k] = a / (a + b) * stick;
                stick *= b / (a + b);
            }
            let sum: f64 = weights.iter().sum();
            weights.iter_mut().for_each(|w| *w /= sum);
        }
    }
    let df = d as f64;
    for k in 0..k_n {
        let nu = post.dof_of(k);
        let psi_sum: f64 = (0..d).map(|i| digamma(0.5 * (nu - i as f64))).sum();
        post.log_weights[k] +=
            0.5 * (df * 2f64.ln() + psi_sum) - 0.5 * df * nu.ln() - df / (2.0 * post.mean_precision[k]);
    }
}
