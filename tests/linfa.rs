//! Feature `linfa`: GmmParams (and its builder) fit a linfa dataset through linfa's `Fit`, and the
//! model labels records through linfa's `Predict`, as the library's own calls do; on linfa's iris
//! the fit agrees with linfa-clustering's `GaussianMixtureModel`. CPU fits only: no GPU needed.

mod common;

use gmm_gpu::{BackendKind, CovarianceType, DataView, GmmError, GmmModel, GmmParams, GmmParamsBuilder};
use linfa::DatasetBase;
use linfa::prelude::*;
use linfa_clustering::{GaussianMixtureModel, GmmCovarType};
use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, Axis, s};

/// Our parameters for K components on the CPU (f64), with linfa-clustering's defaults where the
/// two share a meaning: tol and reg_covar 1e-6 and a long max_iter, so both run to convergence.
fn builder(k: usize) -> GmmParamsBuilder {
    GmmParams::builder(k)
        .covariance_type(CovarianceType::Full)
        .tol(1e-6)
        .reg_covar(1e-6)
        .max_iter(1000)
        .backend(BackendKind::Cpu)
}

/// The row-major view of an array the library fits directly.
fn view(x: &Array2<f64>) -> DataView<'_> {
    DataView::try_from(x).unwrap()
}

/// A fit through linfa's `Fit` is the library's own fit of the same rows: the same code on the same
/// numbers, so the same model to the bit. Through the checked parameters and through the builder
/// (linfa's unchecked hyperparameters), on owned records and on a view.
#[test]
fn a_linfa_fit_is_the_library_fit() {
    let iris = linfa_datasets::iris();
    let params = builder(3).build().unwrap();
    let ours = params.fit(&view(iris.records())).unwrap();
    let through_params: GmmModel = Fit::fit(&params, &iris).unwrap();
    let through_builder = builder(3).fit(&iris).unwrap();
    let records_view = DatasetBase::from(iris.records().view());
    let through_view = builder(3).fit(&records_view).unwrap();
    for (how, m) in [
        ("GmmParams", &through_params),
        ("the builder", &through_builder),
        ("a view", &through_view),
    ] {
        assert_eq!(m.weights(), ours.weights(), "{how}");
        assert_eq!(m.means(), ours.means(), "{how}");
        assert_eq!(m.covariances(), ours.covariances(), "{how}");
        assert_eq!(m.n_iter(), ours.n_iter(), "{how}");
    }
}

/// Records in another layout (a Fortran-order copy) are copied into rows, not refused: the same
/// model as from the row-major records. f32 records fit as the library fits f32 rows.
#[test]
fn records_of_any_layout_and_f32_records_fit() {
    let iris = linfa_datasets::iris();
    let x = iris.records();
    let fortran = x.t().as_standard_layout().into_owned().reversed_axes();
    assert!(!fortran.is_standard_layout());
    let from_fortran = builder(3).fit(&DatasetBase::from(fortran)).unwrap();
    let ours = builder(3).build().unwrap().fit(&view(x)).unwrap();
    assert_eq!(from_fortran.means(), ours.means());
    assert_eq!(from_fortran.covariances(), ours.covariances());

    let x32 = x.mapv(|v| v as f32);
    let through_linfa = builder(3).fit(&DatasetBase::from(x32.clone())).unwrap();
    let direct = builder(3)
        .build()
        .unwrap()
        .fit(&DataView::try_from(&x32).unwrap())
        .unwrap();
    assert_eq!(through_linfa.means(), direct.means());
    assert_eq!(through_linfa.covariances(), direct.covariances());
}

/// A dataset's weights are the fit's sample weights: the same model as `fit_weighted`, and not the
/// unweighted one.
#[test]
fn dataset_weights_are_sample_weights() {
    let iris = linfa_datasets::iris();
    // Setosa (the first 50 rows) weighs 3, the rest 1: exact in f32 and f64.
    let w: Vec<f32> = (0..150).map(|i| if i < 50 { 3.0 } else { 1.0 }).collect();
    let weighted = iris.clone().with_weights(Array1::from(w.clone()));
    let through_linfa = builder(3).fit(&weighted).unwrap();
    let w64: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let direct = builder(3)
        .build()
        .unwrap()
        .fit_weighted(&view(iris.records()), &w64)
        .unwrap();
    assert_eq!(through_linfa.weights(), direct.weights());
    assert_eq!(through_linfa.means(), direct.means());
    let unweighted = builder(3).fit(&iris).unwrap();
    assert_ne!(through_linfa.weights(), unweighted.weights());
}

