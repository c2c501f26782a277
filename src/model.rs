//! The fitted mixture: scikit-learn's attributes as accessors, its inference methods, sampling,
//! information criteria, and a JSON form with scikit-learn's attribute names.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal, weighted::WeightedIndex};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend::Traffic;
use crate::backend::{Backend, Output};
use crate::cpu::CpuBackend;
use crate::data::DataView;
use crate::error::GmmError;
use crate::gpu::{GpuContext, PrecisionRecord};
use crate::kinds::CovarianceType;
use crate::linalg;
use crate::mixture::Mixture;
use crate::nested::flatten_nested;
use crate::prior::{MapPrior, Prior};
use crate::stats::pairwise_sum;
use crate::variational::step::set_weights_and_constants;
use crate::variational::{Posterior, Variational, VbPrior, WeightPrior};

/// A fitted Gaussian mixture.
///
/// Arrays are flat and row-major, shaped as scikit-learn's attributes:
/// `weights` K, `means` K x d, `covariances` / `precisions` / `precisions_cholesky` per
/// [`CovarianceType::covariance_shape`]. For full and tied, `precisions_cholesky` is upper triangular.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ModelFile", into = "ModelFile")]
pub struct GmmModel {
    pub(crate) mixture: Mixture,
    pub(crate) converged: bool,
    pub(crate) n_iter: usize,
    pub(crate) lower_bound: f64,
    pub(crate) lower_bounds: Vec<f64>,
    pub(crate) backend: String,
    pub(crate) adapter: Option<String>,
    pub(crate) traffic: Option<Traffic>,
    pub(crate) fallback: Option<String>,
    pub(crate) gpu_precision: Option<PrecisionRecord>,
    /// A MAP fit's prior, resolved against the data.
    pub(crate) prior: Option<MapPrior>,
    /// A MAP fit's mean log-likelihood at its last E-step (its lower bound adds the prior).
    pub(crate) log_likelihood: Option<f64>,
    /// A variational fit's priors, resolved against the data (its posterior is in the mixture).
    pub(crate) variational_prior: Option<VbPrior>,
}

impl GmmModel {
    /// The covariance type.
    pub fn covariance_type(&self) -> CovarianceType {
        self.mixture.cov_type
    }
    /// Number of components K.
    pub fn n_components(&self) -> usize {
        self.mixture.n_components
    }
    /// Number of features d.
    pub fn n_features(&self) -> usize {
        self.mixture.n_features
    }
    /// Mixture weights (K), summing to 1.
    pub fn weights(&self) -> &[f64] {
        &self.mixture.weights
    }
    /// Means, row-major K x d.
    pub fn means(&self) -> &[f64] {
        &self.mixture.means
    }
    /// Component k's mean (d values).
    ///
    /// # Panics
    ///
    /// If `k >= n_components()`, as slice indexing does.
    pub fn mean(&self, k: usize) -> &[f64] {
        self.assert_component("mean", k);
        let d = self.n_features();
        &self.mixture.means[k * d..(k + 1) * d]
    }
    /// Covariances in scikit-learn's shape for the type (see [`CovarianceType::covariance_shape`]).
    pub fn covariances(&self) -> &[f64] {
        &self.mixture.covariances
    }
    /// Component k's covariance as a dense d x d matrix, whatever the covariance type.
    ///
    /// # Panics
    ///
    /// If `k >= n_components()`, as slice indexing does (for tied covariances too, whose one matrix
    /// every component shares).
    pub fn covariance_matrix(&self, k: usize) -> Vec<f64> {
        self.assert_component("covariance_matrix", k);
        self.mixture.dense_covariance(k)
    }

    /// Panics, naming the accessor, k and K, unless k is a component index.
    #[track_caller]
    fn assert_component(&self, accessor: &str, k: usize) {
        let n = self.n_components();
        assert!(
            k < n,
            "GmmModel::{accessor}({k}): component index {k} is out of range for a model of {n} components; pass k < {n}"
        );
    }
    /// Precision matrices (inverse covariances), shaped as the covariances.
    pub fn precisions(&self) -> Vec<f64> {
        self.mixture.precisions()
    }
    /// Cholesky factors of the precisions, shaped as the covariances (upper triangular U with
    /// Λ = U·Uᵀ for full and tied, 1/σ for diag and spherical).
    pub fn precisions_cholesky(&self) -> &[f64] {
        &self.mixture.precisions_cholesky
    }
    /// Whether the best initialisation converged (the lower bound changed by less than tol).
    pub fn converged(&self) -> bool {
        self.converged
    }
    /// EM iterations of the best initialisation.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }
    /// The mean per-sample log-likelihood computed in the last iteration's E-step, before its M-step
    /// (scikit-learn's `lower_bound_`); −∞ when max_iter was 0. For a MAP fit, the mean
    /// log-posterior: that log-likelihood plus the prior's log density over Σw. For a
    /// variational fit, scikit-learn's `BayesianGaussianMixture.lower_bound_`: the evidence lower
    /// bound (less constant terms) after the last iteration's M-step, a total over the samples.
    pub fn lower_bound(&self) -> f64 {
        self.lower_bound
    }
    /// The mean per-sample log-likelihood of the last iteration's E-step: the lower bound, less
    /// the prior's term for a MAP fit.
    pub fn log_likelihood(&self) -> f64 {
        self.log_likelihood.unwrap_or(self.lower_bound)
    }
    /// A variational fit's prior on the weights; `None` for maximum likelihood and MAP.
    pub fn weight_prior(&self) -> Option<WeightPrior> {
        self.mixture.variational.as_ref().map(|v| v.weight_prior)
    }
    /// A variational fit's `weight_concentration_`: the Dirichlet's α_k (K), or for the process
    /// the Beta distributions' (a_k, b_k).
    pub fn weight_concentration(&self) -> Option<(&[f64], Option<&[f64]>)> {
        self.mixture.variational.as_ref().map(|v| {
            let b = (v.weight_prior == WeightPrior::DirichletProcess).then_some(v.concentration_b.as_slice());
            (v.concentration_a.as_slice(), b)
        })
    }
    /// A variational fit's `mean_precision_` β_k (K).
    pub fn mean_precision(&self) -> Option<&[f64]> {
        self.mixture.variational.as_ref().map(|v| v.mean_precision.as_slice())
    }
    /// A variational fit's `degrees_of_freedom_` ν_k (K; one value for tied).
    pub fn degrees_of_freedom(&self) -> Option<&[f64]> {
        self.mixture.variational.as_ref().map(|v| v.dof.as_slice())
    }

