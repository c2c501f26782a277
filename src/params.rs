//! Fit parameters with scikit-learn's meaning and defaults, set through a builder that validates them once.

use crate::error::GmmError;
use crate::given::GivenStart;
use crate::gpu::GpuPrecision;
use crate::gpu::plan::GpuKernels;
use crate::kinds::{BackendKind, CovarianceType, InitMethod, Parameter};
use crate::linalg;
use crate::missing::Missing;
use crate::mstep::Frozen;
use crate::online::Online;
use crate::prior::Prior;
use crate::variational::Variational;

/// Validated fit parameters. Build them with [`GmmParams::builder`].
#[derive(Clone, Debug, PartialEq)]
pub struct GmmParams {
    pub(crate) n_components: usize,
    pub(crate) covariance_type: CovarianceType,
    pub(crate) tol: f64,
    pub(crate) reg_covar: f64,
    pub(crate) max_iter: usize,
    pub(crate) n_init: usize,
    pub(crate) init_method: InitMethod,
    pub(crate) weights_init: Option<Vec<f64>>,
    pub(crate) means_init: Option<Vec<f64>>,
    /// The user's precisions, already turned into upper-triangular factors U (Λ = U·Uᵀ),
    /// laid out as the model's `precisions_cholesky`. Kept with the feature count they imply.
    pub(crate) precisions_init: Option<(Vec<f64>, Option<usize>)>,
    pub(crate) seed: u64,
    pub(crate) warm_start: bool,
    pub(crate) backend: BackendKind,
    pub(crate) chunk_size: Option<usize>,
    pub(crate) max_device_bytes: Option<u64>,
    pub(crate) gpu_kernels: GpuKernels,
    pub(crate) gpu_precision: GpuPrecision,
    pub(crate) prior: Option<Prior>,
    /// The user's starting responsibilities or labels (with `InitMethod::Responsibilities`).
    pub(crate) init_given: Option<GivenStart>,
    pub(crate) variational: Option<Variational>,
    pub(crate) frozen: Frozen,
    pub(crate) online: Option<Online>,
    pub(crate) missing: Missing,
}

/// Builder for [`GmmParams`]; every value is checked once, in [`GmmParamsBuilder::build`].
#[derive(Clone, Debug)]
pub struct GmmParamsBuilder {
    n_components: usize,
    covariance_type: CovarianceType,
    tol: f64,
    /// `None` until set: 1e-6, or 0 with a prior.
    reg_covar: Option<f64>,
    max_iter: usize,
    n_init: usize,
    init_method: InitMethod,
    weights_init: Option<Vec<f64>>,
    means_init: Option<Vec<f64>>,
    precisions_init: Option<Vec<f64>>,
    seed: u64,
    warm_start: bool,
    backend: BackendKind,
    chunk_size: Option<usize>,
    max_device_bytes: Option<u64>,
    gpu_kernels: GpuKernels,
    gpu_precision: GpuPrecision,
    prior: Option<Prior>,
    init_given: Option<GivenStart>,
    variational: Option<Variational>,
    frozen: Frozen,
    online: Option<Online>,
    missing: Missing,
}

impl GmmParams {
    /// Starts a builder for a mixture of `n_components` components, with scikit-learn's defaults:
    /// full covariances, tol 1e-3, reg_covar 1e-6, max_iter 100, n_init 1, k-means initialisation, seed 0.
    pub fn builder(n_components: usize) -> GmmParamsBuilder {
        GmmParamsBuilder {
            n_components,
            covariance_type: CovarianceType::Full,
            tol: 1e-3,
            reg_covar: None,
            max_iter: 100,
            n_init: 1,
            init_method: InitMethod::KMeans,
            weights_init: None,
            means_init: None,
            precisions_init: None,
            seed: 0,
            warm_start: false,
            backend: BackendKind::Cpu,
            chunk_size: None,
            max_device_bytes: None,
            gpu_kernels: GpuKernels::Auto,
            gpu_precision: GpuPrecision::Auto,
            prior: None,
            init_given: None,
            variational: None,
            frozen: Frozen::default(),
            online: None,
            missing: Missing::Reject,
        }
    }

