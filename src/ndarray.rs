//! ndarray in and out (feature `ndarray`): a [`DataView`] that borrows a 2-D array's rows, and a
//! model's parameters as arrays in scikit-learn's shapes.
//!
//! A `DataView` borrows, never copies: an array whose rows are not one row-major run of memory (a
//! transposed or Fortran-order array, a column slice, a strided step) is refused with
//! [`GmmError::NotStandardLayout`], whose message says to pass `x.as_standard_layout()` (one
//! copy) instead. A copy made here unasked would double the memory of a large data set unseen.

use ::ndarray::{Array1, Array2, Array3, ArrayBase, ArrayD, ArrayView1, ArrayView2, ArrayViewD, Data, Ix2, IxDyn};

use crate::data::{DataView, Samples};
use crate::error::GmmError;
use crate::model::GmmModel;

/// The error for an array whose rows cannot be borrowed as one row-major slice.
fn not_standard<S: Data>(x: &ArrayBase<S, Ix2>) -> GmmError {
    let strides = x.strides();
    GmmError::NotStandardLayout {
        rows: x.nrows(),
        cols: x.ncols(),
        strides: [strides[0], strides[1]],
    }
}

/// `DataView::try_from` an array view of one element type.
macro_rules! data_view_from {
    ($elem:ty, $variant:ident) => {
        impl<'a> TryFrom<ArrayView2<'a, $elem>> for DataView<'a> {
            type Error = GmmError;

            /// Borrows the rows of a standard-layout (row-major, contiguous) array, as
            /// [`DataView::new`] checks them; any other layout is
            /// [`GmmError::NotStandardLayout`] (pass `x.as_standard_layout()`).
            fn try_from(x: ArrayView2<'a, $elem>) -> Result<Self, GmmError> {
                let d = x.ncols();
                match x.to_slice() {
                    Some(rows) => DataView::new(Samples::$variant(rows), d),
                    None => Err(not_standard(&x)),
                }
            }
        }
    };
}

data_view_from!(f64, F64);
data_view_from!(f32, F32);

/// Any 2-D array of f64 or f32 (owned, a view, shared), by reference: as from its view, its rows
/// borrowed or [`GmmError::NotStandardLayout`].
impl<'a, S, A: 'a> TryFrom<&'a ArrayBase<S, Ix2>> for DataView<'a>
where
    S: Data<Elem = A>,
    DataView<'a>: TryFrom<ArrayView2<'a, A>, Error = GmmError>,
{
    type Error = GmmError;

    fn try_from(x: &'a ArrayBase<S, Ix2>) -> Result<Self, GmmError> {
        DataView::try_from(x.view())
    }
}

impl GmmModel {
    /// The mixture weights as a K array (a view of [`GmmModel::weights`]).
    pub fn weights_array(&self) -> ArrayView1<'_, f64> {
        ArrayView1::from(self.weights())
    }

    /// The means as a K × d array (a view of [`GmmModel::means`]).
    pub fn means_array(&self) -> ArrayView2<'_, f64> {
        ArrayView2::from_shape((self.n_components(), self.n_features()), self.means())
            .expect("a model's means are K x d, checked when it was made")
    }

    /// The covariances in scikit-learn's `covariances_` shape for the covariance type
    /// ([`crate::CovarianceType::covariance_shape`]): K × d × d (full), d × d (tied), K × d (diag)
    /// or K (spherical); a view of [`GmmModel::covariances`]. For K dense d × d matrices whatever
    /// the type, see [`GmmModel::covariance_matrices_array`].
    pub fn covariances_array(&self) -> ArrayViewD<'_, f64> {
        self.shaped(self.covariances())
    }

    /// The Cholesky factors of the precisions, shaped as [`GmmModel::covariances_array`] (a view
    /// of [`GmmModel::precisions_cholesky`]).
    pub fn precisions_cholesky_array(&self) -> ArrayViewD<'_, f64> {
        self.shaped(self.precisions_cholesky())
    }

    /// The precisions (inverse covariances), shaped as [`GmmModel::covariances_array`] (computed,
    /// as [`GmmModel::precisions`]).
    pub fn precisions_array(&self) -> ArrayD<f64> {
        let shape = self
            .covariance_type()
            .covariance_shape(self.n_components(), self.n_features());
        ArrayD::from_shape_vec(IxDyn(&shape), self.precisions())
            .expect("a model's precisions are shaped as its covariances")
    }

    /// Every component's covariance as a dense d × d matrix, K × d × d whatever the covariance type
    /// (tied repeats its one matrix, diag and spherical fill the diagonal): the shape of
    /// linfa-clustering's `GaussianMixtureModel::covariances`.
    pub fn covariance_matrices_array(&self) -> Array3<f64> {
        let (k, d) = (self.n_components(), self.n_features());
        let dense: Vec<f64> = (0..k).flat_map(|c| self.covariance_matrix(c)).collect();
        Array3::from_shape_vec((k, d, d), dense).expect("K dense d x d matrices")
    }

    /// The labels of `x`'s rows, as [`GmmModel::predict`]: `x` in standard layout, else
    /// [`GmmError::NotStandardLayout`].
    pub fn predict_array<S, A>(&self, x: &ArrayBase<S, Ix2>) -> Result<Array1<usize>, GmmError>
    where
        S: Data<Elem = A>,
        for<'a> DataView<'a>: TryFrom<ArrayView2<'a, A>, Error = GmmError>,
    {
        let view = DataView::try_from(x.view())?;
        Ok(Array1::from(self.predict(&view)?))
    }

    /// The responsibilities of `x`'s rows, N × K, as [`GmmModel::predict_proba`]: `x` in standard
    /// layout, else [`GmmError::NotStandardLayout`].
    pub fn predict_proba_array<S, A>(&self, x: &ArrayBase<S, Ix2>) -> Result<Array2<f64>, GmmError>
    where
        S: Data<Elem = A>,
        for<'a> DataView<'a>: TryFrom<ArrayView2<'a, A>, Error = GmmError>,
    {
        let view = DataView::try_from(x.view())?;
        let p = self.predict_proba(&view)?;
        Ok(Array2::from_shape_vec((view.n_samples(), self.n_components()), p)
            .expect("predict_proba gives N x K values"))
    }

    /// A flat parameter array viewed in the covariance type's shape.
    fn shaped<'m>(&self, flat: &'m [f64]) -> ArrayViewD<'m, f64> {
        let shape = self
            .covariance_type()
            .covariance_shape(self.n_components(), self.n_features());
        ArrayViewD::from_shape(IxDyn(&shape), flat).expect("a model's covariance arrays have the type's shape")
    }
}
