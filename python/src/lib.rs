//! `gmm_gpu._core`: the native half of the `gmm_gpu` Python package.
//!
//! A thin layer over the gmm-gpu crate: `fit` runs EM (with the GIL released, checking for Ctrl-C
//! between iterations), `Model` holds a fitted or rebuilt mixture and answers the per-sample
//! queries, and `adapters` lists the GPUs. Parameter checks with scikit-learn's wording, dtype
//! handling and everything else scikit-learn users see live in the pure-Python `GaussianMixture` and
//! `BayesianGaussianMixture`.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::OnceLock;

use gmm_gpu::{
    BackendKind, CovarianceType, DataView, FitEvent, GaussianMixture, GmmError, GmmModel, GmmParams, GmmParamsBuilder,
    GpuContext, GpuPrecision, InitMethod, Online as Schedule, Parameter, Prior, Variational, WeightPrior,
};
use numpy::{
    IntoPyArray, PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArrayDyn,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

pyo3::create_exception!(
    _core,
    CoreError,
    PyValueError,
    "An error of the gmm-gpu core; `kind` names its variant (GmmError::<kind>)."
);

/// The core's error as a `CoreError` whose `kind` attribute names the variant.
fn to_py(py: Python<'_>, e: &GmmError) -> PyErr {
    let debug = format!("{e:?}");
    let kind: String = debug.chars().take_while(char::is_ascii_alphanumeric).collect();
    let err = CoreError::new_err(e.to_string());
    // Setting an attribute on a fresh exception object cannot fail short of memory exhaustion.
    let _ = err.value(py).setattr("kind", kind);
    err
}

/// A 2-D sample array as it comes from numpy: float64 or float32.
#[derive(FromPyObject)]
enum Samples2<'py> {
    F64(PyReadonlyArray2<'py, f64>),
    F32(PyReadonlyArray2<'py, f32>),
}

/// The rows of a 2-D array, row-major: borrowed when it is C-contiguous, else copied.
fn rows<'a, T: numpy::Element + Copy>(a: &'a PyReadonlyArray2<'_, T>) -> Cow<'a, [T]> {
    match a.as_slice() {
        Ok(s) if a.is_c_contiguous() => Cow::Borrowed(s),
        _ => Cow::Owned(a.as_array().iter().copied().collect()),
    }
}

/// Samples in either precision, row-major, with their feature count.
enum Rows<'a> {
    F64(Cow<'a, [f64]>, usize),
    F32(Cow<'a, [f32]>, usize),
}

impl<'py> Samples2<'py> {
    fn rows(&self) -> Rows<'_> {
        match self {
            Samples2::F64(a) => Rows::F64(rows(a), a.shape()[1]),
            Samples2::F32(a) => Rows::F32(rows(a), a.shape()[1]),
        }
    }
}

impl Rows<'_> {
    /// NaN reads as a missing value: the Python classes let it through only with
    /// `missing="marginalise"`, and the core refuses it anywhere else.
    fn view(&self) -> Result<DataView<'_>, GmmError> {
        match self {
            Rows::F64(x, d) => DataView::with_missing(gmm_gpu::Samples::F64(x), *d),
            Rows::F32(x, d) => DataView::with_missing(gmm_gpu::Samples::F32(x), *d),
        }
    }
}

/// Any array's values as f64, in logical (row-major) order.
fn values(a: &PyReadonlyArrayDyn<'_, f64>) -> Vec<f64> {
    a.as_array().iter().copied().collect()
}

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> PyResult<T>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}

/// A flat f64 vector as a numpy array of the given shape.
fn shaped<'py>(py: Python<'py>, v: Vec<f64>, shape: Vec<usize>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
    PyArray1::from_vec(py, v).reshape(shape)
}

/// A MAP fit's prior as the Python class passes it: a dict with every key, None for the
/// hyperparameters mclust's defaultPrior takes from the data (`scale` flattened row-major).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct PriorArgs {
    shrinkage: Option<f64>,
    mean: Option<Vec<f64>>,
    dof: Option<f64>,
    scale: Option<Vec<f64>>,
    weights: Option<f64>,
}

impl PriorArgs {
    fn prior(self) -> Prior {
        let mut p = Prior::mclust();
        if let Some(kappa) = self.shrinkage {
            p = p.shrinkage(kappa);
        }
        if let Some(m) = self.mean {
            p = p.mean(m);
        }
        if let Some(nu) = self.dof {
            p = p.dof(nu);
        }
        if let Some(s) = self.scale {
            p = p.scale(s);
        }
        if let Some(alpha) = self.weights {
            p = p.weights(alpha);
        }
        p
    }
}