    /// The conjugate prior of a MAP fit, if any (as given: unset hyperparameters come from the data).
    pub fn prior(&self) -> Option<&Prior> {
        self.prior.as_ref()
    }
    /// What a fit does with missing values (NaN in a [`crate::DataView::with_missing`] view).
    pub fn missing(&self) -> Missing {
        self.missing
    }

    /// The online schedule, if `fit` runs stepwise EM.
    pub fn online(&self) -> Option<&Online> {
        self.online.as_ref()
    }
    /// The parameters the fit keeps at their initial values.
    pub fn frozen(&self) -> Vec<Parameter> {
        let f = self.frozen;
        [
            (f.weights, Parameter::Weights),
            (f.means, Parameter::Means),
            (f.covariances, Parameter::Covariances),
        ]
        .into_iter()
        .filter_map(|(on, p)| on.then_some(p))
        .collect()
    }
    /// The priors of a variational fit, if any (as given).
    pub fn variational(&self) -> Option<&Variational> {
        self.variational.as_ref()
    }

    /// Where the E-step and statistics run (default the CPU).
    pub fn backend(&self) -> BackendKind {
        self.backend
    }
    /// The GPU chunk size forced by the caller, if any.
    pub fn chunk_size(&self) -> Option<usize> {
        self.chunk_size
    }
    /// The device memory a GPU fit may hold, if capped.
    pub fn max_device_bytes(&self) -> Option<u64> {
        self.max_device_bytes
    }
    /// Which kernels a GPU EM pass runs (default [`GpuKernels::Auto`]).
    pub fn gpu_kernels(&self) -> GpuKernels {
        self.gpu_kernels
    }
    /// The GPU's arithmetic (default [`GpuPrecision::Auto`]).
    pub fn gpu_precision(&self) -> GpuPrecision {
        self.gpu_precision
    }
    pub(crate) fn budget(&self) -> crate::gpu::plan::Budget {
        crate::gpu::plan::Budget {
            chunk_size: self.chunk_size,
            max_device_bytes: self.max_device_bytes,
            kernels: self.gpu_kernels,
            precision: self.gpu_precision,
        }
    }

    /// Number of mixture components K.
    pub fn n_components(&self) -> usize {
        self.n_components
    }
    /// Covariance type.
    pub fn covariance_type(&self) -> CovarianceType {
        self.covariance_type
    }
    /// Convergence threshold on the change of the mean log-likelihood.
    pub fn tol(&self) -> f64 {
        self.tol
    }
    /// Non-negative regularisation added to the diagonal of each covariance (1e-6 by default, 0
    /// by default with a prior).
    pub fn reg_covar(&self) -> f64 {
        self.reg_covar
    }
    /// Maximum EM iterations per initialisation (0 returns the initialisation).
    pub fn max_iter(&self) -> usize {
        self.max_iter
    }
    /// Number of initialisations; the one with the highest lower bound is kept.
    pub fn n_init(&self) -> usize {
        self.n_init
    }
    /// Initialisation method.
    pub fn init_method(&self) -> InitMethod {
        self.init_method
    }
    /// Seed of every random choice; the same seed and data give a bitwise-identical model.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Whether a second fit of a [`crate::GaussianMixture`] continues from its current model.
    pub fn warm_start(&self) -> bool {
        self.warm_start
    }
    /// User-given initial weights, if any.
    pub fn weights_init(&self) -> Option<&[f64]> {
        self.weights_init.as_deref()
    }
    /// User-given initial means (row-major K x d), if any.
    pub fn means_init(&self) -> Option<&[f64]> {
        self.means_init.as_deref()
    }
    /// The feature count implied by the user's means or precisions, if either was given.
    pub(crate) fn init_n_features(&self) -> Option<usize> {
        self.means_init
            .as_ref()
            .map(|m| m.len() / self.n_components)
            .or(self.precisions_init.as_ref().and_then(|p| p.1))
    }
}