/// linfa's `Predict` gives the library's labels, for records, a dataset and f32 records; a
/// parameter the builder rejects is the library's typed error through `Fit`.
#[test]
fn linfa_predictions_are_the_library_labels() {
    let iris = linfa_datasets::iris();
    let model = builder(3).fit(&iris).unwrap();
    let expected = model.predict(&view(iris.records())).unwrap();
    let labels: Array1<usize> = Predict::predict(&model, iris.records());
    assert_eq!(labels.to_vec(), expected);
    let labelled: DatasetBase<_, Array1<usize>> = Predict::predict(&model, iris.clone());
    assert_eq!(labelled.targets().to_vec(), expected);
    let x32 = iris.records().mapv(|v| v as f32);
    let labels32: Array1<usize> = Predict::predict(&model, &x32);
    assert_eq!(
        labels32.to_vec(),
        model.predict(&DataView::try_from(&x32).unwrap()).unwrap()
    );
    let mut inplace = Array1::zeros(150);
    model.predict_inplace(iris.records(), &mut inplace);
    assert_eq!(inplace.to_vec(), expected);

    match GmmParams::builder(3).tol(-1.0).fit(&iris) {
        Err(GmmError::InvalidTol { value }) => assert_eq!(value, -1.0),
        other => panic!("expected InvalidTol, got {other:?}"),
    }
}

/// Records the model rejects (two of its four features) cannot be an error through linfa's
/// infallible trait: every label is usize::MAX, which indexes no component, where the ndarray
/// call returns the error.
#[test]
fn rejected_records_label_nothing() {
    let iris = linfa_datasets::iris();
    let model = builder(3).fit(&iris).unwrap();
    let two = iris.records().slice(s![.., ..2]).to_owned();
    let labels: Array1<usize> = Predict::predict(&model, &two);
    assert_eq!(labels.len(), 150);
    assert!(labels.iter().all(|&l| l == usize::MAX), "{labels}");
    assert!(matches!(
        model.predict_array(&two),
        Err(GmmError::FeatureMismatch {
            expected: 4,
            got: 2,
            ..
        })
    ));
}

/// log N(x | μ, Σ) for each row, from a Cholesky factor of Σ computed here (independent of both
/// libraries' own scoring): −½(d·ln 2π + ln|Σ| + ‖L⁻¹(x − μ)‖²).
fn log_normal(x: ArrayView2<f64>, mean: ArrayView1<f64>, cov: ArrayView2<f64>) -> Vec<f64> {
    let d = mean.len();
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let mut v = cov[[i, j]];
            for p in 0..j {
                v -= l[i * d + p] * l[j * d + p];
            }
            l[i * d + j] = if i == j { v.sqrt() } else { v / l[j * d + j] };
        }
    }
    let log_det: f64 = (0..d).map(|i| 2.0 * l[i * d + i].ln()).sum();
    x.rows()
        .into_iter()
        .map(|row| {
            let mut z = vec![0.0; d];
            for i in 0..d {
                let mut v = row[i] - mean[i];
                for p in 0..i {
                    v -= l[i * d + p] * z[p];
                }
                z[i] = v / l[i * d + i];
            }
            let maha: f64 = z.iter().map(|v| v * v).sum();
            -0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + log_det + maha)
        })
        .collect()
}

/// The mean log-likelihood of `x` under a mixture with dense K × d × d covariances.
fn mean_log_likelihood(x: &Array2<f64>, weights: &Array1<f64>, means: &Array2<f64>, covs: &Array3<f64>) -> f64 {
    let per: Vec<Vec<f64>> = (0..weights.len())
        .map(|c| {
            let lw = weights[c].ln();
            log_normal(x.view(), means.row(c), covs.index_axis(Axis(0), c))
                .into_iter()
                .map(|v| v + lw)
                .collect()
        })
        .collect();
    let n = x.nrows();
    (0..n)
        .map(|i| {
            let top = per.iter().map(|p| p[i]).fold(f64::NEG_INFINITY, f64::max);
            top + per.iter().map(|p| (p[i] - top).exp()).sum::<f64>().ln()
        })
        .sum::<f64>()
        / n as f64
}