    /// A MAP fit's prior, every hyperparameter as the fit used it (the data's defaults filled in);
    /// `None` for maximum likelihood.
    pub fn prior(&self) -> Option<Prior> {
        self.prior.as_ref().map(|p| {
            let prior = Prior::mclust()
                .shrinkage(p.shrinkage)
                .mean(p.mean.clone())
                .dof(p.dof)
                .scale(p.scale.clone());
            match p.weights {
                Some(alpha) => prior.weights(alpha),
                None => prior,
            }
        })
    }
    /// The lower bound after every iteration of the best initialisation (`lower_bounds_`).
    pub fn lower_bounds(&self) -> &[f64] {
        &self.lower_bounds
    }

    /// The backend that fitted the model: "cpu" or "gpu".
    pub fn backend(&self) -> &str {
        &self.backend
    }
    /// The GPU adapter that fitted the model, if any.
    pub fn adapter(&self) -> Option<&str> {
        self.adapter.as_deref()
    }
    /// Why `BackendKind::Auto` fitted on the CPU rather than a GPU (no hardware adapter, or the
    /// GPU could not run this fit), if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }
    /// A GPU fit's arithmetic: what it asked for, what its last pass ran, and why it switched.
    pub fn gpu_precision(&self) -> Option<&PrecisionRecord> {
        self.gpu_precision.as_ref()
    }
    /// For GPU fits: dispatches and bytes moved in the last EM iteration.
    pub fn traffic(&self) -> Option<Traffic> {
        self.traffic
    }

    /// Number of free parameters: covariances, means and K − 1 weights.
    pub fn n_parameters(&self) -> usize {
        let (k, d) = (self.n_components(), self.n_features());
        self.covariance_type().n_covariance_parameters(k, d) + k * d + k - 1
    }

    /// Responsibilities P(component | x), row-major N x K.
    pub fn predict_proba(&self, data: &DataView) -> Result<Vec<f64>, GmmError> {
        let mut out = vec![0.0; data.n_samples() * self.n_components()];
        self.on_cpu(data, Output::Proba, &mut out)?;
        Ok(out)
    }

    /// The most likely component of each sample: the argmax of log π_k + log N(x | k), first on ties.
    pub fn predict(&self, data: &DataView) -> Result<Vec<usize>, GmmError> {
        let mut out = vec![0.0; data.n_samples()];
        self.on_cpu(data, Output::Labels, &mut out)?;
        Ok(out.into_iter().map(|l| l as usize).collect())
    }

    /// log p(x) of each sample under the mixture.
    pub fn score_samples(&self, data: &DataView) -> Result<Vec<f64>, GmmError> {
        let mut out = vec![0.0; data.n_samples()];
        self.on_cpu(data, Output::LogProb, &mut out)?;
        Ok(out)
    }

    /// The mean log-likelihood of the samples.
    pub fn score(&self, data: &DataView) -> Result<f64, GmmError> {
        let s = self.score_samples(data)?;
        Ok(pairwise_sum(&s) / s.len() as f64)
    }

    /// Bayesian information criterion: −2·log L + n_parameters·ln N (lower is better).
    pub fn bic(&self, data: &DataView) -> Result<f64, GmmError> {
        let n = data.n_samples() as f64;
        Ok(-2.0 * self.score(data)? * n + self.n_parameters() as f64 * n.ln())
    }

    /// Akaike information criterion: −2·log L + 2·n_parameters (lower is better).
    pub fn aic(&self, data: &DataView) -> Result<f64, GmmError> {
        let n = data.n_samples() as f64;
        Ok(-2.0 * self.score(data)? * n + 2.0 * self.n_parameters() as f64)
    }