/// A variational fit's priors as the Python class passes them: a dict with every key, under
/// scikit-learn's names, None for a prior the core takes from the data (`covariance_prior`
/// flattened row-major: d × d for full and tied, d values for diag, one for spherical).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct VariationalArgs {
    weight_concentration_prior_type: String,
    weight_concentration_prior: Option<f64>,
    mean_precision_prior: Option<f64>,
    mean_prior: Option<Vec<f64>>,
    degrees_of_freedom_prior: Option<f64>,
    covariance_prior: Option<Vec<f64>>,
}

impl VariationalArgs {
    fn variational(self) -> PyResult<Variational> {
        let prior: WeightPrior = parse("weight_concentration_prior_type", &self.weight_concentration_prior_type)?;
        let mut v = Variational::dirichlet_process().weight_prior(prior);
        if let Some(alpha) = self.weight_concentration_prior {
            v = v.weight_concentration_prior(alpha);
        }
        if let Some(beta) = self.mean_precision_prior {
            v = v.mean_precision_prior(beta);
        }
        if let Some(m) = self.mean_prior {
            v = v.mean_prior(m);
        }
        if let Some(nu) = self.degrees_of_freedom_prior {
            v = v.degrees_of_freedom_prior(nu);
        }
        if let Some(psi) = self.covariance_prior {
            v = v.covariance_prior(psi);
        }
        Ok(v)
    }
}

/// A variational posterior as the Python class passes it to rebuild a model: a dict with
/// "weight_concentration_prior_type", "weight_concentration" (α, or the process's a),
/// "weight_concentration_b" (the process's b, else None), "mean_precision" and
/// "degrees_of_freedom" (one value for tied).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct PosteriorArgs {
    weight_concentration_prior_type: String,
    weight_concentration: Vec<f64>,
    weight_concentration_b: Option<Vec<f64>>,
    mean_precision: Vec<f64>,
    degrees_of_freedom: Vec<f64>,
}

/// The GPU `backend="gpu"` fits on: one device per process, made on first use and shared, so that
/// its compiled pipelines serve every later fit.
fn gpu_context() -> Result<&'static GpuContext, GmmError> {
    static GPU: OnceLock<Result<GpuContext, String>> = OnceLock::new();
    match GPU.get_or_init(|| GpuContext::new().map_err(|e| e.to_string())) {
        Ok(ctx) => Ok(ctx),
        Err(detail) => Err(GmmError::NoAdapter { detail: detail.clone() }),
    }
}

/// Samples and their components, as `Model.sample` returns them.
type Drawn<'py> = (Bound<'py, PyArrayDyn<f64>>, Bound<'py, PyArray1<i64>>);

/// A Gaussian mixture: fitted by `fit`, or rebuilt from parameters kept in Python.
#[pyclass(frozen, module = "gmm_gpu._core")]
struct Model {
    model: GmmModel,
}

