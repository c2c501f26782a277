//! linfa's traits (feature `linfa`): `Fit` for [`GmmParams`] and for its builder on a
//! `DatasetBase` of f64 or f32 records, giving a [`GmmModel`], and `PredictInplace` for the model,
//! giving each row's label, as linfa-clustering's `GaussianMixtureModel` offers them.
//!
//! Unlike [`DataView::try_from`], these take records in any layout, as linfa's own models do: a
//! transposed or strided array is copied once into standard layout first (a standard-layout one is
//! borrowed). A dataset's weights, where it has any, are the fit's sample weights.
//!
//! [`GaussianMixtureModel`] is linfa-clustering's model by the same name and API, for code that
//! swaps one for the other with one `use` line.
//!
//! `GmmParams` and `GmmModel` have inherent `fit` and `predict` methods of their own (on a
//! [`DataView`]), which method-call syntax finds before linfa's traits: call the traits as
//! `Fit::fit(&params, &dataset)` and `Predict::predict(&model, &records)`, or fit the builder
//! (`GmmParams::builder(k).fit(&dataset)`, which has no inherent `fit`: linfa's unchecked
//! hyperparameters).

use ::linfa::Float;
use ::linfa::dataset::DatasetBase;
use ::linfa::traits::{Fit, PredictInplace};
use ::ndarray::{Array1, Array2, Array3, ArrayBase, ArrayView2, Data, Ix2};

use crate::data::DataView;
use crate::error::GmmError;
use crate::model::GmmModel;
use crate::params::{GmmParams, GmmParamsBuilder};

/// Runs `f` on the rows of `x`, borrowed where `x` is in standard layout, else copied once.
fn on_rows<S, A, R>(x: &ArrayBase<S, Ix2>, f: impl FnOnce(&DataView) -> Result<R, GmmError>) -> Result<R, GmmError>
where
    S: Data<Elem = A>,
    A: Clone,
    for<'a> DataView<'a>: TryFrom<ArrayView2<'a, A>, Error = GmmError>,
{
    let rows = x.as_standard_layout();
    f(&DataView::try_from(rows.view())?)
}

/// The fit of `params` on the dataset's records, weighted by its weights where it has any.
fn fit_dataset<S, A, T>(params: &GmmParams, dataset: &DatasetBase<ArrayBase<S, Ix2>, T>) -> Result<GmmModel, GmmError>
where
    S: Data<Elem = A>,
    A: Clone,
    for<'a> DataView<'a>: TryFrom<ArrayView2<'a, A>, Error = GmmError>,
{
    on_rows(dataset.records(), |view| match dataset.weights() {
        Some(w) => params.fit_weighted(view, &w.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()),
        None => params.fit(view),
    })
}