    /// Draws `n` samples (row-major n x d) and the component of each, grouped by component as
    /// scikit-learn's `sample`. The same seed gives the same samples.
    ///
    /// Fails with [`GmmError::SampleTooLarge`] when n·d values (or n labels) cannot be allocated;
    /// nothing is drawn then.
    pub fn sample(&self, n: usize, seed: u64) -> Result<(Vec<f64>, Vec<usize>), GmmError> {
        let (k, d) = (self.n_components(), self.n_features());
        let too_large = || GmmError::SampleTooLarge {
            n_samples: n,
            n_features: d,
        };
        let len = n.checked_mul(d).ok_or_else(too_large)?;
        let mut x = Vec::new();
        x.try_reserve_exact(len).map_err(|_| too_large())?;
        let mut labels = Vec::new();
        labels.try_reserve_exact(n).map_err(|_| too_large())?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0usize; k];
        if n > 0 {
            let pick = WeightedIndex::new(&self.mixture.weights).expect("model weights are positive and finite");
            for _ in 0..n {
                counts[pick.sample(&mut rng)] += 1;
            }
        }
        let (mut l, mut z) = (vec![0.0; d * d], vec![0.0; d]);
        for (c, &count) in counts.iter().enumerate() {
            // x = μ + L·z with Σ = L·Lᵀ; the covariance was factored when the model was made, so this holds.
            let cov = self.mixture.dense_covariance(c);
            let ok = linalg::cholesky_lower(&cov, d, &mut l);
            debug_assert!(ok, "a model's covariances are positive definite");
            let mu = self.mean(c);
            for _ in 0..count {
                z.iter_mut().for_each(|v| *v = StandardNormal.sample(&mut rng));
                for i in 0..d {
                    let lz: f64 = (0..=i).map(|j| l[i * d + j] * z[j]).sum();
                    x.push(mu[i] + lz);
                }
                labels.push(c);
            }
        }
        Ok((x, labels))
    }

    /// [`GmmModel::predict_proba`] on the GPU of `ctx`, computed in exact arithmetic and read back
    /// as f32.
    pub fn predict_proba_on(&self, ctx: &GpuContext, data: &DataView) -> Result<Vec<f64>, GmmError> {
        let mut out = vec![0.0; data.n_samples() * self.n_components()];
        self.on_gpu(ctx, data, Output::Proba, &mut out)?;
        Ok(out)
    }

    /// [`GmmModel::score_samples`] on the GPU of `ctx`, in exact arithmetic (read back as a
    /// two-float, so the host's f64 keeps the kernels' digits).
    pub fn score_samples_on(&self, ctx: &GpuContext, data: &DataView) -> Result<Vec<f64>, GmmError> {
        let mut out = vec![0.0; data.n_samples()];
        self.on_gpu(ctx, data, Output::LogProb, &mut out)?;
        Ok(out)
    }

    /// [`GmmModel::predict`] on the GPU of `ctx` (the model resident in exact arithmetic, the
    /// samples uploaded batch by batch, labels read back as u32).
    pub fn predict_on(&self, ctx: &GpuContext, data: &DataView) -> Result<Vec<usize>, GmmError> {
        let mut out = vec![0.0; data.n_samples()];
        self.on_gpu(ctx, data, Output::Labels, &mut out)?;
        Ok(out.into_iter().map(|l| l as usize).collect())
    }

    /// Per-sample outputs through the f64 CPU backend (the same seam as the GPU's).
    /// Rows with missing values (a [`DataView::with_missing`] view) are read through their
    /// observed features.
    fn on_cpu(&self, data: &DataView, output: Output, out: &mut [f64]) -> Result<(), GmmError> {
        self.check(data)?;
        if data.has_missing() {
            self.check_missing(data)?;
            let patterns = crate::missing::Patterns::new(data);
            return crate::missing::infer::outputs(data, &patterns, &self.missing_mixture(), output, out);
        }
        CpuBackend::new(*data, None).per_sample_outputs(&self.mixture, output, out)
    }

    /// A variational model's predictions are not marginalised over missing values.
    fn check_missing(&self, data: &DataView) -> Result<(), GmmError> {
        if self.mixture.variational.is_some() {
            data.refuse_missing(
                "a variational (Bayesian) model",
                "use a maximum-likelihood or MAP model, or impute the data first",
            )?;
        }
        Ok(())
    }

    /// The data with each missing value (NaN in a [`DataView::with_missing`] view) replaced by its
    /// conditional expectation under the mixture, E[x_m | x_o] = Σ_k P(k | x_o)·(μ_km +
    /// Σ_k,mo Σ_k,oo⁻¹ (x_o − μ_k,o)); observed values are copied. Row-major N x d, in f64.
    pub fn impute(&self, data: &DataView) -> Result<Vec<f64>, GmmError> {
        self.check(data)?;
        self.check_missing(data)?;
        crate::missing::infer::impute(data, &self.missing_mixture())
    }

    /// The mixture with its covariances recomputed from the precision factors: the marginal
    /// densities read Σ, and every other prediction reads the precisions, which a model given
    /// by its parameters need not hold exactly in step with its covariances.
    fn missing_mixture(&self) -> Mixture {
        let d = self.n_features();
        let mut mix = self.mixture.clone();
        mix.set_covariances_from_precisions(&mut vec![0.0; 2 * d * d]);
        mix
    }

    /// Per-sample outputs through a resident copy of the model in exact arithmetic, the samples
    /// uploaded batch by batch (src/gpu/host.rs): the path a caller's own buffers take.
    fn on_gpu(&self, ctx: &GpuContext, data: &DataView, output: Output, out: &mut [f64]) -> Result<(), GmmError> {
        self.check(data)?;
        data.refuse_missing(
            "inference on the GPU",
            "use predict, predict_proba or score_samples, which marginalise them on the CPU",
        )?;
        crate::gpu::host_outputs(ctx, self, data, output, out)
    }

    /// A model from its parameters, flat and row-major in scikit-learn's shapes: `weights` K,
    /// `means` K x d, `covariances` and `precisions_cholesky` per
    /// [`CovarianceType::covariance_shape`] (an upper-triangular U with Σ⁻¹ = U·Uᵀ for full and tied).
    /// As in scikit-learn, predictions use the weights, means and precision factors, and sampling
    /// uses the covariances; the two are not checked against each other (which would reject
    /// parameters rounded to f32), and the weights need not sum to 1 exactly.
    ///
    /// `lower_bound` is the lower bound a warm start continues from (−∞ for none): a
    /// [`GaussianMixture`](crate::GaussianMixture) given this model by `set_model` continues from
    /// these parameters as if it had fitted them. The model reports no iterations and no convergence.
    ///
    /// Fails with [`GmmError::ModelShape`] for arrays of the wrong lengths, and with
    /// [`GmmError::ModelValue`] for values a model cannot hold (as [`GmmModel::from_json`]).
    pub fn from_parameters(
        covariance_type: CovarianceType,
        n_features: usize,
        weights: Vec<f64>,
        means: Vec<f64>,
        covariances: Vec<f64>,
        precisions_cholesky: Vec<f64>,
        lower_bound: f64,
    ) -> Result<Self, GmmError> {
        let (k, d, cov) = (weights.len(), n_features, covariance_type);
        check_counts(k, d)?;
        let shape = cov.covariance_shape(k, d);
        for (field, len, want) in [
            ("means", means.len(), vec![k, d]),
            ("covariances", covariances.len(), shape.clone()),
            ("precisions_cholesky", precisions_cholesky.len(), shape),
        ] {
            if len != want.iter().product::<usize>() {
                return Err(GmmError::ModelShape {
                    field,
                    expected: format!("{want:?}"),
                    found: format!("{len} values"),
                });
            }
        }
        if lower_bound.is_nan() || lower_bound == f64::INFINITY {
            return Err(GmmError::ModelValue {
                field: "lower_bound",
                index: 0,
                value: lower_bound,
                reason: "a lower bound is a finite number, or -inf for none",
            });
        }
        let mut mixture = Mixture::zeros(cov, k, d);
        mixture.weights = weights;
        mixture.means = means;
        mixture.covariances = covariances;
        mixture.precisions_cholesky = precisions_cholesky;
        check_values(&mixture, false)?;
        mixture.refresh();
        Ok(Self {
            mixture,
            converged: false,
            n_iter: 0,
            lower_bound,
            lower_bounds: Vec::new(),
            backend: default_backend(),
            adapter: None,
            traffic: None,
            fallback: None,
            gpu_precision: None,
            prior: None,
            log_likelihood: None,
            variational_prior: None,
        })
    }

    /// This model with a variational posterior, as scikit-learn's `BayesianGaussianMixture` holds
    /// it beside the means and precision factors: `weight_concentration` the Dirichlet's α (K) for
    /// [`WeightPrior::DirichletDistribution`], or the process's Beta parameters (a, b) (K each);
    /// `mean_precision` β (K); `degrees_of_freedom` ν (K, or one value for tied). Predictions then
    /// use the variational E-step, and a warm start from the model continues a variational fit;
    /// the weights are recomputed from the concentrations, as scikit-learn's `weights_` are.
    ///
    /// Checked as [`GmmModel::from_json`] checks a file's posterior: [`GmmError::ModelShape`] for
    /// arrays of the wrong lengths, [`GmmError::ModelValue`] for concentrations or mean precisions
    /// not > 0, or degrees of freedom not > d − 1.
    pub fn with_variational_posterior(
        mut self,
        weight_prior: WeightPrior,
        weight_concentration: (Vec<f64>, Option<Vec<f64>>),
        mean_precision: Vec<f64>,
        degrees_of_freedom: Vec<f64>,
    ) -> Result<Self, GmmError> {
        let (k, d, cov) = (self.n_components(), self.n_features(), self.covariance_type());
        let concentration = match (weight_prior, weight_concentration) {
            (WeightPrior::DirichletProcess, (a, Some(b))) => Value::from(vec![a, b]),
            (WeightPrior::DirichletDistribution, (a, None)) => Value::from(a),
            (prior, (_, b)) => {
                return Err(GmmError::ModelShape {
                    field: "weight_concentration",
                    expected: match prior {
                        WeightPrior::DirichletProcess => format!("[2, {k}] (a and b)"),
                        WeightPrior::DirichletDistribution => format!("[{k}] (one array)"),
                    },
                    found: if b.is_some() { "two arrays" } else { "one array" }.to_string(),
                });
            }
        };
        let dof = match (cov, degrees_of_freedom.as_slice()) {
            (CovarianceType::Tied, [nu]) => Value::from(*nu),
            (CovarianceType::Tied, values) => {
                return Err(GmmError::ModelShape {
                    field: "degrees_of_freedom",
                    expected: "one value (tied)".to_string(),
                    found: format!("{} values", values.len()),
                });
            }
            (_, _) => Value::from(degrees_of_freedom),
        };
        let posterior = read_posterior(
            weight_prior,
            Some(&concentration),
            Some(mean_precision),
            Some(&dof),
            cov,
            k,
            d,
            &mut self.mixture.weights,
        )?;
        self.mixture.variational = Some(posterior);
        self.mixture.refresh();
        Ok(self)
    }

    /// Serialises to JSON with scikit-learn's attribute names and shapes (nested arrays).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model always serialises")
    }

    /// Reads a model written by [`GmmModel::to_json`] (or by hand, with the same fields), checking
    /// every shape and value: [`GmmError::ModelJson`] for text that is not JSON or misses a field,
    /// [`GmmError::ModelShape`] and [`GmmError::ModelValue`] for arrays of the wrong shape or values.
    pub fn from_json(text: &str) -> Result<Self, GmmError> {
        let file: ModelFile = serde_json::from_str(text).map_err(|e| {
            // serde_json's message ends with the location, which the variant carries on its own.
            let full = e.to_string();
            let at = format!(" at line {} column {}", e.line(), e.column());
            GmmError::ModelJson {
                line: e.line(),
                column: e.column(),
                message: full.strip_suffix(&at).unwrap_or(&full).to_string(),
            }
        })?;
        Self::try_from(file)
    }

    fn check(&self, data: &DataView) -> Result<(), GmmError> {
        data.check_features("the model", self.n_features())
    }

    /// Builds a model from a fit's outcome.
    pub(crate) fn from_outcome(o: crate::em::FitOutcome) -> Self {
        Self {
            mixture: o.mixture,
            converged: o.converged,
            n_iter: o.n_iter,
            lower_bound: o.lower_bound,
            lower_bounds: o.lower_bounds,
            backend: o.info.backend.to_string(),
            adapter: o.info.adapter,
            traffic: o.info.traffic,
            fallback: o.info.fallback,
            gpu_precision: o.info.precision,
            log_likelihood: o.prior.is_some().then_some(o.log_likelihood),
            prior: o.prior,
            variational_prior: o.variational,
        }
    }
}