impl GmmParamsBuilder {
    /// Sets the covariance type (default full).
    pub fn covariance_type(mut self, covariance_type: CovarianceType) -> Self {
        self.covariance_type = covariance_type;
        self
    }
    /// Sets the convergence threshold (default 1e-3): EM stops when the lower bound changes by less.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    /// Sets the regularisation added to covariance diagonals (default 1e-6; 0 with a prior, which
    /// is the regularisation, but a value given here still adds to it).
    pub fn reg_covar(mut self, reg_covar: f64) -> Self {
        self.reg_covar = Some(reg_covar);
        self
    }
    /// Marginalises missing values (NaN in a view made by [`crate::DataView::with_missing`]):
    /// each sample's likelihood is that of its observed features, and the lower bound is the
    /// observed-data log-likelihood. Maximum-likelihood and MAP fits, every covariance type, on
    /// the CPU (`Auto` fits there and records why; `Gpu` is an error). The default,
    /// [`Missing::Reject`], keeps a NaN an error naming its row and column.
    pub fn missing(mut self, missing: Missing) -> Self {
        self.missing = missing;
        self
    }

    /// Makes [`crate::GaussianMixture::fit`] run stepwise (online) EM over mini-batches of the
    /// data, each seen once per pass, instead of batch EM; [`crate::GaussianMixture::partial_fit`]
    /// takes its step sizes from it. Maximum likelihood only.
    pub fn online(mut self, online: Online) -> Self {
        self.online = Some(online);
        self
    }
    /// Keeps the given parameters at their initial values while the rest are fitted (the
    /// constrained maximum-likelihood M-step: with frozen means the covariances are the scatter
    /// around them): known components with unknown weights (unmixing), or known covariances
    /// (transfer). Each frozen parameter needs its initial value (`weights_init`, `means_init`,
    /// `precisions_init`), and a prior or a variational fit takes none. Any subset; none (the
    /// default) is the ordinary fit.
    pub fn freeze(mut self, parameters: &[Parameter]) -> Self {
        self.frozen = Frozen {
            weights: parameters.contains(&Parameter::Weights),
            means: parameters.contains(&Parameter::Means),
            covariances: parameters.contains(&Parameter::Covariances),
        };
        self
    }
    /// Fits scikit-learn's `BayesianGaussianMixture` (variational Bayesian inference) with these
    /// priors instead of maximum likelihood, on the same EM driver and backends: the E-step runs
    /// the same kernels with the posterior's expected log weights, and the lower bound is
    /// scikit-learn's evidence lower bound, a total over the samples. It takes no initial
    /// weights, means or precisions (start it from responsibilities or labels instead), and no
    /// MAP [`prior`](GmmParamsBuilder::prior).
    pub fn variational(mut self, variational: Variational) -> Self {
        self.variational = Some(variational);
        self
    }
    /// Fits the maximum a posteriori estimate under a conjugate prior (mclust's `priorControl()`)
    /// instead of maximum likelihood. The lower bound becomes the mean log-posterior per sample
    /// (log-likelihood plus the prior's log density, over Σw), which MAP-EM never lowers; the
    /// score and the BIC stay the log-likelihood, as in mclust.
    pub fn prior(mut self, prior: Prior) -> Self {
        self.prior = Some(prior);
        self
    }
    /// Sets the maximum number of EM iterations (default 100; 0 returns the initialisation).
    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }
    /// Sets the number of initialisations (default 1).
    pub fn n_init(mut self, n_init: usize) -> Self {
        self.n_init = n_init;
        self
    }
    /// Sets the initialisation method (default k-means).
    pub fn init_method(mut self, init_method: InitMethod) -> Self {
        self.init_method = init_method;
        self
    }
    /// Starts from the user's responsibilities, row-major N × K (each row >= 0, summing to 1):
    /// the fit's first step is an M-step from them, as scikit-learn's `_initialize(X, resp)` and
    /// mclust's `me*` (with a prior, the MAP step). Sets the init method to
    /// [`InitMethod::Responsibilities`]; a later `init_method` of another kind sets them aside.
    /// Weights, means or precisions given too replace what the responsibilities imply.
    pub fn init_responsibilities(mut self, responsibilities: Vec<f64>) -> Self {
        self.init_given = Some(GivenStart::Responsibilities(responsibilities.into()));
        self.init_method = InitMethod::Responsibilities;
        self
    }
    /// Starts from a label per sample (each below K): responsibilities of 1 for the sample's
    /// component and 0 elsewhere, as [`GmmParamsBuilder::init_responsibilities`].
    pub fn init_labels(mut self, labels: Vec<usize>) -> Self {
        self.init_given = Some(GivenStart::Labels(labels.into()));
        self.init_method = InitMethod::Responsibilities;
        self
    }
    /// Gives initial weights (length K, positive, summing to 1), as scikit-learn's `weights_init`.
    pub fn weights_init(mut self, weights: Vec<f64>) -> Self {
        self.weights_init = Some(weights);
        self
    }
    /// Gives initial means, row-major K x d, as scikit-learn's `means_init`.
    pub fn means_init(mut self, means: Vec<f64>) -> Self {
        self.means_init = Some(means);
        self
    }
    /// Gives initial precisions (inverse covariances), row-major, as scikit-learn's `precisions_init`:
    /// full K x d x d, tied d x d, diag K x d, spherical K.
    pub fn precisions_init(mut self, precisions: Vec<f64>) -> Self {
        self.precisions_init = Some(precisions);
        self
    }
    /// Sets the seed of every random choice (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// With warm start, a second fit of a [`crate::GaussianMixture`] continues from its model.
    pub fn warm_start(mut self, warm_start: bool) -> Self {
        self.warm_start = warm_start;
        self
    }

    /// Chooses where the E-step and statistics run (default [`BackendKind::Cpu`]).
    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = backend;
        self
    }
    /// Caps the GPU's samples per chunk (rounded up to a multiple of 64), to exercise or bound the
    /// chunked path; by default chunks are as large as the device's binding limits allow.
    pub fn chunk_size(mut self, samples: usize) -> Self {
        self.chunk_size = Some(samples);
        self
    }
    /// Caps the device memory a GPU fit holds (the samples and its working buffers). Where the
    /// host's samples do not fit, they are streamed: uploaded chunk by chunk each pass through two
    /// reused buffers, the upload of one chunk overlapping the kernels of the previous one, with
    /// the same model as a resident fit of the same chunks. wgpu cannot tell a device's memory, so
    /// without a cap the samples are resident, and a device too small for them is
    /// [`GmmError::GpuOutOfMemory`].
    pub fn max_device_bytes(mut self, bytes: u64) -> Self {
        self.max_device_bytes = Some(bytes);
        self
    }

    /// Chooses the GPU's kernels for an EM pass: [`GpuKernels::Auto`] (the default) fuses the
    /// E-step, the normalisation and the statistics into one kernel where the model is small
    /// enough; [`GpuKernels::Split`] always runs them as separate kernels. Both give the same
    /// model to f32 rounding.
    pub fn gpu_kernels(mut self, kernels: GpuKernels) -> Self {
        self.gpu_kernels = kernels;
        self
    }

    /// Chooses the GPU's arithmetic: [`GpuPrecision::Auto`] (the default) runs the plain-f32
    /// kernels with a guard that switches the fit to the exact ones where f32 would not hold;
    /// [`GpuPrecision::Fast`] always plain f32; [`GpuPrecision::Exact`] always two-float. The
    /// model records what ran ([`crate::GmmModel::gpu_precision`]).
    pub fn gpu_precision(mut self, precision: GpuPrecision) -> Self {
        self.gpu_precision = precision;
        self
    }

    /// Checks every value once and returns the parameters, or the first problem found.
    pub fn build(self) -> Result<GmmParams, GmmError> {
        let k = self.n_components;
        if k == 0 {
            return Err(GmmError::ZeroComponents);
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return Err(GmmError::InvalidTol { value: self.tol });
        }
        let reg_covar = self.reg_covar.unwrap_or(if self.prior.is_some() { 0.0 } else { 1e-6 });
        if !(reg_covar.is_finite() && reg_covar >= 0.0) {
            return Err(GmmError::InvalidRegCovar { value: reg_covar });
        }
        if let Some(p) = &self.prior {
            p.check()?;
        }
        if let Some(v) = &self.variational {
            if self.prior.is_some() {
                return Err(GmmError::PriorAndVariational);
            }
            for (field, given) in [
                ("weights_init", self.weights_init.is_some()),
                ("means_init", self.means_init.is_some()),
                ("precisions_init", self.precisions_init.is_some()),
            ] {
                if given {
                    return Err(GmmError::VariationalInitialParameters { field });
                }
            }
            v.check()?;
        }
        if let Some(o) = &self.online {
            o.check()?;
            if self.prior.is_some() || self.variational.is_some() {
                return Err(GmmError::OnlineWithPrior);
            }
        }
        let f = self.frozen;
        if f != Frozen::default() && (self.prior.is_some() || self.variational.is_some()) {
            return Err(GmmError::FrozenWithPrior);
        }
        for (frozen, given, parameter, init) in [
            (
                f.weights,
                self.weights_init.is_some(),
                Parameter::Weights,
                "weights_init",
            ),
            (f.means, self.means_init.is_some(), Parameter::Means, "means_init"),
            (
                f.covariances,
                self.precisions_init.is_some(),
                Parameter::Covariances,
                "precisions_init",
            ),
        ] {
            if frozen && !given {
                return Err(GmmError::FrozenWithoutInitial { parameter, init });
            }
        }
        let init_given = match (self.init_method, self.init_given) {
            (InitMethod::Responsibilities, None) => return Err(GmmError::InitResponsibilitiesMissing),
            (InitMethod::Responsibilities, Some(given)) => {
                given.check(k)?;
                Some(given)
            }
            (_, _) => None,
        };
        if self.n_init == 0 {
            return Err(GmmError::ZeroNInit);
        }
        if self.chunk_size == Some(0) {
            return Err(GmmError::ZeroChunkSize);
        }
        if let Some(w) = &self.weights_init {
            check_weights(w, k)?;
        }
        let mut d_means = None;
        if let Some(m) = &self.means_init {
            if m.is_empty() || m.len() % k != 0 {
                return Err(GmmError::MeansInitShape {
                    n_components: k,
                    n_features: m.len() / k,
                    got: m.len(),
                });
            }
            let d = m.len() / k;
            if let Some(i) = m.iter().position(|v| !v.is_finite()) {
                return Err(GmmError::MeansInitNotFinite {
                    component: i / d,
                    feature: i % d,
                    value: m[i],
                });
            }
            d_means = Some(d);
        }
        let precisions_init = match &self.precisions_init {
            Some(p) => Some(check_precisions(p, self.covariance_type, k, d_means)?),
            None => None,
        };
        Ok(GmmParams {
            n_components: k,
            covariance_type: self.covariance_type,
            tol: self.tol,
            reg_covar,
            max_iter: self.max_iter,
            n_init: self.n_init,
            init_method: self.init_method,
            weights_init: self.weights_init,
            means_init: self.means_init,
            precisions_init,
            seed: self.seed,
            warm_start: self.warm_start,
            backend: self.backend,
            chunk_size: self.chunk_size,
            max_device_bytes: self.max_device_bytes,
            gpu_kernels: self.gpu_kernels,
            gpu_precision: self.gpu_precision,
            prior: self.prior,
            init_given,
            variational: self.variational,
            frozen: self.frozen,
            online: self.online,
            missing: self.missing,
        })
    }
}