#[pymethods]
impl Model {
    /// Rebuilds a model from scikit-learn-shaped float64 parameters and the lower bound a warm
    /// start continues from (-inf for none); a variational model's posterior as a
    /// [`PosteriorArgs`] dict (its weights are then recomputed from the concentrations).
    #[new]
    #[pyo3(signature = (
        covariance_type, weights, means, covariances, precisions_cholesky, lower_bound, posterior=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        covariance_type: &str,
        weights: PyReadonlyArrayDyn<'_, f64>,
        means: PyReadonlyArrayDyn<'_, f64>,
        covariances: PyReadonlyArrayDyn<'_, f64>,
        precisions_cholesky: PyReadonlyArrayDyn<'_, f64>,
        lower_bound: f64,
        posterior: Option<PosteriorArgs>,
    ) -> PyResult<Self> {
        let cov: CovarianceType = parse("covariance_type", covariance_type)?;
        let shape = means.shape();
        if shape.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "means must be 2-D (n_components, n_features), got shape {shape:?}"
            )));
        }
        let model = GmmModel::from_parameters(
            cov,
            shape[1],
            values(&weights),
            values(&means),
            values(&covariances),
            values(&precisions_cholesky),
            lower_bound,
        )
        .map_err(|e| to_py(py, &e))?;
        let model = match posterior {
            None => model,
            Some(p) => {
                let prior: WeightPrior = parse("weight_concentration_prior_type", &p.weight_concentration_prior_type)?;
                model
                    .with_variational_posterior(
                        prior,
                        (p.weight_concentration, p.weight_concentration_b),
                        p.mean_precision,
                        p.degrees_of_freedom,
                    )
                    .map_err(|e| to_py(py, &e))?
            }
        };
        Ok(Self { model })
    }

    #[getter]
    fn covariance_type(&self) -> &'static str {
        self.model.covariance_type().as_str()
    }
    #[getter]
    fn n_components(&self) -> usize {
        self.model.n_components()
    }
    #[getter]
    fn n_features(&self) -> usize {
        self.model.n_features()
    }
    #[getter]
    fn weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_slice(py, self.model.weights())
    }
    #[getter]
    fn means<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let shape = vec![self.model.n_components(), self.model.n_features()];
        shaped(py, self.model.means().to_vec(), shape)
    }
    #[getter]
    fn covariances<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        shaped(py, self.model.covariances().to_vec(), self.cov_shape())
    }
    #[getter]
    fn precisions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        shaped(py, self.model.precisions(), self.cov_shape())
    }
    #[getter]
    fn precisions_cholesky<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        shaped(py, self.model.precisions_cholesky().to_vec(), self.cov_shape())
    }
    #[getter]
    fn converged(&self) -> bool {
        self.model.converged()
    }
    #[getter]
    fn n_iter(&self) -> usize {
        self.model.n_iter()
    }
    #[getter]
    fn lower_bound(&self) -> f64 {
        self.model.lower_bound()
    }
    /// The mean log-likelihood of the last E-step: the lower bound without a prior; with one,
    /// the lower bound less the prior's term.
    #[getter]
    fn log_likelihood(&self) -> f64 {
        self.model.log_likelihood()
    }
    /// A MAP fit's prior, every hyperparameter as the fit used it, as a dict: "shrinkage" (float),
    /// "mean" ((n_features,) array), "dof" (float), "scale" ((n_features, n_features) array for
    /// full and tied, a float for diag and spherical) and "weights" (float, or None for no prior
    /// on the weights); None for a maximum-likelihood fit or a rebuilt model.
    #[getter]
    fn prior<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(p) = self.model.prior() else {
            return Ok(None);
        };
        let d = self.model.n_features();
        let dict = PyDict::new(py);
        dict.set_item("shrinkage", p.get_shrinkage())?;
        dict.set_item("mean", PyArray1::from_slice(py, p.get_mean().unwrap_or_default()))?;
        dict.set_item("dof", p.get_dof())?;
        let scale = p.get_scale().unwrap_or_default();
        match self.model.covariance_type() {
            CovarianceType::Full | CovarianceType::Tied => {
                dict.set_item("scale", shaped(py, scale.to_vec(), vec![d, d])?)?
            }
            CovarianceType::Diag | CovarianceType::Spherical => dict.set_item("scale", scale.first())?,
        }
        dict.set_item("weights", p.get_weights())?;
        Ok(Some(dict))
    }
    /// A variational fit's prior on the weights ("dirichlet_process" or
    /// "dirichlet_distribution"); None for maximum likelihood and MAP.
    #[getter]
    fn weight_concentration_prior_type(&self) -> Option<&'static str> {
        self.model.weight_prior().map(WeightPrior::as_str)
    }
    /// A variational fit's `weight_concentration_`: the Dirichlet's α ((K,) array), or for the
    /// process the Beta parameters as a tuple (a, b) of (K,) arrays; None otherwise.
    #[getter]
    fn weight_concentration<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some((a, b)) = self.model.weight_concentration() else {
            return Ok(None);
        };
        let a = PyArray1::from_slice(py, a).into_any();
        Ok(Some(match b {
            Some(b) => PyTuple::new(py, [a, PyArray1::from_slice(py, b).into_any()])?.into_any(),
            None => a,
        }))
    }
    /// A variational fit's `mean_precision_` ((K,) array); None otherwise.
    #[getter]
    fn mean_precision<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.model.mean_precision().map(|m| PyArray1::from_slice(py, m))
    }
    /// A variational fit's `degrees_of_freedom_` ((K,) array; one value for tied); None otherwise.
    #[getter]
    fn degrees_of_freedom<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.model.degrees_of_freedom().map(|m| PyArray1::from_slice(py, m))
    }
    #[getter]
    fn lower_bounds(&self) -> Vec<f64> {
        self.model.lower_bounds().to_vec()
    }
    /// "cpu" or "gpu": where the fit ran.
    #[getter]
    fn backend(&self) -> &str {
        self.model.backend()
    }
    /// The GPU adapter the fit ran on, if any.
    #[getter]
    fn adapter(&self) -> Option<&str> {
        self.model.adapter()
    }
    /// Why backend "auto" fitted on the CPU, if it did.
    #[getter]
    fn fallback_reason(&self) -> Option<&str> {
        self.model.fallback_reason()
    }
    /// A GPU fit's arithmetic, as a dict: "requested" ("auto", "fast" or "exact"), "used" (what
    /// its last pass ran: "fast", "exact (...)" naming the exact arithmetic, or "fast + exact
    /// (...)" where auto ran some components exact), "switches" (why auto moved a component or the
    /// fit from fast to exact, in order) and "exact_components" (the components run exact beside
    /// fast ones); None for a CPU fit or a rebuilt model.
    #[getter]
    fn gpu_precision<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(p) = self.model.gpu_precision() else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("requested", &p.requested)?;
        d.set_item("used", &p.used)?;
        d.set_item("switches", PyList::new(py, &p.switches)?)?;
        d.set_item("exact_components", PyList::new(py, &p.exact_components)?)?;
        Ok(Some(d))
    }
    fn n_parameters(&self) -> usize {
        self.model.n_parameters()
    }

    /// The most likely component of each sample (int64).
    fn predict<'py>(&self, py: Python<'py>, x: Samples2<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let rows = x.rows();
        let labels = py
            .detach(|| rows.view().and_then(|v| self.model.predict(&v)))
            .map_err(|e| to_py(py, &e))?;
        Ok(labels
            .into_iter()
            .map(|l| l as i64)
            .collect::<Vec<_>>()
            .into_pyarray(py))
    }

    /// Responsibilities, (n_samples, n_components).
    fn predict_proba<'py>(&self, py: Python<'py>, x: Samples2<'py>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let rows = x.rows();
        let (n, proba) = py
            .detach(|| {
                let v = rows.view()?;
                Ok::<_, GmmError>((v.n_samples(), self.model.predict_proba(&v)?))
            })
            .map_err(|e| to_py(py, &e))?;
        shaped(py, proba, vec![n, self.model.n_components()])
    }

    /// `x` with each missing value (NaN) replaced by its conditional expectation under the model,
    /// (n_samples, n_features) float64.
    fn impute<'py>(&self, py: Python<'py>, x: Samples2<'py>) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let rows = x.rows();
        let (n, filled) = py
            .detach(|| {
                let v = rows.view()?;
                Ok::<_, GmmError>((v.n_samples(), self.model.impute(&v)?))
            })
            .map_err(|e| to_py(py, &e))?;
        shaped(py, filled, vec![n, self.model.n_features()])
    }

    /// log p(x) of each sample.
    fn score_samples<'py>(&self, py: Python<'py>, x: Samples2<'py>) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let rows = x.rows();
        let scores = py
            .detach(|| rows.view().and_then(|v| self.model.score_samples(&v)))
            .map_err(|e| to_py(py, &e))?;
        Ok(scores.into_pyarray(py))
    }

    /// `n` samples, grouped by component, and their components: ((n, n_features) float64, (n,) int64).
    fn sample<'py>(&self, py: Python<'py>, n: usize, seed: u64) -> PyResult<Drawn<'py>> {
        let (x, labels) = py.detach(|| self.model.sample(n, seed)).map_err(|e| to_py(py, &e))?;
        let x = shaped(py, x, vec![n, self.model.n_features()])?;
        let labels = labels
            .into_iter()
            .map(|l| l as i64)
            .collect::<Vec<_>>()
            .into_pyarray(py);
        Ok((x, labels))
    }

    /// The model as the crate's JSON (scikit-learn's attribute names).
    fn to_json(&self) -> String {
        self.model.to_json()
    }
}