/// The JSON form of a model: scikit-learn's attribute names (without the trailing underscore) and
/// nested arrays in its shapes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ModelFile {
    covariance_type: CovarianceType,
    n_features: usize,
    weights: Vec<f64>,
    means: Vec<Vec<f64>>,
    covariances: Value,
    precisions_cholesky: Value,
    converged: bool,
    n_iter: usize,
    /// `null` stands for −∞ (max_iter = 0), which JSON cannot hold.
    lower_bound: Option<f64>,
    #[serde(default)]
    lower_bounds: Vec<f64>,
    #[serde(default = "default_backend")]
    backend: String,
    #[serde(default)]
    adapter: Option<String>,
    /// Why backend auto ran on the CPU, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fallback: Option<String>,
    /// A GPU fit's arithmetic: asked for, used, and each switch with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gpu_precision: Option<PrecisionRecord>,
    /// A MAP fit's prior: shrinkage, mean, dof, scale (d x d, or one number) and the weights'
    /// Dirichlet concentration (null for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prior: Option<PriorFile>,
    /// A MAP fit's mean log-likelihood at its last E-step (`lower_bound` is the log-posterior).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log_likelihood: Option<f64>,
    /// A variational fit's posterior beyond the means and covariances, under scikit-learn's
    /// names, and its priors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight_concentration_prior_type: Option<WeightPrior>,
    /// The Dirichlet's α (K), or for the process `[[a…], [b…]]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight_concentration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mean_precision: Option<Vec<f64>>,
    /// ν_k (K), or one number for tied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    degrees_of_freedom: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variational_prior: Option<VbPriorFile>,
    #[serde(default)]
    gmm_gpu_version: String,
}

