//! Gaussian mixture models fitted by expectation–maximisation, with scikit-learn's `GaussianMixture`
//! semantics, on a float64 CPU path (the reference) and on any GPU that wgpu drives.
//!
//! Parameters go through a validating builder; data is a borrowed row-major view of f32 or f64;
//! the fitted [`GmmModel`] exposes scikit-learn's attributes and methods.
//!
//! ```
//! use gmm_gpu::{CovarianceType, DataView, GmmParams};
//!
//! // Two well-separated clusters on a line.
//! let x: Vec<f64> = (0..200).map(|i| if i < 100 { i as f64 * 0.01 } else { 10.0 + i as f64 * 0.01 }).collect();
//! let data = DataView::from_f64(&x, 1)?;
//! let model = GmmParams::builder(2)
//!     .covariance_type(CovarianceType::Diag)
//!     .seed(7)
//!     .build()?
//!     .fit(&data)?;
//! assert!(model.converged());
//! let mut means = model.means().to_vec();
//! means.sort_by(f64::total_cmp);
//! assert!((means[0] - 0.495).abs() < 1e-6 && (means[1] - 11.495).abs() < 1e-6);
//! let labels = model.predict(&data)?;
//! assert_ne!(labels[0], labels[199]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
mod cpu;
mod data;
mod em;
mod error;
mod init;
mod kmeans;
mod linalg;
mod mixture;
mod model;
mod mstep;
mod params;
mod stats;

pub use data::{DataView, Element, SampleWeights, Samples};
pub use error::GmmError;
pub use model::GmmModel;
pub use params::{CovarianceType, GmmParams, GmmParamsBuilder, InitMethod, ParseNameError};

use cpu::CpuBackend;
use em::WarmStart;

impl GmmParams {
    /// Fits a fresh model to `data` (ignoring `warm_start`, which needs a [`GaussianMixture`]).
    pub fn fit(&self, data: &DataView) -> Result<GmmModel, GmmError> {
        fit_model(self, data, None, None)
    }

    /// Fits a fresh model maximising the weighted likelihood Σ wᵢ·log p(xᵢ).
    pub fn fit_weighted(
        &self,
        data: &DataView,
        sample_weight: &[f64],
    ) -> Result<GmmModel, GmmError> {
        let w = SampleWeights::new(sample_weight, data.n_samples())?;
        fit_model(self, data, Some(w.as_slice()), None)
    }
}

/// The scikit-learn-style estimator: parameters plus the current model, so that with
/// `warm_start` a second fit continues from the first.
#[derive(Clone, Debug)]
pub struct GaussianMixture {
    params: GmmParams,
    model: Option<GmmModel>,
}

impl GaussianMixture {
    /// An unfitted estimator.
    pub fn new(params: GmmParams) -> Self {
        Self {
            params,
            model: None,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &GmmParams {
        &self.params
    }

    /// The current model, once fitted.
    pub fn model(&self) -> Option<&GmmModel> {
        self.model.as_ref()
    }

    /// Takes the current model.
    pub fn into_model(self) -> Option<GmmModel> {
        self.model
    }

    /// Fits to `data`; with `warm_start` and a current model, continues from it for up to max_iter
    /// iterations (n_init is then 1). On error the current model is kept.
    pub fn fit(&mut self, data: &DataView) -> Result<&GmmModel, GmmError> {
        self.fit_inner(data, None)
    }

    /// As [`GaussianMixture::fit`], maximising the weighted likelihood.
    pub fn fit_weighted(
        &mut self,
        data: &DataView,
        sample_weight: &[f64],
    ) -> Result<&GmmModel, GmmError> {
        let w = SampleWeights::new(sample_weight, data.n_samples())?;
        self.fit_inner(data, Some(w.as_slice()))
    }

    /// Fits, then labels the samples with the fitted model (equal to `fit` then `predict`).
    pub fn fit_predict(&mut self, data: &DataView) -> Result<Vec<usize>, GmmError> {
        self.fit(data)?.predict(data)
    }

    fn fit_inner(&mut self, data: &DataView, w: Option<&[f64]>) -> Result<&GmmModel, GmmError> {
        let previous = if self.params.warm_start {
            self.model.as_ref()
        } else {
            None
        };
        let model = fit_model(&self.params, data, w, previous)?;
        Ok(self.model.insert(model))
    }
}

/// Checks the data against the parameters, then runs the EM driver on the CPU backend.
fn fit_model(
    params: &GmmParams,
    data: &DataView,
    sample_weight: Option<&[f64]>,
    previous: Option<&GmmModel>,
) -> Result<GmmModel, GmmError> {
    let (n, k) = (data.n_samples(), params.n_components);
    if n < 2 {
        return Err(GmmError::TooFewSamples { n_samples: n });
    }
    if n < k {
        return Err(GmmError::FewerSamplesThanComponents {
            n_samples: n,
            n_components: k,
        });
    }
    if let Some(d) = params.init_n_features() {
        let what = if params.means_init.is_some() {
            "means_init"
        } else {
            "precisions_init"
        };
        data.check_features(what, d)?;
    }
    let warm = match previous {
        Some(m) => {
            data.check_features("the warm-started model", m.n_features())?;
            Some(WarmStart {
                mixture: &m.mixture,
                lower_bound: m.lower_bound,
            })
        }
        None => None,
    };
    let mut backend = CpuBackend::new(*data, sample_weight);
    let outcome = em::fit(params, &mut backend, data, sample_weight, warm)?;
    Ok(GmmModel::from_outcome(outcome))
}

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