impl Model {
    fn cov_shape(&self) -> Vec<usize> {
        let m = &self.model;
        m.covariance_type().covariance_shape(m.n_components(), m.n_features())
    }
}

/// What the monitor passes back out of a fit: the Python error that stopped it, if one did.
struct Monitor {
    callback: Option<Py<PyAny>>,
    error: Option<PyErr>,
}

impl Monitor {
    /// Re-attaches to Python for each event: checks for signals (Ctrl-C raises KeyboardInterrupt
    /// here), then hands the event to the callback as a tuple. Either raising stops the fit.
    fn on(&mut self, event: &FitEvent) -> ControlFlow<()> {
        let result = Python::attach(|py| {
            py.check_signals()?;
            let Some(callback) = &self.callback else {
                return Ok(());
            };
            match *event {
                FitEvent::InitStart { init } => callback.call1(py, ("init_start", init)),
                FitEvent::Iteration(p) => {
                    callback.call1(py, ("iteration", p.init, p.iteration, p.lower_bound, p.change))
                }
                FitEvent::InitEnd {
                    init,
                    n_iter,
                    lower_bound,
                    converged,
                } => callback.call1(py, ("init_end", init, n_iter, lower_bound, converged)),
                _ => return Ok(()),
            }
            .map(drop)
        });
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }
}