/// The JSON form of a variational fit's priors (scikit-learn's `*_prior_` attributes).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VbPriorFile {
    weight_concentration_prior: f64,
    mean_precision_prior: f64,
    mean_prior: Vec<f64>,
    degrees_of_freedom_prior: f64,
    /// d × d (full, tied), d (diag) or one number (spherical).
    covariance_prior: Value,
}

/// The JSON form of a resolved prior.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorFile {
    shrinkage: f64,
    mean: Vec<f64>,
    dof: f64,
    scale: Value,
    weights: Option<f64>,
}

impl PriorFile {
    fn new(p: MapPrior) -> Self {
        let d = p.mean.len();
        let scale = match p.scale.len() {
            1 => Value::from(p.scale[0]),
            _ => nest(&p.scale, &[d, d]),
        };
        Self {
            shrinkage: p.shrinkage,
            mean: p.mean,
            dof: p.dof,
            scale,
            weights: p.weights,
        }
    }

    /// The prior of a model of `d` features and covariance type `cov`, checked as a user's.
    fn read(self, cov: CovarianceType, d: usize) -> Result<MapPrior, GmmError> {
        let scale = match (&self.scale, cov) {
            (Value::Number(x), CovarianceType::Diag | CovarianceType::Spherical) => {
                vec![x.as_f64().unwrap_or(f64::NAN)]
            }
            _ => flatten(&self.scale, &[d, d], "prior.scale")?,
        };
        let mut user = Prior::mclust()
            .shrinkage(self.shrinkage)
            .mean(self.mean.clone())
            .dof(self.dof)
            .scale(scale.clone());
        if let Some(alpha) = self.weights {
            user = user.weights(alpha);
        }
        user.check()?;
        user.check_against(cov, d)?;
        Ok(MapPrior {
            shrinkage: self.shrinkage,
            mean: self.mean,
            dof: self.dof,
            scale,
            weights: self.weights,
        })
    }
}

