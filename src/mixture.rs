//! The mixture's parameters on the host, in f64, shaped as scikit-learn stores them.

use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::linalg;
use crate::variational::Posterior;

/// ½·log(2π).
pub(crate) const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Weights, means, covariances and precision Cholesky factors, flat and row-major:
/// - `means`: K x d
/// - `covariances`: full K x d x d, tied d x d, diag K x d, spherical K
/// - `precisions_cholesky`: the same shapes; for full and tied an upper-triangular U with Σ⁻¹ = U·Uᵀ,
///   for diag and spherical 1/σ.
///
/// `log_consts[k]` = log π_k − (d/2)·log 2π + log det U_k is derived and kept in step by [`Mixture::refresh`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Mixture {
    pub cov_type: CovarianceType,
    pub n_components: usize,
    pub n_features: usize,
    pub weights: Vec<f64>,
    pub means: Vec<f64>,
    pub covariances: Vec<f64>,
    pub precisions_cholesky: Vec<f64>,
    pub log_consts: Vec<f64>,
    /// A variational posterior's extra parameters, whose constants c_k take the place of ln w_k
    /// in the E-step (scikit-learn's `BayesianGaussianMixture`); `None` for a plain mixture.
    pub variational: Option<Posterior>,
}

impl Mixture {
    /// A zero-filled mixture of the given shape (to be filled by an initialiser or the M-step).
    pub fn zeros(cov_type: CovarianceType, n_components: usize, n_features: usize) -> Self {
        let len = cov_type.covariance_len(n_components, n_features);
        Self {
            cov_type,
            n_components,
            n_features,
            weights: vec![0.0; n_components],
            means: vec![0.0; n_components * n_features],
            covariances: vec![0.0; len],
            precisions_cholesky: vec![0.0; len],
            log_consts: vec![0.0; n_components],
            variational: None,
        }
    }

    /// Copies `other` into self, reusing self's storage (no allocation when the shapes match).
    pub fn copy_from(&mut self, other: &Mixture) {
        self.cov_type = other.cov_type;
        self.n_components = other.n_components;
        self.n_features = other.n_features;
        self.weights.clone_from(&other.weights);
        self.means.clone_from(&other.means);
        self.covariances.clone_from(&other.covariances);
        self.precisions_cholesky.clone_from(&other.precisions_cholesky);
        self.log_consts.clone_from(&other.log_consts);
        self.variational.clone_from(&other.variational);
    }

    /// The precision factor that component k uses: d x d for full and tied, d for diag, 1 for spherical.
    #[inline]
    pub fn precision_factor(&self, k: usize) -> &[f64] {
        let d = self.n_features;
        match self.cov_type {
            CovarianceType::Full => &self.precisions_cholesky[k * d * d..(k + 1) * d * d],
            CovarianceType::Tied => &self.precisions_cholesky,
            CovarianceType::Diag => &self.precisions_cholesky[k * d..(k + 1) * d],
            CovarianceType::Spherical => &self.precisions_cholesky[k..k + 1],
        }
    }

    /// The E-step's additive constant of component `k`: ln w_k, or a variational posterior's c_k.
    #[inline]
    pub fn log_weight(&self, k: usize) -> f64 {
        match &self.variational {
            Some(v) => v.log_weights[k],
            None => self.weights[k].ln(),
        }
    }

    /// Recomputes `log_consts` from the weights and the precision factors.
    pub fn refresh(&mut self) {
        let d = self.n_features;
        for k in 0..self.n_components {
            let u = self.precision_factor(k);
            let log_det = match self.cov_type {
                CovarianceType::Full | CovarianceType::Tied => (0..d).map(|j| u[j * d + j].ln()).sum::<f64>(),
                CovarianceType::Diag => u.iter().map(|p| p.ln()).sum::<f64>(),
                CovarianceType::Spherical => d as f64 * u[0].ln(),
            };
            self.log_consts[k] = self.log_weight(k) - d as f64 * HALF_LN_2PI + log_det;
        }
    }

