//! Feature `ndarray`: a DataView borrows a standard-layout array's rows (and refuses any other
//! layout, naming it), and a model's parameter arrays hold exactly the flat accessors' values in
//! scikit-learn's shapes. CPU fits only: nothing here needs a GPU.

mod common;

use common::blobs;
use gmm_gpu::{BackendKind, CovarianceType, DataView, GmmError, GmmModel, GmmParams, Samples};
use ndarray::{Array2, ArrayView2, Axis, ShapeBuilder, s};

/// 300 samples of three blobs in 3-D, as an array.
fn data() -> Array2<f64> {
    let x = blobs(300, &[0.0, 0.0, 0.0, 6.0, 1.0, -2.0, -4.0, 5.0, 3.0], 3, 1.0, 11);
    Array2::from_shape_vec((300, 3), x).unwrap()
}

fn fit(x: &Array2<f64>, covariance: CovarianceType) -> GmmModel {
    let params = GmmParams::builder(3)
        .covariance_type(covariance)
        .backend(BackendKind::Cpu)
        .build()
        .unwrap();
    params.fit(&DataView::try_from(x).unwrap()).unwrap()
}

/// The view borrows the array's own memory (the same address, no copy), in its precision.
#[test]
fn a_standard_layout_array_is_borrowed() {
    let x = data();
    let view = DataView::try_from(&x).unwrap();
    assert_eq!((view.n_samples(), view.n_features()), (300, 3));
    match view.samples() {
        Samples::F64(rows) => assert_eq!(rows.as_ptr(), x.as_ptr()),
        Samples::F32(_) => panic!("f64 data became f32"),
    }
    let x32 = x.mapv(|v| v as f32);
    // By view this time, and a row block (still one row-major run).
    let block = x32.slice(s![10..20, ..]);
    let view = DataView::try_from(block).unwrap();
    assert_eq!((view.n_samples(), view.n_features()), (10, 3));
    match view.samples() {
        Samples::F32(rows) => assert_eq!(rows.as_ptr(), x32.row(10).as_ptr()),
        Samples::F64(_) => panic!("f32 data became f64"),
    }
}

/// The view's checks are DataView's own: a NaN is refused with its row and column.
#[test]
fn an_array_view_is_checked_as_any_data_view() {
    let mut x = data();
    x[[7, 2]] = f64::NAN;
    match DataView::try_from(&x) {
        Err(GmmError::NonFiniteData { row: 7, column: 2, .. }) => {}
        other => panic!("expected NonFiniteData at (7, 2), got {other:?}"),
    }
}

/// A transposed view, a Fortran-order array, a column slice and a strided row step are each refused
/// with their shape and strides (in elements), and the message says what to do; the
/// `as_standard_layout` copy it suggests is then accepted.
#[test]
fn a_non_contiguous_array_is_refused_naming_its_layout() {
    let x = data();
    let fortran = Array2::from_shape_vec((300, 3).f(), x.t().iter().copied().collect()).unwrap();
    assert_eq!(fortran, x);
    // x's transpose copied into its own row-major memory (`to_owned` would keep x's layout).
    let xt = x.t().as_standard_layout().into_owned();
    let cases: [(&str, ArrayView2<f64>, [isize; 2]); 4] = [
        ("transposed", xt.t(), [1, 300]),
        ("Fortran order", fortran.view(), [1, 300]),
        ("a column slice", x.slice(s![.., 1..]), [3, 1]),
        ("every other row", x.slice(s![..;2, ..]), [6, 1]),
    ];
    for (what, view, strides) in cases {
        let (rows, cols) = view.dim();
        let e = DataView::try_from(view).expect_err(what);
        match &e {
            GmmError::NotStandardLayout {
                rows: r,
                cols: c,
                strides: st,
            } => assert_eq!((*r, *c, *st), (rows, cols, strides), "{what}"),
            other => panic!("{what}: expected NotStandardLayout, got {other:?}"),
        }
        assert!(e.to_string().contains("as_standard_layout()"), "{what}: {e}");
        let copy = view.as_standard_layout();
        let ok = DataView::try_from(copy.view()).unwrap();
        assert_eq!((ok.n_samples(), ok.n_features()), (rows, cols), "{what}");
    }
}

/// Every parameter array holds the flat accessor's values in the covariance type's shape: the
/// same numbers, in row-major order (exact equality: both read the same memory).
#[test]
fn model_arrays_are_the_flat_parameters_in_their_shapes() {
    let x = data();
    for covariance in CovarianceType::ALL {
        let m = fit(&x, covariance);
        let (k, d) = (m.n_components(), m.n_features());
        assert_eq!(m.weights_array().to_vec(), m.weights(), "{covariance}");
        let means = m.means_array();
        assert_eq!(means.dim(), (k, d), "{covariance}");
        for c in 0..k {
            assert_eq!(means.row(c).to_vec(), m.mean(c), "{covariance} mean {c}");
        }
        let shape = covariance.covariance_shape(k, d);
        for (name, array, flat) in [
            (
                "covariances",
                m.covariances_array().to_owned(),
                m.covariances().to_vec(),
            ),
            (
                "precisions_cholesky",
                m.precisions_cholesky_array().to_owned(),
                m.precisions_cholesky().to_vec(),
            ),
            ("precisions", m.precisions_array(), m.precisions()),
        ] {
            assert_eq!(array.shape(), shape.as_slice(), "{covariance} {name}");
            // Iteration is in logical (row-major) order whatever the memory layout.
            assert_eq!(array.iter().copied().collect::<Vec<_>>(), flat, "{covariance} {name}");
        }
        let dense = m.covariance_matrices_array();
        assert_eq!(dense.dim(), (k, d, d), "{covariance}");
        for c in 0..k {
            let got: Vec<f64> = dense.index_axis(Axis(0), c).iter().copied().collect();
            assert_eq!(got, m.covariance_matrix(c), "{covariance} dense covariance {c}");
        }
    }
}

/// Predicting from an array is predicting from its DataView; a transposed array is refused, not
/// copied; a model of other features is the library's FeatureMismatch.
#[test]
fn predictions_from_arrays_are_the_library_s() {
    let x = data();
    let m = fit(&x, CovarianceType::Full);
    let view = DataView::try_from(&x).unwrap();
    assert_eq!(m.predict_array(&x).unwrap().to_vec(), m.predict(&view).unwrap());
    let p = m.predict_proba_array(&x).unwrap();
    assert_eq!(p.dim(), (300, 3));
    assert_eq!(p.iter().copied().collect::<Vec<_>>(), m.predict_proba(&view).unwrap());
    let x32 = x.mapv(|v| v as f32);
    let view32 = DataView::try_from(&x32).unwrap();
    assert_eq!(m.predict_array(&x32).unwrap().to_vec(), m.predict(&view32).unwrap());
    let xt = x.t().as_standard_layout().into_owned();
    assert!(matches!(
        m.predict_array(&xt.t()),
        Err(GmmError::NotStandardLayout { .. })
    ));
    assert!(matches!(
        m.predict_proba_array(&x.slice(s![.., ..2])),
        Err(GmmError::NotStandardLayout { .. })
    ));
    let two = x.slice(s![.., ..2]).to_owned();
    assert!(matches!(
        m.predict_array(&two),
        Err(GmmError::FeatureMismatch {
            expected: 3,
            got: 2,
            ..
        })
    ));
}