/// The starting values and regularisation that `fit` and [`Online`] both take.
struct Start<'a, 'py> {
    reg_covar: Option<f64>,
    init_responsibilities: Option<&'a PyReadonlyArray2<'py, f64>>,
    init_labels: Option<&'a PyReadonlyArray1<'py, i64>>,
    weights_init: Option<&'a PyReadonlyArrayDyn<'py, f64>>,
    means_init: Option<&'a PyReadonlyArrayDyn<'py, f64>>,
    precisions_init: Option<&'a PyReadonlyArrayDyn<'py, f64>>,
    freeze: &'a [String],
}

impl Start<'_, '_> {
    /// `builder` with these values set.
    fn onto(self, mut builder: GmmParamsBuilder) -> PyResult<GmmParamsBuilder> {
        if let Some(r) = self.reg_covar {
            builder = builder.reg_covar(r);
        }
        if let Some(r) = self.init_responsibilities {
            builder = builder.init_responsibilities(rows(r).into_owned());
        }
        if let Some(l) = self.init_labels {
            builder = builder.init_labels(labels(l)?);
        }
        if let Some(w) = self.weights_init {
            builder = builder.weights_init(values(w));
        }
        if let Some(m) = self.means_init {
            builder = builder.means_init(values(m));
        }
        if let Some(p) = self.precisions_init {
            builder = builder.precisions_init(values(p));
        }
        if !self.freeze.is_empty() {
            builder = builder.freeze(&frozen(self.freeze)?);
        }
        Ok(builder)
    }
}

/// The crate's estimator for `params`: on the GPU, the process's shared context (its pipelines
/// serve every fit and every online step).
fn estimator(params: GmmParams, backend: BackendKind) -> Result<GaussianMixture, GmmError> {
    Ok(if backend == BackendKind::Gpu {
        GaussianMixture::on_gpu(params, gpu_context()?.clone())
    } else {
        GaussianMixture::new(params)
    })
}