/// On linfa's iris (K = 3, full covariances, reg_covar 1e-6, both run until the mean
/// log-likelihood changes by less than 1e-10 an iteration), our fit through linfa's traits and
/// linfa-clustering's own, from different k-means starts (their components come out in another
/// order), reach the same mixture: the same labels and parameters up to that permutation, and the
/// same mean log-likelihood as scored here, independently of both.
#[test]
fn agrees_with_linfa_clustering_on_iris() {
    const TOL: f64 = 1e-10;
    let iris = linfa_datasets::iris();
    let x = iris.records().clone();
    let ours = builder(3).tol(TOL).fit(&iris).unwrap();
    let theirs = GaussianMixtureModel::params(3)
        .covariance_type(GmmCovarType::Full)
        .tolerance(TOL)
        .reg_covariance(1e-6)
        .max_n_iterations(1000)
        .fit(&iris)
        .expect("linfa-clustering fits iris");
    let our_ll = mean_log_likelihood(
        &x,
        &ours.weights_array().to_owned(),
        &ours.means_array().to_owned(),
        &ours.covariance_matrices_array(),
    );
    let their_ll = mean_log_likelihood(&x, theirs.weights(), theirs.means(), theirs.covariances());
    // The scorer here against the library's own score, both f64: they differ by rounding alone
    // (150 row terms of magnitude below 5 summed in different orders, a few ulps each: at most
    // ~1e-13; seen 1e-15), which any error in either (a missing log-determinant, a transposed
    // factor) would exceed by orders of magnitude.
    let lib_ll = ours.score(&view(&x)).unwrap();
    assert!((our_ll - lib_ll).abs() <= 1e-13, "{our_ll} vs the library's {lib_ll}");
    // Each fit stops once an iteration gains less than TOL, approaching the same optimum from
    // below at EM's linear rate r, so each is short of it by about TOL·r/(1 − r): about TOL for the
    // rates seen here (seen 2.3e-12 apart). Neither is better than the other by more than TOL.
    assert!(
        (our_ll - their_ll).abs() <= 1e-10,
        "ours {our_ll}, linfa-clustering {their_ll}"
    );

    let perm = permutation(ours.means_array(), theirs.means().view());
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 1, 2], "one of ours for each of theirs: {perm:?}");
    let weights: Vec<f64> = perm.iter().map(|&c| ours.weights()[c]).collect();
    let means: Vec<f64> = perm.iter().flat_map(|&c| ours.mean(c).to_vec()).collect();
    let covs: Vec<f64> = perm.iter().flat_map(|&c| ours.covariance_matrix(c)).collect();
    // The two stop at different points of the approach to the optimum, so their parameters differ
    // by what the last iterations still move, which shrinks with the stopping tolerance: seen
    // 4e-5 (covariances) at tol 1e-6, 4e-6 at 1e-8, 2.2e-7 at 1e-10, 2.3e-9 at 1e-12, in each
    // array's largest relative difference (entries below 1e-3 cm², off-diagonals, measured
    // against 1e-3). The bounds are ~5 times what is seen at 1e-10, per array; another optimum,
    // or a component matched to the wrong one, is off by 1e-2 or more.
    let floor = 1e-3;
    let bounds = [("weights", 3e-7), ("means", 6e-8), ("covariances", 1e-6)];
    let arrays = [
        (weights, theirs.weights().to_vec()),
        (means, theirs.means().iter().copied().collect::<Vec<_>>()),
        (covs, theirs.covariances().iter().copied().collect::<Vec<_>>()),
    ];
    for ((name, bound), (got, want)) in bounds.into_iter().zip(arrays) {
        let rel = common::max_rel(&got, &want, floor);
        assert!(rel <= bound, "{name}: largest relative difference {rel:e} > {bound:e}");
    }

    let ours_labels: Array1<usize> = Predict::predict(&ours, &x);
    let their_labels: Array1<usize> = theirs.predict(&x);
    let mapped: Vec<usize> = ours_labels
        .iter()
        .map(|&l| perm.iter().position(|&c| c == l).unwrap())
        .collect();
    assert_eq!(mapped, their_labels.to_vec());
}

/// For each of `theirs`' components, the one of `ours` whose mean is nearest (the permutation of
/// K = 3 components with the least total squared distance).
fn permutation(ours: ArrayView2<f64>, theirs: ArrayView2<f64>) -> Vec<usize> {
    let dist = |a: usize, b: usize| -> f64 { (&ours.row(a) - &theirs.row(b)).mapv(|v| v * v).sum() };
    let perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let best = perms
        .iter()
        .min_by(|p, q| {
            let cost = |p: &[usize; 3]| (0..3).map(|b| dist(p[b], b)).sum::<f64>();
            cost(p).total_cmp(&cost(q))
        })
        .unwrap();
    best.to_vec()
}

