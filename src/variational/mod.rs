//! Variational Bayesian mixtures, as scikit-learn's `BayesianGaussianMixture`
//! (../shared/design/bayesian.md §2): the user's [`Variational`] priors, resolved against the
//! data at the start of a fit, and the posterior's extra parameters that a fitted mixture carries.

pub(crate) mod bound;
pub(crate) mod step;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::error::GmmError;
use crate::kinds::CovarianceType;
use crate::prior::{check_finite, check_mean_and_scale, data_moments};

/// The prior on the weights of a variational fit (scikit-learn's `weight_concentration_prior_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightPrior {
    /// A Dirichlet process by stick-breaking (the default): components the data do not need
    /// are emptied, so K is an upper bound on the components used.
    #[default]
    DirichletProcess,
    /// A Dirichlet distribution of concentration α0 on the K weights.
    DirichletDistribution,
}

impl WeightPrior {
    /// scikit-learn's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DirichletProcess => "dirichlet_process",
            Self::DirichletDistribution => "dirichlet_distribution",
        }
    }
}

impl std::str::FromStr for WeightPrior {
    type Err = crate::ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dirichlet_process" | "dirichlet-process" => Ok(Self::DirichletProcess),
            "dirichlet_distribution" | "dirichlet-distribution" => Ok(Self::DirichletDistribution),
            _ => Err(crate::ParseNameError::new(
                "weight concentration prior type",
                s,
                "dirichlet_process, dirichlet_distribution",
            )),
        }
    }
}

/// Variational Bayesian estimation (scikit-learn's `BayesianGaussianMixture`), with its priors
/// under scikit-learn's names; each left unset takes scikit-learn's default from the data when
/// the fit starts: α0 = 1/K (`weight_concentration_prior`), β0 = 1 (`mean_precision_prior`),
/// m0 = the column means (`mean_prior`), ν0 = d (`degrees_of_freedom_prior`), and Ψ0
/// (`covariance_prior`) the data's covariance (full, tied: d × d), per-feature variances (diag:
/// d) or their mean (spherical: one number), with the n − 1 denominator.
///
/// The fit's lower bound is scikit-learn's: the evidence lower bound less constant terms, a total
/// over the samples (not a mean), and `tol` applies to its change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Variational {
    weight_prior: WeightPrior,
    weight_concentration_prior: Option<f64>,
    mean_precision_prior: Option<f64>,
    mean_prior: Option<Vec<f64>>,
    degrees_of_freedom_prior: Option<f64>,
    covariance_prior: Option<Vec<f64>>,
}

impl Variational {
    /// A Dirichlet-process prior on the weights (scikit-learn's default).
    pub fn dirichlet_process() -> Self {
        Self::default()
    }
    /// A Dirichlet-distribution prior on the weights.
    pub fn dirichlet_distribution() -> Self {
        Self {
            weight_prior: WeightPrior::DirichletDistribution,
            ..Self::default()
        }
    }
    /// Sets the prior on the weights.
    pub fn weight_prior(mut self, prior: WeightPrior) -> Self {
        self.weight_prior = prior;
        self
    }
    /// Sets α0 > 0 (default 1/K).
    pub fn weight_concentration_prior(mut self, alpha: f64) -> Self {
        self.weight_concentration_prior = Some(alpha);
        self
    }
    /// Sets β0 > 0 (default 1).
    pub fn mean_precision_prior(mut self, beta: f64) -> Self {
        self.mean_precision_prior = Some(beta);
        self
    }
    /// Sets m0, one value per feature (default the column means).
    pub fn mean_prior(mut self, mean: Vec<f64>) -> Self {
        self.mean_prior = Some(mean);
        self
    }
    /// Sets ν0 > d − 1 (default d).
    pub fn degrees_of_freedom_prior(mut self, nu: f64) -> Self {
        self.degrees_of_freedom_prior = Some(nu);
        self
    }
    /// Sets Ψ0: d × d row-major, symmetric positive definite (full, tied), d positive values
    /// (diag), or one (spherical).
    pub fn covariance_prior(mut self, psi: Vec<f64>) -> Self {
        self.covariance_prior = Some(psi);
        self
    }
    /// The prior on the weights.
    pub fn get_weight_prior(&self) -> WeightPrior {
        self.weight_prior
    }

    /// The checks that need no data.
    pub(crate) fn check(&self) -> Result<(), GmmError> {
        for (field, value) in [
            ("weight_concentration_prior", self.weight_concentration_prior),
            ("mean_precision_prior", self.mean_precision_prior),
        ] {
            if let Some(v) = value
                && !(v.is_finite() && v > 0.0)
            {
                return Err(GmmError::VariationalPriorNotPositive { field, value: v });
            }
        }
        if let Some(nu) = self.degrees_of_freedom_prior
            && !nu.is_finite()
        {
            return Err(GmmError::VariationalDof {
                value: nu,
                n_features: None,
            });
        }
        check_finite([
            ("mean_prior", self.mean_prior.as_deref()),
            ("covariance_prior", self.covariance_prior.as_deref()),
        ])
    }