/// linfa's `Fit` for a parameter type, whose checked parameters `$checked` gives from `$p`.
macro_rules! fit_records {
    ($(#[$doc:meta])* $params:ty, |$p:ident| $checked:expr) => {
        $(#[$doc])*
        impl<S, A, T> Fit<ArrayBase<S, Ix2>, T, GmmError> for $params
        where
            S: Data<Elem = A>,
            A: Clone,
            for<'a> DataView<'a>: TryFrom<ArrayView2<'a, A>, Error = GmmError>,
        {
            type Object = GmmModel;

            fn fit(&self, dataset: &DatasetBase<ArrayBase<S, Ix2>, T>) -> Result<GmmModel, GmmError> {
                let $p = self;
                fit_dataset(&$checked, dataset)
            }
        }
    };
}

fit_records!(
    /// Records of f64 or f32, as [`GmmParams::fit`] takes them; weighted by the dataset's weights,
    /// where it has any, as [`GmmParams::fit_weighted`].
    GmmParams,
    |p| *p
);

fit_records!(
    /// linfa's unchecked hyperparameters: checks them ([`GmmParamsBuilder::build`]), then fits as
    /// [`GmmParams`] does.
    GmmParamsBuilder,
    |p| p.clone().build()?
);

/// Each row's most likely component, as [`GmmModel::predict`]. linfa's trait cannot return an
/// error: where the model rejects the records (another number of features, a NaN or infinity),
/// `y` is filled with `usize::MAX`, which indexes no component, and the error is logged;
/// [`GmmModel::predict_array`] returns it instead.
impl<S, A> PredictInplace<ArrayBase<S, Ix2>, Array1<usize>> for GmmModel
where
    S: Data<Elem = A>,
    A: Clone,
    for<'a> DataView<'a>: TryFrom<ArrayView2<'a, A>, Error = GmmError>,
{
    fn predict_inplace(&self, x: &ArrayBase<S, Ix2>, y: &mut Array1<usize>) {
        match on_rows(x, |view| self.predict(view)) {
            Ok(labels) => *y = Array1::from(labels),
            Err(e) => {
                log::error!("GmmModel::predict_inplace: {e}");
                *y = Array1::from_elem(x.nrows(), usize::MAX);
            }
        }
    }

    fn default_target(&self, x: &ArrayBase<S, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}

/// linfa-clustering's covariance types, by the same name: every one of ours (linfa-clustering's
/// own has `Full` alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GmmCovarType {
    Full,
    Tied,
    Diag,
    Spherical,
}

/// linfa-clustering's initialisations, by the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GmmInitMethod {
    KMeans,
    Random,
}

/// The hyperparameters of [`GaussianMixtureModel`]: linfa-clustering's setters, by the same names,
/// over a [`GmmParamsBuilder`] (checked when fitted); [`GaussianMixtureParams::builder`] gives
/// the rest of ours (backend, GPU precision, …).
#[derive(Clone, Debug)]
pub struct GaussianMixtureParams {
    builder: GmmParamsBuilder,
}

impl GaussianMixtureParams {
    /// The covariance type (linfa-clustering's default, and ours: full).
    pub fn covariance_type(self, covariance: GmmCovarType) -> Self {
        use crate::kinds::CovarianceType as C;
        let c = match covariance {
            GmmCovarType::Full => C::Full,
            GmmCovarType::Tied => C::Tied,
            GmmCovarType::Diag => C::Diag,
            GmmCovarType::Spherical => C::Spherical,
        };
        self.map(|b| b.covariance_type(c))
    }

    /// EM stops when an iteration gains less than this (scikit-learn's `tol`).
    pub fn tolerance(self, tolerance: f64) -> Self {
        self.map(|b| b.tol(tolerance))
    }

    /// Added to each covariance's diagonal (`reg_covar`).
    pub fn reg_covariance(self, reg_covar: f64) -> Self {
        self.map(|b| b.reg_covar(reg_covar))
    }

    /// Initialisations, the best kept (`n_init`).
    pub fn n_runs(self, n_runs: u64) -> Self {
        self.map(|b| b.n_init(n_runs as usize))
    }

    /// Iterations per initialisation at most (`max_iter`).
    pub fn max_n_iterations(self, max_n_iter: u64) -> Self {
        self.map(|b| b.max_iter(max_n_iter as usize))
    }

    /// k-means or random responsibilities.
    pub fn init_method(self, init_method: GmmInitMethod) -> Self {
        let m = match init_method {
            GmmInitMethod::KMeans => crate::kinds::InitMethod::KMeans,
            GmmInitMethod::Random => crate::kinds::InitMethod::Random,
        };
        self.map(|b| b.init_method(m))
    }

    /// The fit's seed, drawn from `rng` (any of linfa's generators: rand 0.8's `RngCore`).
    pub fn with_rng<R: rand_core_06::RngCore>(self, mut rng: R) -> Self {
        let seed = rng.next_u64();
        self.map(|b| b.seed(seed))
    }

    /// Our own builder, for what linfa-clustering has no setter for.
    pub fn builder(self, f: impl FnOnce(GmmParamsBuilder) -> GmmParamsBuilder) -> Self {
        self.map(f)
    }

    fn map(self, f: impl FnOnce(GmmParamsBuilder) -> GmmParamsBuilder) -> Self {
        Self {
            builder: f(self.builder),
        }
    }
}

/// A fitted mixture with linfa-clustering's `GaussianMixtureModel` API, by the same name: change
/// `use linfa_clustering::{GaussianMixtureModel, GmmCovarType};` to
/// `use gmm_gpu::linfa::{GaussianMixtureModel, GmmCovarType};` and the same code fits with this
/// crate (`params`, its setters, `with_rng`, linfa's `Fit` and `Predict`, `weights`, `means`,
/// `covariances`, `precisions`, `centroids`, `predict_proba`). The arrays are in the records'
/// float type, as linfa-clustering's; [`GaussianMixtureModel::model`] is the [`GmmModel`] behind
/// them.
#[derive(Clone, Debug)]
pub struct GaussianMixtureModel<F: Float = f64> {
    model: GmmModel,
    weights: Array1<F>,
    means: Array2<F>,
    covariances: Array3<F>,
    precisions: Array3<F>,
}

impl GaussianMixtureModel<f64> {
    /// Hyperparameters for `n_clusters` components with linfa-clustering's defaults: full
    /// covariances, tolerance 1e-3, reg_covariance 1e-6, 1 run, 100 iterations, k-means.
    pub fn params(n_clusters: usize) -> GaussianMixtureParams {
        GaussianMixtureParams {
            builder: GmmParams::builder(n_clusters),
        }
    }

    /// [`GaussianMixtureModel::params`] seeded from `rng`.
    pub fn params_with_rng<R: rand_core_06::RngCore>(n_clusters: usize, rng: R) -> GaussianMixtureParams {
        Self::params(n_clusters).with_rng(rng)
    }
}

impl<F: Float> GaussianMixtureModel<F> {
    fn of(model: GmmModel) -> Self {
        let cast = |v: &f64| F::cast(*v);
        let (k, d) = (model.n_components(), model.n_features());
        let square = |values: Vec<f64>| Array3::from_shape_vec((k, d, d), values.iter().map(cast).collect());
        let covariances = square((0..k).flat_map(|c| model.covariance_matrix(c)).collect());
        let precisions = square(dense_precisions(&model));
        Self {
            weights: model.weights().iter().map(cast).collect(),
            means: Array2::from_shape_vec((k, d), model.means().iter().map(cast).collect()).expect("K x d means"),
            covariances: covariances.expect("K x d x d covariances"),
            precisions: precisions.expect("K x d x d precisions"),
            model,
        }
    }

    /// The mixture weights (K).
    pub fn weights(&self) -> &Array1<F> {
        &self.weights
    }

    /// The means (K × d).
    pub fn means(&self) -> &Array2<F> {
        &self.means
    }

    /// Each component's covariance matrix (K × d × d, whatever the covariance type).
    pub fn covariances(&self) -> &Array3<F> {
        &self.covariances
    }

    /// Each component's precision matrix (K × d × d).
    pub fn precisions(&self) -> &Array3<F> {
        &self.precisions
    }

    /// The means, as linfa-clustering names them too.
    pub fn centroids(&self) -> &Array2<F> {
        &self.means
    }

    /// Each row's responsibilities (N × K). As linfa-clustering's, this returns no error: rows the
    /// model rejects (another number of features, a NaN) give NaN rows, and the error is logged;
    /// [`GmmModel::predict_proba_array`] returns it instead.
    pub fn predict_proba<S: Data<Elem = F>>(&self, observations: &ArrayBase<S, Ix2>) -> Array2<F>
    where
        for<'a> DataView<'a>: TryFrom<ArrayView2<'a, F>, Error = GmmError>,
    {
        let k = self.model.n_components();
        match on_rows(observations, |view| self.model.predict_proba(view)) {
            Ok(p) => Array2::from_shape_vec((observations.nrows(), k), p.iter().map(|v| F::cast(*v)).collect())
                .expect("N x K responsibilities"),
            Err(e) => {
                log::error!("GaussianMixtureModel::predict_proba: {e}");
                Array2::from_elem((observations.nrows(), k), F::nan())
            }
        }
    }

    /// The model behind the arrays.
    pub fn model(&self) -> &GmmModel {
        &self.model
    }

    /// The model behind the arrays, taken.
    pub fn into_model(self) -> GmmModel {
        self.model
    }
}

/// Every component's precision as a dense d × d matrix, K × d × d values (tied repeats its one
/// matrix, diag and spherical fill the diagonal), as `covariance_matrices_array` does covariances.
fn dense_precisions(model: &GmmModel) -> Vec<f64> {
    use crate::kinds::CovarianceType as C;
    let (k, d) = (model.n_components(), model.n_features());
    let p = model.precisions();
    let mut dense = vec![0.0; k * d * d];
    for (c, m) in dense.chunks_exact_mut(d * d).enumerate() {
        match model.covariance_type() {
            C::Full => m.copy_from_slice(&p[c * d * d..(c + 1) * d * d]),
            C::Tied => m.copy_from_slice(&p),
            C::Diag => (0..d).for_each(|i| m[i * d + i] = p[c * d + i]),
            C::Spherical => (0..d).for_each(|i| m[i * d + i] = p[c]),
        }
    }
    dense
}

impl<S, F, T> Fit<ArrayBase<S, Ix2>, T, GmmError> for GaussianMixtureParams
where
    S: Data<Elem = F>,
    F: Float,
    for<'a> DataView<'a>: TryFrom<ArrayView2<'a, F>, Error = GmmError>,
{
    type Object = GaussianMixtureModel<F>;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<S, Ix2>, T>) -> Result<GaussianMixtureModel<F>, GmmError> {
        Ok(GaussianMixtureModel::of(fit_dataset(
            &self.builder.clone().build()?,
            dataset,
        )?))
    }
}

/// Each row's most likely component, as [`GmmModel`]'s `PredictInplace`.
impl<S, F> PredictInplace<ArrayBase<S, Ix2>, Array1<usize>> for GaussianMixtureModel<F>
where
    S: Data<Elem = F>,
    F: Float,
    for<'a> DataView<'a>: TryFrom<ArrayView2<'a, F>, Error = GmmError>,
{
    fn predict_inplace(&self, x: &ArrayBase<S, Ix2>, y: &mut Array1<usize>) {
        self.model.predict_inplace(x, y);
    }

    fn default_target(&self, x: &ArrayBase<S, Ix2>) -> Array1<usize> {
        Array1::zeros(x.nrows())
    }
}
