//! linfa's traits (feature `linfa`): `Fit` for [`GmmParams`] and for its builder on a
//! `DatasetBase` of f64 or f32 records, giving a [`GmmModel`], and `PredictInplace` for the model,
//! giving each row's label, as linfa-clustering's `GaussianMixtureModel` offers them.
//!
//! Unlike [`DataView::try_from`], these take records in any layout, as linfa's own models do: a
//! transposed or strided array is copied once into standard layout first (a standard-layout one is
//! borrowed). A dataset's weights, where it has any, are the fit's sample weights.
//!
//! `GmmParams` and `GmmModel` have inherent `fit` and `predict` methods of their own (on a
//! [`DataView`]), which method-call syntax finds before linfa's traits: call the traits as
//! `Fit::fit(&params, &dataset)` and `Predict::predict(&model, &records)`, or fit the builder
//! (`GmmParams::builder(k).fit(&dataset)`, which has no inherent `fit`: linfa's unchecked
//! hyperparameters).

use ::linfa::dataset::DatasetBase;
use ::linfa::traits::{Fit, PredictInplace};
use ::ndarray::{Array1, ArrayBase, ArrayView2, Data, Ix2};

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