    /// The checks that need d.
    pub(crate) fn check_against(&self, kind: CovarianceType, d: usize) -> Result<(), GmmError> {
        if let Some(nu) = self.degrees_of_freedom_prior
            && nu <= d as f64 - 1.0
        {
            return Err(GmmError::VariationalDof {
                value: nu,
                n_features: Some(d),
            });
        }
        check_mean_and_scale(
            self.mean_prior.as_deref(),
            self.covariance_prior.as_deref(),
            kind,
            d,
            ("mean_prior", "covariance_prior"),
            d,
        )
    }

    /// The priors of a fit of `k` components of type `kind` to the data `backend` holds.
    pub(crate) fn resolve<B: Backend>(
        &self,
        backend: &mut B,
        sample_weight: Option<&[f64]>,
        k: usize,
        kind: CovarianceType,
    ) -> Result<VbPrior, GmmError> {
        let d = backend.n_features();
        self.check_against(kind, d)?;
        let moments = if self.mean_prior.is_none() || self.covariance_prior.is_none() {
            Some(data_moments(backend, sample_weight, k, kind)?)
        } else {
            None
        };
        let mean = match (&self.mean_prior, &moments) {
            (Some(m), _) => m.clone(),
            (None, Some((m, _, _))) => m.clone(),
            (None, None) => unreachable!("the moments are taken when the mean prior is unset"),
        };
        let covariance = match (&self.covariance_prior, &moments) {
            (Some(p), _) => p.clone(),
            (None, Some((_, c, _))) => match kind {
                CovarianceType::Full | CovarianceType::Tied => c.clone(),
                CovarianceType::Diag => (0..d).map(|i| c[i * d + i]).collect(),
                // data_moments spreads the mean variance over the diagonal for spherical.
                CovarianceType::Spherical => vec![c[0]],
            },
            (None, None) => unreachable!("the moments are taken when the covariance prior is unset"),
        };
        Ok(VbPrior {
            weight_prior: self.weight_prior,
            weight_concentration: self.weight_concentration_prior.unwrap_or(1.0 / k as f64),
            mean_precision: self.mean_precision_prior.unwrap_or(1.0),
            mean,
            dof: self.degrees_of_freedom_prior.unwrap_or(d as f64),
            covariance,
        })
    }
}

/// A variational fit's priors, resolved for one fit (scikit-learn's `*_prior_` attributes).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct VbPrior {
    pub weight_prior: WeightPrior,
    pub weight_concentration: f64,
    pub mean_precision: f64,
    pub mean: Vec<f64>,
    pub dof: f64,
    /// Ψ0 in the covariance type's layout: d × d, d, or one value.
    pub covariance: Vec<f64>,
}

/// The parameters of a variational posterior beyond a mixture's means, covariances and precision
/// factors (scikit-learn's `weight_concentration_`, `mean_precision_`, `degrees_of_freedom_`),
/// and the E-step's constant c_k, which takes the place of ln w_k in the log-density kernels.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Posterior {
    pub weight_prior: WeightPrior,
    /// α_k (Dirichlet distribution) or the Beta's a_k (process).
    pub concentration_a: Vec<f64>,
    /// The Beta's b_k (process); empty for a Dirichlet distribution.
    pub concentration_b: Vec<f64>,
    pub mean_precision: Vec<f64>,
    /// ν_k; one value for tied.
    pub dof: Vec<f64>,
    /// c_k = E[ln π_k] + ½[d ln 2 + Σ_i ψ((ν_k − i)/2)] − (d/2) ln ν_k − d/(2β_k).
    pub log_weights: Vec<f64>,
}

impl Posterior {
    /// ν of component `k` (tied: the one value).
    pub fn dof_of(&self, k: usize) -> f64 {
        self.dof[if self.dof.len() == 1 { 0 } else { k }]
    }
}

/// ψ(x) for x > 0: the recurrence ψ(x) = ψ(x + 1) − 1/x up to x ≥ 10, then the asymptotic series
/// to x⁻¹⁴ (its next term is 4e-17 there; at 6 it would be 1.6e-13).
pub(crate) fn digamma(x: f64) -> f64 {
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    // Bernoulli terms: 1/12, 1/120, 1/252, 1/240, 1/132, 691/32760, 1/12.
    let series = inv2
        * (1.0 / 12.0
            - inv2
                * (1.0 / 120.0
                    - inv2
                        * (1.0 / 252.0
                            - inv2 * (1.0 / 240.0 - inv2 * (1.0 / 132.0 - inv2 * (691.0 / 32760.0 - inv2 / 12.0))))));
    shift + x.ln() - 0.5 * inv - series
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ψ against values to 17 digits (scipy.special.digamma; ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2) and
    /// its recurrence.
    #[test]
    fn digamma_matches_known_values() {
        let gamma = 0.577_215_664_901_532_9;
        for (x, want) in [
            (1.0, -gamma),
            (0.5, -gamma - 2.0 * 2f64.ln()),
            (2.0, 1.0 - gamma),
            (10.0, 2.251_752_589_066_721_2),
            (100.0, 4.600_161_852_738_087),
            (1e-3, -1_000.575_571_931_810_3),
        ] {
            let got = digamma(x);
            assert!(
                (got - want).abs() <= 2e-15 * want.abs().max(1.0),
                "ψ({x}) = {got}, want {want}"
            );
        }
        for x in [0.3, 1.7, 5.5, 6.5, 40.0] {
            let r = digamma(x + 1.0) - digamma(x) - 1.0 / x;
            assert!(r.abs() < 1e-14, "recurrence at {x}: {r}");
        }
    }
}