/// Fits a mixture to `x` (float64 or float32, (n_samples, n_features)) by EM, with the GIL
/// released. Parameters are scikit-learn's, already validated by the Python class (`reg_covar`
/// None: the core's default, 1e-6, or 0 with a prior); `prior` is a MAP fit's [`PriorArgs`],
/// `variational` a variational fit's [`VariationalArgs`]; `init_responsibilities` ((n_samples,
/// n_components) float64) or `init_labels` ((n_samples,) int64) start the fit with an M-step
/// from them, in place of `init_params`; `freeze` names the parameters ("weights", "means",
/// "covariances" or "precisions") kept at their `*_init` values; `seed` drives every random
/// choice; `precision` ("auto", "fast" or "exact") is a GPU fit's arithmetic; `warm` is the model
/// to continue from (warm start). `monitor`, if given, is called with ("init_start", init),
/// ("iteration", init, iteration, lower_bound, change) and ("init_end", init, n_iter,
/// lower_bound, converged); Ctrl-C is checked at each of those points. `missing` ("reject" or
/// "marginalise") says what a NaN in `x` does.
#[pyfunction]
#[pyo3(signature = (
    x, sample_weight=None, *, n_components, covariance_type, tol, reg_covar=None, prior=None, variational=None,
    max_iter, n_init, init_params, init_responsibilities=None, init_labels=None, weights_init=None,
    means_init=None, precisions_init=None, freeze=Vec::new(), seed, backend, precision="auto", warm=None,
    monitor=None, missing="reject"
))]
#[allow(clippy::too_many_arguments)]
fn fit<'py>(
    py: Python<'py>,
    x: Samples2<'py>,
    sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    n_components: usize,
    covariance_type: &str,
    tol: f64,
    reg_covar: Option<f64>,
    prior: Option<PriorArgs>,
    variational: Option<VariationalArgs>,
    max_iter: usize,
    n_init: usize,
    init_params: &str,
    init_responsibilities: Option<PyReadonlyArray2<'py, f64>>,
    init_labels: Option<PyReadonlyArray1<'py, i64>>,
    weights_init: Option<PyReadonlyArrayDyn<'py, f64>>,
    means_init: Option<PyReadonlyArrayDyn<'py, f64>>,
    precisions_init: Option<PyReadonlyArrayDyn<'py, f64>>,
    freeze: Vec<String>,
    seed: u64,
    backend: &str,
    precision: &str,
    warm: Option<PyRef<'py, Model>>,
    monitor: Option<Py<PyAny>>,
    missing: &str,
) -> PyResult<Model> {
    let backend: BackendKind = parse("backend", backend)?;
    let mut builder = GmmParams::builder(n_components)
        .missing(parse("missing", missing)?)
        .covariance_type(parse("covariance_type", covariance_type)?)
        .tol(tol)
        .max_iter(max_iter)
        .n_init(n_init)
        .init_method(parse::<InitMethod>("init_params", init_params)?)
        .seed(seed)
        .warm_start(warm.is_some())
        .backend(backend)
        .gpu_precision(parse::<GpuPrecision>("precision", precision)?);
    if let Some(p) = prior {
        builder = builder.prior(p.prior());
    }
    if let Some(v) = variational {
        builder = builder.variational(v.variational()?);
    }
    let start = Start {
        reg_covar,
        init_responsibilities: init_responsibilities.as_ref(),
        init_labels: init_labels.as_ref(),
        weights_init: weights_init.as_ref(),
        means_init: means_init.as_ref(),
        precisions_init: precisions_init.as_ref(),
        freeze: &freeze,
    };
    let params = start.onto(builder)?.build().map_err(|e| to_py(py, &e))?;
    let previous = warm.map(|m| m.model.clone());
    let sample_weight = weights(&sample_weight);
    let rows = x.rows();
    let mut monitor = Monitor {
        callback: monitor,
        error: None,
    };
    let result = py.detach(|| {
        let data = rows.view()?;
        let mut gm = estimator(params, backend)?;
        gm.set_model(previous);
        let mut on_event = |e: &FitEvent| monitor.on(e);
        gm.fit_monitored(&data, sample_weight.as_deref(), &mut on_event)?;
        Ok::<_, GmmError>(gm.into_model().expect("a successful fit leaves a model"))
    });
    match (result, monitor.error) {
        (Ok(model), _) => Ok(Model { model }),
        // The Python error (KeyboardInterrupt, or the callback's) that stopped the fit.
        (Err(GmmError::Interrupted { .. }), Some(e)) => Err(e),
        (Err(e), _) => Err(to_py(py, &e)),
    }
}

/// The running state of stepwise (online) EM between `partial_fit` calls: the crate's estimator,
/// with the model and the running statistics. Made with the parameters of the call that starts
/// it (as `fit` takes them, less `tol`, `max_iter` and `n_init`, plus the step size's `decay` α
/// and `offset` t₀: γ_t = (t + t₀)^(−α)); `warm`, if given, is the model the first step continues
/// from, in place of an initialisation from its batch.
#[pyclass(module = "gmm_gpu._core")]
struct Online {
    gm: GaussianMixture,
}

