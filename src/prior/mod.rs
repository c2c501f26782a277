//! Priors on a mixture's parameters: the user's [`Prior`] (mclust's `priorControl()`), checked once
//! in the builder, and resolved against the data at the start of a fit into the hyperparameters
//! the MAP M-step uses ([`map`]).

pub(crate) mod map;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::linalg::{cholesky_lower, packed_index};
use crate::stats::SuffStats;
pub(crate) use map::MapPrior;

/// A conjugate prior on the means and covariances, for maximum a posteriori (MAP) estimation
/// as R's mclust (`priorControl()`; Fraley & Raftery 2007): a normal prior on each mean with
/// shrinkage κ toward μ_P, an inverse-Wishart (full, tied) or inverse-gamma (diag, spherical)
/// prior on the covariances with ν degrees of freedom and scale Λ, and, optionally, a Dirichlet
/// prior of concentration α on the weights.
///
/// Every hyperparameter left unset takes mclust's `defaultPrior` from the data when the fit
/// starts: κ = 0.01, μ_P the column means, ν = d + 2, and the scale var(X)/K^(2/d) (full and
/// tied: the covariance matrix, its diagonal alone when there are no more samples than
/// features; diag and spherical: the mean column variance). With sample weights the moments are
/// weighted and n is Σw, so that integer weights give what duplicated rows give (the covariance's
/// denominator Σw − 1); weights that do not count samples (Σw²/Σw < 1, such as weights summing
/// to 1) use the unbiased denominator of reliability weights, Σw − Σw²/Σw, and n = (Σw)²/Σw².
/// There is no Dirichlet prior unless [`Prior::weights`] asks for one, as in mclust.
///
/// ```
/// use gmm_gpu::{CovarianceType, DataView, GmmParams, Prior};
///
/// // Three distinct points, each repeated: maximum likelihood with three components is singular.
/// let x: Vec<f64> = (0..30).map(|i| (i % 3) as f64).collect();
/// let data = DataView::from_f64(&x, 1)?;
/// let model = GmmParams::builder(3).covariance_type(CovarianceType::Diag)
///     .prior(Prior::mclust()).seed(1).build()?.fit(&data)?;
/// assert!(model.covariances().iter().all(|&v| v > 0.0 && v.is_finite()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    shrinkage: Option<f64>,
    mean: Option<Vec<f64>>,
    dof: Option<f64>,
    scale: Option<Vec<f64>>,
    weights: Option<f64>,
}

impl Prior {
    /// mclust's `defaultPrior`: every hyperparameter from the data, no prior on the weights.
    pub fn mclust() -> Self {
        Self::default()
    }
    /// Sets the shrinkage κ > 0 of the means toward the prior mean (default 0.01).
    pub fn shrinkage(mut self, kappa: f64) -> Self {
        self.shrinkage = Some(kappa);
        self
    }
    /// Sets the prior mean μ_P, one value per feature (default the column means).
    pub fn mean(mut self, mean: Vec<f64>) -> Self {
        self.mean = Some(mean);
        self
    }
    /// Sets the degrees of freedom ν > d − 1 (default d + 2).
    pub fn dof(mut self, nu: f64) -> Self {
        self.dof = Some(nu);
        self
    }
    /// Sets the scale: a symmetric positive-definite d × d matrix, row-major, for full and tied
    /// covariances; one positive number for diag and spherical (default var(X)/K^(2/d)).
    pub fn scale(mut self, scale: Vec<f64>) -> Self {
        self.scale = Some(scale);
        self
    }
    /// Adds a Dirichlet prior of concentration α ≥ 1 on the weights, whose MAP update is
    /// π_k = (n_k + α − 1)/(n + K(α − 1)) (α = 1 is no prior). Off by default, as in mclust.
    pub fn weights(mut self, alpha: f64) -> Self {
        self.weights = Some(alpha);
        self
    }

    /// The shrinkage κ, if set.
    pub fn get_shrinkage(&self) -> Option<f64> {
        self.shrinkage
    }
    /// The prior mean, if set.
    pub fn get_mean(&self) -> Option<&[f64]> {
        self.mean.as_deref()
    }
    /// The degrees of freedom ν, if set.
    pub fn get_dof(&self) -> Option<f64> {
        self.dof
    }
    /// The scale, if set.
    pub fn get_scale(&self) -> Option<&[f64]> {
        self.scale.as_deref()
    }
    /// The weights' Dirichlet concentration α, if set.
    pub fn get_weights(&self) -> Option<f64> {
        self.weights
    }

