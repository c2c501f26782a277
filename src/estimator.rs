//! What a fit estimates: maximum likelihood, the MAP estimate under a conjugate prior, or a
//! variational posterior; resolved against the data once per fit, with its M-step.

use crate::backend::Backend;
use crate::error::GmmError;
use crate::mixture::Mixture;
use crate::mstep::{Frozen, m_step_frozen};
use crate::params::GmmParams;
use crate::prior::MapPrior;
use crate::prior::map::map_moments;
use crate::stats::SuffStats;
use crate::variational::VbPrior;
use crate::variational::step::vb_m_step;

/// A fit's estimator, its data-dependent defaults filled in.
pub(crate) enum Estimator {
    /// With the parameters its M-step keeps.
    MaximumLikelihood(Frozen),
    Map(MapPrior),
    /// The priors, and scratch for the maximum-likelihood moments the variational step starts from.
    Variational {
        prior: Box<VbPrior>,
        ml: Box<Mixture>,
    },
}

impl Estimator {
    /// The estimator `params` asks for, its priors' defaults from the data the backend holds
    /// (over every rank).
    pub fn resolve<B: Backend>(
        params: &GmmParams,
        backend: &mut B,
        sample_weight: Option<&[f64]>,
    ) -> Result<Self, GmmError> {
        let (k, kind) = (params.n_components, params.covariance_type);
        Ok(match (&params.prior, &params.variational) {
            (Some(p), _) => Self::Map(p.resolve(backend, sample_weight, k, kind)?),
            (None, Some(v)) => Self::Variational {
                prior: Box::new(v.resolve(backend, sample_weight, k, kind)?),
                ml: Box::new(Mixture::zeros(kind, k, backend.n_features())),
            },
            (None, None) => Self::MaximumLikelihood(params.frozen),
        })
    }

    /// Whether the lower bound is the variational one (computed after the M-step, a total).
    pub fn is_variational(&self) -> bool {
        matches!(self, Self::Variational { .. })
    }

    /// The MAP prior, if this is a MAP fit.
    pub fn map_prior(&self) -> Option<&MapPrior> {
        match self {
            Self::Map(p) => Some(p),
            _ => None,
        }
    }

    /// The variational priors, if this is a variational fit.
    pub fn variational_prior(&self) -> Option<&VbPrior> {
        match self {
            Self::Variational { prior, .. } => Some(prior.as_ref()),
            _ => None,
        }
    }

    /// The M-step from statistics around `centres`, into `mix`, precision factors included.
    pub fn m_step(
        &mut self,
        stats: &SuffStats,
        centres: &[f64],
        reg_covar: f64,
        mix: &mut Mixture,
        scratch: &mut [f64],
    ) -> Result<(), GmmError> {
        match self {
            Self::MaximumLikelihood(frozen) => m_step_frozen(stats, centres, reg_covar, mix, scratch, *frozen),
            Self::Map(p) => {
                map_moments(stats, centres, p, reg_covar, mix);
                mix.set_precisions_from_covariances(scratch)
            }
            Self::Variational { prior, ml } => vb_m_step(stats, centres, prior, reg_covar, mix, ml, scratch),
        }
    }
}