#[pymethods]
impl Online {
    #[new]
    #[pyo3(signature = (
        *, n_components, covariance_type, reg_covar=None, init_params, init_responsibilities=None,
        init_labels=None, weights_init=None, means_init=None, precisions_init=None, freeze=Vec::new(), seed,
        backend, precision="auto", decay, offset, warm=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new<'py>(
        py: Python<'py>,
        n_components: usize,
        covariance_type: &str,
        reg_covar: Option<f64>,
        init_params: &str,
        init_responsibilities: Option<PyReadonlyArray2<'py, f64>>,
        init_labels: Option<PyReadonlyArray1<'py, i64>>,
        weights_init: Option<PyReadonlyArrayDyn<'py, f64>>,
        means_init: Option<PyReadonlyArrayDyn<'py, f64>>,
        precisions_init: Option<PyReadonlyArrayDyn<'py, f64>>,
        freeze: Vec<String>,
        seed: u64,
        backend: &str,
        precision: &str,
        decay: f64,
        offset: f64,
        warm: Option<PyRef<'py, Model>>,
    ) -> PyResult<Self> {
        let backend: BackendKind = parse("backend", backend)?;
        let builder = GmmParams::builder(n_components)
            .covariance_type(parse("covariance_type", covariance_type)?)
            .init_method(parse::<InitMethod>("init_params", init_params)?)
            .seed(seed)
            .warm_start(warm.is_some())
            .backend(backend)
            .gpu_precision(parse::<GpuPrecision>("precision", precision)?)
            .online(Schedule::default().decay(decay).offset(offset));
        let start = Start {
            reg_covar,
            init_responsibilities: init_responsibilities.as_ref(),
            init_labels: init_labels.as_ref(),
            weights_init: weights_init.as_ref(),
            means_init: means_init.as_ref(),
            precisions_init: precisions_init.as_ref(),
            freeze: &freeze,
        };
        let params = start.onto(builder)?.build().map_err(|e| to_py(py, &e))?;
        let mut gm = estimator(params, backend).map_err(|e| to_py(py, &e))?;
        gm.set_model(warm.map(|m| m.model.clone()));
        Ok(Self { gm })
    }

    /// One step of stepwise EM on the batch `x` (float64 or float32, (n_samples, n_features)),
    /// with the GIL released (the first step initialises, or continues the warm model); the model
    /// after it. On error the state is left as it was before the call.
    #[pyo3(signature = (x, sample_weight=None))]
    fn partial_fit<'py>(
        &mut self,
        py: Python<'py>,
        x: Samples2<'py>,
        sample_weight: Option<PyReadonlyArray1<'py, f64>>,
    ) -> PyResult<Model> {
        let sample_weight = weights(&sample_weight);
        let rows = x.rows();
        let gm = &mut self.gm;
        let result = py.detach(|| {
            // A step that fails in its M-step has already blended its batch into the running
            // statistics: keep the state before it (the statistics are K·d² numbers, cheap
            // beside the batch's E-step).
            let before = gm.clone();
            let stepped = rows.view().and_then(|data| match sample_weight.as_deref() {
                Some(w) => gm.partial_fit_weighted(&data, w).cloned(),
                None => gm.partial_fit(&data).cloned(),
            });
            if stepped.is_err() {
                *gm = before;
            }
            stepped
        });
        let model = result.map_err(|e| to_py(py, &e))?;
        Ok(Model { model })
    }
}

/// Integer labels as the core takes them.
fn labels(l: &PyReadonlyArray1<'_, i64>) -> PyResult<Vec<usize>> {
    l.as_array()
        .iter()
        .map(|&c| usize::try_from(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| PyValueError::new_err("init_labels: a label is negative"))
}

/// The frozen parameters by name.
fn frozen(names: &[String]) -> PyResult<Vec<Parameter>> {
    names.iter().map(|name| parse::<Parameter>("freeze", name)).collect()
}

/// Sample weights as a slice: borrowed when contiguous, else copied.
fn weights<'a>(w: &'a Option<PyReadonlyArray1<'_, f64>>) -> Option<Cow<'a, [f64]>> {
    w.as_ref().map(|w| match w.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(w.as_array().iter().copied().collect()),
    })
}

/// The GPU adapters wgpu finds (hardware first), each a dict: name, backend, device_type, driver,
/// driver_info, vendor, device.
#[pyfunction]
fn adapters(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let infos = py.detach(GpuContext::adapters);
    let list = PyList::empty(py);
    for info in infos {
        let d = PyDict::new(py);
        d.set_item("name", &info.name)?;
        d.set_item("backend", format!("{:?}", info.backend).to_lowercase())?;
        d.set_item("device_type", format!("{:?}", info.device_type))?;
        d.set_item("driver", &info.driver)?;
        d.set_item("driver_info", &info.driver_info)?;
        d.set_item("vendor", info.vendor)?;
        d.set_item("device", info.device)?;
        list.append(d)?;
    }
    Ok(list)
}

/// The native half of gmm_gpu: EM fits on the CPU (float64) or on a wgpu GPU, and the fitted
/// model's queries.
#[pymodule]
mod _core {
    #[pymodule_export]
    use super::{CoreError, Model, Online, adapters, fit};
}