    /// The checks that need no data (the builder's): κ finite and > 0, ν finite and > 0, α
    /// finite and ≥ 1, and every entry of the mean and scale finite.
    pub(crate) fn check(&self) -> Result<(), GmmError> {
        if let Some(kappa) = self.shrinkage
            && !(kappa.is_finite() && kappa > 0.0)
        {
            return Err(GmmError::PriorShrinkage { value: kappa });
        }
        if let Some(nu) = self.dof
            && !(nu.is_finite() && nu > 0.0)
        {
            return Err(GmmError::PriorDof {
                value: nu,
                n_features: None,
            });
        }
        if let Some(alpha) = self.weights
            && !(alpha.is_finite() && alpha >= 1.0)
        {
            return Err(GmmError::PriorWeights { value: alpha });
        }
        check_finite([("mean", self.mean.as_deref()), ("scale", self.scale.as_deref())])
    }

    /// The checks that need the feature count d: the mean has d values, ν > d − 1, and the
    /// scale has the covariance type's shape and is positive definite.
    pub(crate) fn check_against(&self, kind: CovarianceType, d: usize) -> Result<(), GmmError> {
        if let Some(nu) = self.dof
            && nu <= d as f64 - 1.0
        {
            return Err(GmmError::PriorDof {
                value: nu,
                n_features: Some(d),
            });
        }
        check_mean_and_scale(
            self.mean.as_deref(),
            self.scale.as_deref(),
            kind,
            d,
            ("mean", "scale"),
            1,
        )
    }

    /// The hyperparameters for a fit of `k` components of type `kind` to the data `backend`
    /// holds (with `sample_weight`, if any): the user's values, checked against d, and mclust's
    /// defaults for the rest, from the data's weighted moments over every rank.
    pub(crate) fn resolve<B: Backend>(
        &self,
        backend: &mut B,
        sample_weight: Option<&[f64]>,
        k: usize,
        kind: CovarianceType,
    ) -> Result<MapPrior, GmmError> {
        let d = backend.n_features();
        self.check_against(kind, d)?;
        let mut prior = if self.mean.is_some() && self.scale.is_some() {
            // Nothing to take from the data.
            MapPrior::default_of(&vec![0.0; d], &vec![0.0; d * d], 2 + d, k, kind)
        } else {
            let (mean, covariance, n) = data_moments(backend, sample_weight, k, kind)?;
            MapPrior::default_of(&mean, &covariance, n, k, kind)
        };
        if let Some(kappa) = self.shrinkage {
            prior.shrinkage = kappa;
        }
        if let Some(m) = &self.mean {
            prior.mean.clone_from(m);
        }
        if let Some(nu) = self.dof {
            prior.dof = nu;
        }
        if let Some(s) = &self.scale {
            prior.scale.clone_from(s);
        }
        prior.weights = self.weights;
        Ok(prior)
    }
}