/// Weights must be K finite positive numbers summing to 1 (to scikit-learn's `np.allclose`, atol 1e-8).
pub(crate) fn check_weights(w: &[f64], k: usize) -> Result<(), GmmError> {
    if w.len() != k {
        return Err(GmmError::WeightsInitLength {
            expected: k,
            got: w.len(),
        });
    }
    if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(GmmError::WeightsInitNotPositive {
            component: i,
            value: w[i],
        });
    }
    let sum: f64 = w.iter().sum();
    if (1.0 - sum).abs() > 1e-8 {
        return Err(GmmError::WeightsInitSum { sum });
    }
    Ok(())
}

/// Checks a precisions array and factors it into the model's upper-triangular precision Cholesky layout.
/// Returns the factors and the feature count they imply (unknown for spherical without means).
fn check_precisions(
    p: &[f64],
    cov: CovarianceType,
    k: usize,
    d_means: Option<usize>,
) -> Result<(Vec<f64>, Option<usize>), GmmError> {
    // The feature count comes from the means if given, else from the array's length.
    let d = match (cov, d_means) {
        (_, Some(d)) => Some(d),
        (CovarianceType::Full, None) => exact_root(p.len() / k.max(1)).filter(|_| p.len() % k == 0),
        (CovarianceType::Tied, None) => exact_root(p.len()),
        (CovarianceType::Diag, None) => (p.len() % k == 0 && !p.is_empty()).then_some(p.len() / k),
        (CovarianceType::Spherical, None) => Some(0),
    };
    let shape_err = |d: usize| {
        let shape = cov.covariance_shape(k, d);
        GmmError::PrecisionsInitShape {
            covariance_type: cov,
            n_components: k,
            n_features: d,
            expected: shape.iter().product(),
            got: p.len(),
            shape: format!("{shape:?}"),
        }
    };
    let d = d
        .filter(|&d| d > 0 || cov == CovarianceType::Spherical)
        .ok_or_else(|| shape_err(0))?;
    if p.len() != cov.covariance_len(k, d) {
        return Err(shape_err(d));
    }
    let mut factors = vec![0.0; p.len()];
    match cov {
        CovarianceType::Full | CovarianceType::Tied => {
            for (c, (pm, um)) in p.chunks_exact(d * d).zip(factors.chunks_exact_mut(d * d)).enumerate() {
                for i in 0..d {
                    for j in i + 1..d {
                        let (a, b) = (pm[i * d + j], pm[j * d + i]);
                        // scikit-learn's check is np.allclose(P, P.T): rtol 1e-5, atol 1e-8.
                        // Written so that NaN is never "close".
                        let close = (a - b).abs() <= 1e-8 + 1e-5 * b.abs();
                        if !close {
                            return Err(GmmError::PrecisionsInitNotSymmetric {
                                component: c,
                                row: i,
                                col: j,
                                upper: a,
                                lower: b,
                            });
                        }
                    }
                }
                if !linalg::upper_factor(pm, d, um) {
                    return Err(GmmError::PrecisionsInitNotPositiveDefinite { component: c });
                }
            }
        }
        CovarianceType::Diag | CovarianceType::Spherical => {
            let per = if cov == CovarianceType::Diag { d } else { 1 };
            for (i, (&v, u)) in p.iter().zip(factors.iter_mut()).enumerate() {
                if !(v.is_finite() && v > 0.0) {
                    return Err(GmmError::PrecisionsInitNotPositiveDefinite { component: i / per });
                }
                *u = v.sqrt();
            }
        }
    }
    let known_d = (cov != CovarianceType::Spherical || d_means.is_some()).then_some(d);
    Ok((factors, known_d))
}

fn exact_root(n: usize) -> Option<usize> {
    let r = (n as f64).sqrt().round() as usize;
    (r > 0 && r * r == n).then_some(r)
}