/// README's "From ndarray and linfa" example, as written there.
#[test]
fn the_readme_example_runs() -> Result<(), GmmError> {
    let iris = linfa_datasets::iris();
    // The builder is linfa's unchecked hyperparameters: `fit` checks them first.
    let model: GmmModel = GmmParams::builder(3)
        .covariance_type(CovarianceType::Full)
        .backend(BackendKind::Cpu)
        .fit(&iris)?;
    // GmmModel has an inherent `predict` (on a DataView), so call linfa's by its trait.
    let labels: ndarray::Array1<usize> = Predict::predict(&model, iris.records());
    let proba = model.predict_proba_array(iris.records())?; // 150 x 3, a Result where linfa cannot say why
    println!("{} {labels} {proba}", model.means_array());
    assert_eq!((labels.len(), proba.dim()), (150, (150, 3)));
    Ok(())
}

/// linfa-clustering's own example code, written once and compiled against its
/// `GaussianMixtureModel` and against ours: only the `use` line differs. Both fit iris to the same
/// mixture (as `agrees_with_linfa_clustering_on_iris`), and ours is the library's fit with the seed
/// drawn from the same generator.
macro_rules! linfa_clustering_example {
    () => {
        pub fn run() -> (Array1<f64>, Array2<f64>, Array3<f64>, Array1<usize>, Array2<f64>) {
            let iris = linfa_datasets::iris();
            let rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(42);
            let gmm = GaussianMixtureModel::params(3)
                .covariance_type(GmmCovarType::Full)
                .n_runs(1)
                .tolerance(1e-10)
                .reg_covariance(1e-6)
                .max_n_iterations(1000)
                .with_rng(rng)
                .fit(&iris)
                .expect("GMM fitting");
            let labels = gmm.predict(iris.records());
            let proba = gmm.predict_proba(iris.records());
            (
                gmm.weights().clone(),
                gmm.centroids().clone(),
                gmm.covariances().clone(),
                labels,
                proba,
            )
        }
    };
}

mod theirs {
    use linfa::prelude::*;
    use linfa_clustering::{GaussianMixtureModel, GmmCovarType};
    use ndarray::{Array1, Array2, Array3};
    use rand_xoshiro::rand_core::SeedableRng;
    linfa_clustering_example!();
}

mod ours {
    use gmm_gpu::linfa::{GaussianMixtureModel, GmmCovarType};
    use linfa::prelude::*;
    use ndarray::{Array1, Array2, Array3};
    use rand_xoshiro::rand_core::SeedableRng;
    linfa_clustering_example!();
}

#[test]
fn linfa_clustering_code_runs_on_ours_with_one_import_changed() {
    let (w, means, covs, labels, proba) = ours::run();
    let (tw, tmeans, tcovs, tlabels, _) = theirs::run();
    // Ours is the library's fit, seeded by the generator's first u64.
    let seed = {
        use rand_xoshiro::rand_core::{RngCore, SeedableRng};
        rand_xoshiro::Xoshiro256Plus::seed_from_u64(42).next_u64()
    };
    let iris = linfa_datasets::iris();
    let lib = builder(3)
        .tol(1e-10)
        .max_iter(1000)
        .seed(seed)
        .build()
        .unwrap()
        .fit(&view(iris.records()))
        .unwrap();
    assert_eq!(w.to_vec(), lib.weights());
    assert_eq!(means.iter().copied().collect::<Vec<_>>(), lib.means());
    assert_eq!(covs, lib.covariance_matrices_array());
    assert_eq!(labels.to_vec(), lib.predict(&view(iris.records())).unwrap());
    assert_eq!(
        proba.iter().copied().collect::<Vec<_>>(),
        lib.predict_proba(&view(iris.records())).unwrap()
    );
    // The same mixture as linfa-clustering's, up to the order of the components (bounds as in
    // agrees_with_linfa_clustering_on_iris, at the same tolerance).
    let perm = permutation(means.view(), tmeans.view());
    let pick = |c: usize| perm[c];
    let rel = |a: Vec<f64>, b: Vec<f64>| common::max_rel(&a, &b, 1e-3);
    assert!(rel((0..3).map(|c| w[pick(c)]).collect(), tw.to_vec()) <= 3e-7);
    assert!(
        rel(
            (0..3).flat_map(|c| means.row(pick(c)).to_vec()).collect(),
            tmeans.iter().copied().collect()
        ) <= 6e-8
    );
    assert!(
        rel(
            (0..3)
                .flat_map(|c| covs.index_axis(Axis(0), pick(c)).iter().copied().collect::<Vec<_>>())
                .collect(),
            tcovs.iter().copied().collect()
        ) <= 1e-6
    );
    let mapped: Vec<usize> = labels
        .iter()
        .map(|&l| perm.iter().position(|&c| c == l).unwrap())
        .collect();
    assert_eq!(mapped, tlabels.to_vec());
}