/// Every entry of each given array is finite: else `PriorNotFinite` naming the array and entry.
pub(crate) fn check_finite<const N: usize>(arrays: [(&'static str, Option<&[f64]>); N]) -> Result<(), GmmError> {
    for (field, values) in arrays {
        if let Some(v) = values
            && let Some(index) = v.iter().position(|x| !x.is_finite())
        {
            return Err(GmmError::PriorNotFinite {
                field,
                index,
                value: v[index],
            });
        }
    }
    Ok(())
}

/// The checks of a prior's mean and scale that need d, shared by the MAP prior and the
/// variational one: the mean has d values; the scale is d × d, symmetric and positive definite
/// (full, tied), or `diag_len` positive values (diag: 1 for MAP's ς, d for a variational Ψ0),
/// or one (spherical). `fields` name the two in errors.
pub(crate) fn check_mean_and_scale(
    mean: Option<&[f64]>,
    scale: Option<&[f64]>,
    kind: CovarianceType,
    d: usize,
    fields: (&'static str, &'static str),
    diag_len: usize,
) -> Result<(), GmmError> {
    if let Some(m) = mean
        && m.len() != d
    {
        return Err(GmmError::PriorMeanLength {
            field: fields.0,
            expected: d,
            got: m.len(),
        });
    }
    let Some(s) = scale else { return Ok(()) };
    let expected = match kind {
        CovarianceType::Full | CovarianceType::Tied => d * d,
        CovarianceType::Diag => diag_len,
        CovarianceType::Spherical => 1,
    };
    if s.len() != expected {
        return Err(GmmError::PriorScaleShape {
            field: fields.1,
            covariance_type: kind,
            expected,
            got: s.len(),
        });
    }
    let positive_definite = match kind {
        CovarianceType::Full | CovarianceType::Tied => {
            // Symmetric to np.allclose's tolerance, and a Cholesky factor exists.
            let symmetric =
                (0..d).all(|i| (0..i).all(|j| (s[i * d + j] - s[j * d + i]).abs() <= 1e-8 + 1e-5 * s[j * d + i].abs()));
            let mut l = vec![0.0; d * d];
            symmetric && cholesky_lower(s, d, &mut l)
        }
        CovarianceType::Diag | CovarianceType::Spherical => s.iter().all(|&v| v > 0.0),
    };
    if positive_definite {
        Ok(())
    } else {
        Err(GmmError::PriorScaleNotPositiveDefinite {
            field: fields.1,
            covariance_type: kind,
        })
    }
}

/// The data's weighted column means, its covariance (d × d, row-major; the diagonal alone for
/// diag, and the trace spread evenly over it for spherical, which is all their priors use) with
/// the denominator Σw − 1 (or Σw − Σw²/Σw where that is larger, see [`Prior`]), and the sample
/// count that goes with it, from two passes of the
/// backend's k-means statistics with every centroid equal (so every sample goes to the first):
/// the first around the origin for the mean, the second around the mean.
pub(crate) fn data_moments<B: Backend>(
    backend: &mut B,
    sample_weight: Option<&[f64]>,
    k: usize,
    kind: CovarianceType,
) -> Result<(Vec<f64>, Vec<f64>, usize), GmmError> {
    let d = backend.n_features();
    let mut stats = SuffStats::new(kind, k, d);
    let mut centres = vec![0.0; k * d];
    backend.label_statistics(&centres, &mut stats)?;
    let mean: Vec<f64> = stats.s1[..d].iter().map(|s| s / stats.s0[0]).collect();
    for c in centres.chunks_exact_mut(d) {
        c.copy_from_slice(&mean);
    }
    backend.label_statistics(&centres, &mut stats)?;
    let (sw, s1) = (stats.s0[0], &stats.s1[..d]);
    // Σw² on the host, over every rank (Σw without weights).
    let sw2 = sample_weight.map_or(sw, |w| backend.weight_square_sum(w));
    // Counts (every weight >= 1, so Σw²/Σw >= 1) take Σw − 1, as duplicated rows would; other
    // weights the reliability weights' Σw − Σw²/Σw, which no rescaling of them changes.
    let counts = sw2 / sw >= 1.0;
    let (denominator, n) = if counts {
        (sw - 1.0, sw)
    } else {
        (sw - sw2 / sw, sw * sw / sw2)
    };
    let mut covariance = vec![0.0; d * d];
    let s2_len = SuffStats::s2_len(kind, d);
    let s2 = &stats.s2[..s2_len];
    // Centred on the first pass's mean; the second pass's first moment corrects its rounding.
    let centred = |i: usize, j: usize, s: f64| (s - s1[i] * s1[j] / sw) / denominator;
    for i in 0..d {
        for j in 0..d {
            covariance[i * d + j] = match kind {
                CovarianceType::Full | CovarianceType::Tied => centred(i, j, s2[packed_index(i.min(j), i.max(j), d)]),
                CovarianceType::Diag if i == j => centred(i, i, s2[i]),
                CovarianceType::Spherical if i == j => {
                    let correction: f64 = s1.iter().map(|v| v * v).sum::<f64>() / sw;
                    (s2[0] - correction) / denominator / d as f64
                }
                _ => 0.0,
            };
        }
    }
    Ok((mean, covariance, n.round() as usize))
}