fn default_backend() -> String {
    "cpu".to_string()
}

impl From<GmmModel> for ModelFile {
    fn from(m: GmmModel) -> Self {
        let (k, d, cov) = (m.n_components(), m.n_features(), m.covariance_type());
        let shape = cov.covariance_shape(k, d);
        Self {
            covariance_type: cov,
            n_features: d,
            means: m.mixture.means.chunks_exact(d).map(<[f64]>::to_vec).collect(),
            covariances: nest(&m.mixture.covariances, &shape),
            precisions_cholesky: nest(&m.mixture.precisions_cholesky, &shape),
            weights: m.mixture.weights,
            converged: m.converged,
            n_iter: m.n_iter,
            lower_bound: m.lower_bound.is_finite().then_some(m.lower_bound),
            lower_bounds: m.lower_bounds,
            backend: m.backend,
            adapter: m.adapter,
            fallback: m.fallback,
            gpu_precision: m.gpu_precision,
            prior: m.prior.map(PriorFile::new),
            log_likelihood: m.log_likelihood,
            weight_concentration_prior_type: m.mixture.variational.as_ref().map(|v| v.weight_prior),
            weight_concentration: m.mixture.variational.as_ref().map(|v| match v.weight_prior {
                WeightPrior::DirichletProcess => {
                    Value::from(vec![v.concentration_a.clone(), v.concentration_b.clone()])
                }
                WeightPrior::DirichletDistribution => Value::from(v.concentration_a.clone()),
            }),
            mean_precision: m.mixture.variational.as_ref().map(|v| v.mean_precision.clone()),
            degrees_of_freedom: m.mixture.variational.as_ref().map(|v| match cov {
                CovarianceType::Tied => Value::from(v.dof[0]),
                _ => Value::from(v.dof.clone()),
            }),
            variational_prior: m.variational_prior.map(|p| VbPriorFile {
                weight_concentration_prior: p.weight_concentration,
                mean_precision_prior: p.mean_precision,
                mean_prior: p.mean,
                degrees_of_freedom_prior: p.dof,
                covariance_prior: match cov {
                    CovarianceType::Full | CovarianceType::Tied => nest(&p.covariance, &[d, d]),
                    CovarianceType::Diag => Value::from(p.covariance),
                    CovarianceType::Spherical => Value::from(p.covariance[0]),
                },
            }),
            gmm_gpu_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

impl TryFrom<ModelFile> for GmmModel {
    type Error = GmmError;
    fn try_from(f: ModelFile) -> Result<Self, GmmError> {
        let (k, d, cov) = (f.weights.len(), f.n_features, f.covariance_type);
        check_counts(k, d)?;
        let shape = cov.covariance_shape(k, d);
        let means = flatten(&nest_rows(&f.means), &[k, d], "means")?;
        let mut mixture = Mixture::zeros(cov, k, d);
        mixture.covariances = flatten(&f.covariances, &shape, "covariances")?;
        mixture.precisions_cholesky = flatten(&f.precisions_cholesky, &shape, "precisions_cholesky")?;
        mixture.means = means;
        mixture.weights = f.weights;
        let implied = check_values(&mixture, true)?;
        // Predictions use the precision factors; sampling and plots use the covariances: both must
        // describe the same Gaussians. Each row of the file's factor must equal the row implied by
        // the covariances to 1e-6 of that row's norm (scaling a feature scales its row, so the test
        // does not depend on units). A model written by to_json holds the very factor that this
        // code computes from its covariances, and serde_json round-trips f64 exactly, so it matches
        // bitwise; 1e-6 leaves room for factors from other software, and for covariances derived
        // from a user's precisions_init (error about cond(Σ)·eps), while any hand edit that changes
        // the Gaussian by more than that fails.
        let row_len = match cov {
            CovarianceType::Full | CovarianceType::Tied => d,
            CovarianceType::Diag | CovarianceType::Spherical => 1,
        };
        for (r, (row, want)) in mixture
            .precisions_cholesky
            .chunks_exact(row_len)
            .zip(implied.precisions_cholesky.chunks_exact(row_len))
            .enumerate()
        {
            let norm = want.iter().map(|v| v * v).sum::<f64>().sqrt();
            for (j, (&u, &w)) in row.iter().zip(want).enumerate() {
                // Written so that NaN is never a match.
                let close = (u - w).abs() <= 1e-6 * norm;
                if !close {
                    return Err(GmmError::ModelValue {
                        field: "precisions_cholesky",
                        index: r * row_len + j,
                        value: u,
                        reason: "the precision Cholesky factor does not match the covariances (it must be the Cholesky factor of their inverse, to 1e-6 relative); recompute it from the covariances",
                    });
                }
            }
        }
        let variational_prior = match f.variational_prior {
            Some(p) => {
                let psi = match (&p.covariance_prior, cov) {
                    (Value::Number(x), CovarianceType::Spherical) => vec![x.as_f64().unwrap_or(f64::NAN)],
                    (_, CovarianceType::Full | CovarianceType::Tied) => {
                        flatten(&p.covariance_prior, &[d, d], "variational_prior.covariance_prior")?
                    }
                    _ => flatten(&p.covariance_prior, &[d], "variational_prior.covariance_prior")?,
                };
                let user = Variational::dirichlet_process()
                    .weight_concentration_prior(p.weight_concentration_prior)
                    .mean_precision_prior(p.mean_precision_prior)
                    .mean_prior(p.mean_prior.clone())
                    .degrees_of_freedom_prior(p.degrees_of_freedom_prior)
                    .covariance_prior(psi.clone());
                user.check()?;
                user.check_against(cov, d)?;
                Some(VbPrior {
                    weight_prior: f.weight_concentration_prior_type.unwrap_or_default(),
                    weight_concentration: p.weight_concentration_prior,
                    mean_precision: p.mean_precision_prior,
                    mean: p.mean_prior,
                    dof: p.degrees_of_freedom_prior,
                    covariance: psi,
                })
            }
            None => None,
        };
        if let Some(weight_prior) = f.weight_concentration_prior_type {
            mixture.variational = Some(read_posterior(
                weight_prior,
                f.weight_concentration.as_ref(),
                f.mean_precision,
                f.degrees_of_freedom.as_ref(),
                cov,
                k,
                d,
                &mut mixture.weights,
            )?);
        }
        mixture.refresh();
        Ok(Self {
            variational_prior,
            mixture,
            converged: f.converged,
            n_iter: f.n_iter,
            lower_bound: f.lower_bound.unwrap_or(f64::NEG_INFINITY),
            lower_bounds: f.lower_bounds,
            backend: f.backend,
            adapter: f.adapter,
            traffic: None,
            fallback: f.fallback,
            gpu_precision: f.gpu_precision,
            prior: f.prior.map(|p| p.read(cov, d)).transpose()?,
            log_likelihood: f.log_likelihood,
        })
    }
}

/// A variational posterior from a model file: its concentrations and mean precisions (K each,
/// > 0) and degrees of freedom (> d − 1), with the E-step's constants and the weights recomputed.
#[allow(clippy::too_many_arguments)]
fn read_posterior(
    weight_prior: WeightPrior,
    concentration: Option<&Value>,
    mean_precision: Option<Vec<f64>>,
    dof: Option<&Value>,
    cov: CovarianceType,
    k: usize,
    d: usize,
    weights: &mut [f64],
) -> Result<Posterior, GmmError> {
    let missing = |field: &'static str| GmmError::ModelShape {
        field,
        expected: "present in a variational model (beside weight_concentration_prior_type)".to_string(),
        found: "nothing".to_string(),
    };
    let concentration = concentration.ok_or_else(|| missing("weight_concentration"))?;
    let (a, b) = match weight_prior {
        WeightPrior::DirichletProcess => {
            let ab = flatten(concentration, &[2, k], "weight_concentration")?;
            (ab[..k].to_vec(), ab[k..].to_vec())
        }
        WeightPrior::DirichletDistribution => (flatten(concentration, &[k], "weight_concentration")?, Vec::new()),
    };
    let mean_precision = mean_precision.ok_or_else(|| missing("mean_precision"))?;
    if mean_precision.len() != k {
        return Err(GmmError::ModelShape {
            field: "mean_precision",
            expected: format!("[{k}]"),
            found: format!("{} values", mean_precision.len()),
        });
    }
    let dof = match (dof.ok_or_else(|| missing("degrees_of_freedom"))?, cov) {
        (Value::Number(x), CovarianceType::Tied) => vec![x.as_f64().unwrap_or(f64::NAN)],
        (v, _) => flatten(v, &[k], "degrees_of_freedom")?,
    };
    for (field, values, low) in [
        ("weight_concentration", [a.as_slice(), b.as_slice()].concat(), 0.0),
        ("mean_precision", mean_precision.clone(), 0.0),
        ("degrees_of_freedom", dof.clone(), d as f64 - 1.0),
    ] {
        if let Some(index) = values.iter().position(|v| !(v.is_finite() && *v > low)) {
            return Err(GmmError::ModelValue {
                field,
                index,
                value: values[index],
                reason: "a variational posterior's concentrations and mean precisions are > 0, its degrees of freedom > d - 1",
            });
        }
    }
    let mut post = Posterior {
        weight_prior,
        concentration_a: a,
        concentration_b: b,
        mean_precision,
        dof,
        log_weights: vec![0.0; k],
    };
    set_weights_and_constants(&mut post, weights, d);
    Ok(post)
}

/// Checks that a model of `k` components and `d` features has something to model.
fn check_counts(k: usize, d: usize) -> Result<(), GmmError> {
    if k == 0 {
        return Err(GmmError::ModelShape {
            field: "weights",
            expected: "[n_components >= 1]".into(),
            found: "[0]".into(),
        });
    }
    if d == 0 {
        // Zero features would make every mean and covariance empty, and nothing to model.
        return Err(GmmError::ModelValue {
            field: "n_features",
            index: 0,
            value: 0.0,
            reason: "a model needs at least one feature; set n_features to the length of each mean",
        });
    }
    Ok(())
}

/// Checks the values of a mixture of the right shapes, from a file or a caller: positive finite
/// weights (summing to 1 if `check_sum`), finite means, positive definite covariances, and precision
/// factors with finite values, a positive diagonal and (full, tied) nothing below it. Returns the
/// mixture with the precision factors its covariances imply.
fn check_values(mixture: &Mixture, check_sum: bool) -> Result<Mixture, GmmError> {
    let (d, cov) = (mixture.n_features, mixture.cov_type);
    for (i, &w) in mixture.weights.iter().enumerate() {
        if !(w.is_finite() && w > 0.0) {
            return Err(GmmError::ModelValue {
                field: "weights",
                index: i,
                value: w,
                reason: "weights must be finite and > 0",
            });
        }
    }
    let sum: f64 = mixture.weights.iter().sum();
    if check_sum && (sum - 1.0).abs() > 1e-6 {
        return Err(GmmError::ModelValue {
            field: "weights",
            index: 0,
            value: sum,
            reason: "weights must sum to 1",
        });
    }
    for (field, values) in [("means", &mixture.means), ("covariances", &mixture.covariances)] {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(GmmError::ModelValue {
                field,
                index: i,
                value: values[i],
                reason: "values must be finite",
            });
        }
    }
    // Sampling factors the covariances: they must be positive definite. Factoring them also
    // gives the precision factors they imply.
    let mut implied = mixture.clone();
    if let Err(e) = implied.set_precisions_from_covariances(&mut vec![0.0; d * d]) {
        let index = match e {
            GmmError::IllDefinedCovariance { component } => component.unwrap_or(0),
            _ => 0,
        };
        return Err(GmmError::ModelValue {
            field: "covariances",
            index,
            value: mixture.dense_covariance(index)[0],
            reason: "each covariance must be symmetric positive definite",
        });
    }
    // The precision factors drive every prediction: their diagonals must be positive and finite.
    let per = match cov {
        CovarianceType::Full | CovarianceType::Tied => d * d,
        CovarianceType::Diag => d,
        CovarianceType::Spherical => 1,
    };
    for (i, &u) in mixture.precisions_cholesky.iter().enumerate() {
        let on_diagonal = match cov {
            CovarianceType::Full | CovarianceType::Tied => (i % per) % (d + 1) == 0,
            _ => true,
        };
        if !u.is_finite() || (on_diagonal && u <= 0.0) {
            return Err(GmmError::ModelValue {
                field: "precisions_cholesky",
                index: i,
                value: u,
                reason: "a precision Cholesky factor needs finite values and a positive diagonal",
            });
        }
        let below_diagonal = matches!(cov, CovarianceType::Full | CovarianceType::Tied) && (i % per) / d > i % d;
        if below_diagonal && u != 0.0 {
            return Err(GmmError::ModelValue {
                field: "precisions_cholesky",
                index: i,
                value: u,
                reason: "a full or tied precision Cholesky factor is upper triangular: set every entry below the diagonal to 0",
            });
        }
    }
    Ok(implied)
}

/// Nests flat row-major values into JSON arrays of the given shape (a bare list for one dimension).
pub(crate) fn nest(values: &[f64], shape: &[usize]) -> Value {
    match shape {
        [] | [_] => Value::from(values.to_vec()),
        [_, rest @ ..] => {
            let stride: usize = rest.iter().product();
            Value::Array(values.chunks(stride.max(1)).map(|c| nest(c, rest)).collect())
        }
    }
}

fn nest_rows(rows: &[Vec<f64>]) -> Value {
    Value::Array(rows.iter().map(|r| Value::from(r.clone())).collect())
}

/// Flattens a nested field of a model file, naming the field if its shape is wrong.
fn flatten(value: &Value, shape: &[usize], field: &'static str) -> Result<Vec<f64>, GmmError> {
    flatten_nested(value, shape).map_err(|e| GmmError::ModelShape {
        field,
        expected: format!("{shape:?}"),
        found: e.found,
    })
}