    /// Factors every covariance (Cholesky, in f64) into `precisions_cholesky`, then refreshes the constants.
    /// `scratch` holds d·d values. Fails with the component whose covariance is not positive definite.
    pub fn set_precisions_from_covariances(&mut self, scratch: &mut [f64]) -> Result<(), GmmError> {
        let d = self.n_features;
        match self.cov_type {
            CovarianceType::Full | CovarianceType::Tied => {
                let tied = self.cov_type == CovarianceType::Tied;
                for (k, (cov, u)) in self
                    .covariances
                    .chunks_exact(d * d)
                    .zip(self.precisions_cholesky.chunks_exact_mut(d * d))
                    .enumerate()
                {
                    let l = &mut scratch[..d * d];
                    if !linalg::cholesky_lower(cov, d, l) {
                        return Err(GmmError::IllDefinedCovariance {
                            component: (!tied).then_some(k),
                        });
                    }
                    linalg::precision_factor_from_cholesky(l, d, u);
                }
            }
            CovarianceType::Diag | CovarianceType::Spherical => {
                let per = if self.cov_type == CovarianceType::Diag { d } else { 1 };
                for (i, (&v, p)) in self
                    .covariances
                    .iter()
                    .zip(self.precisions_cholesky.iter_mut())
                    .enumerate()
                {
                    // scikit-learn rejects any variance <= 0; NaN is rejected too.
                    if !(v > 0.0 && v.is_finite()) {
                        return Err(GmmError::IllDefinedCovariance {
                            component: Some(i / per),
                        });
                    }
                    *p = 1.0 / v.sqrt();
                }
            }
        }
        self.refresh();
        Ok(())
    }

    /// Recomputes `covariances` from `precisions_cholesky` (after user-given precisions).
    pub fn set_covariances_from_precisions(&mut self, scratch: &mut [f64]) {
        let d = self.n_features;
        match self.cov_type {
            CovarianceType::Full | CovarianceType::Tied => {
                for (u, cov) in self
                    .precisions_cholesky
                    .chunks_exact(d * d)
                    .zip(self.covariances.chunks_exact_mut(d * d))
                {
                    linalg::covariance_from_precision_factor(u, d, cov, scratch);
                }
            }
            CovarianceType::Diag | CovarianceType::Spherical => {
                for (p, cov) in self.precisions_cholesky.iter().zip(self.covariances.iter_mut()) {
                    *cov = 1.0 / (p * p);
                }
            }
        }
    }

    /// Precision matrices Σ⁻¹, shaped as the covariances.
    pub fn precisions(&self) -> Vec<f64> {
        let d = self.n_features;
        match self.cov_type {
            CovarianceType::Full | CovarianceType::Tied => {
                let mut out = vec![0.0; self.precisions_cholesky.len()];
                for (u, p) in self
                    .precisions_cholesky
                    .chunks_exact(d * d)
                    .zip(out.chunks_exact_mut(d * d))
                {
                    linalg::gram_of_factor(u, d, p);
                }
                out
            }
            CovarianceType::Diag | CovarianceType::Spherical => {
                self.precisions_cholesky.iter().map(|p| p * p).collect()
            }
        }
    }

    /// Component k's covariance as a dense d x d matrix, whatever the covariance type.
    pub fn dense_covariance(&self, k: usize) -> Vec<f64> {
        let d = self.n_features;
        let mut out = vec![0.0; d * d];
        match self.cov_type {
            CovarianceType::Full => out.copy_from_slice(&self.covariances[k * d * d..(k + 1) * d * d]),
            CovarianceType::Tied => out.copy_from_slice(&self.covariances),
            CovarianceType::Diag => (0..d).for_each(|i| out[i * d + i] = self.covariances[k * d + i]),
            CovarianceType::Spherical => (0..d).for_each(|i| out[i * d + i] = self.covariances[k]),
        }
        out
    }

    /// Whether every parameter is finite (a model is never returned otherwise).
    pub fn is_finite(&self) -> bool {
        [
            &self.weights,
            &self.means,
            &self.covariances,
            &self.precisions_cholesky,
            &self.log_consts,
        ]
        .iter()
        .all(|v| v.iter().all(|x| x.is_finite()))
    }
}
