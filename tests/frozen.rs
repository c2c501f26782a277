//! Frozen parameters: what is frozen stays bitwise as given, the rest is the constrained
//! maximum-likelihood fit (weights of known components recover the truth; covariances around
//! frozen means are the scatter around them), freezing nothing is the ordinary fit, and every
//! backend, sample weights and ranks agree.

mod common;

use common::{assert_close, max_rel};
use gmm_gpu::{CovarianceType, DataView, GmmError, GmmParams, GmmParamsBuilder, Parameter};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const K: usize = 3;

/// 3000 draws of a known 2-D mixture: weights 0.2, 0.3, 0.5, means (0,0), (4,0), (0,4), and
/// diagonal spreads 1, 0.5², 0.8² per feature (as (σ_x, σ_y)); with the true labels.
fn truth() -> (Vec<f64>, Vec<usize>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let means = [[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]];
    let sd = [[1.0, 1.0], [0.5, 0.5], [0.8, 0.8]];
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for i in 0..3000 {
        let u = (i as f64 + 0.5) / 3000.0;
        let k = if u < 0.2 {
            0
        } else if u < 0.5 {
            1
        } else {
            2
        };
        for j in 0..2 {
            let z: f64 = StandardNormal.sample(&mut rng);
            x.push(means[k][j] + sd[k][j] * z);
        }
        labels.push(k);
    }
    (x, labels)
}

/// The true parameters as initial values, in the layout of `cov`, with precisions.
fn given(cov: CovarianceType) -> GmmParamsBuilder {
    let precisions = match cov {
        CovarianceType::Full => [1.0, 0.0, 0.0, 1.0, 4.0, 0.0, 0.0, 4.0, 1.5625, 0.0, 0.0, 1.5625].to_vec(),
        CovarianceType::Tied => vec![1.5, 0.0, 0.0, 1.5],
        CovarianceType::Diag => vec![1.0, 1.0, 4.0, 4.0, 1.5625, 1.5625],
        CovarianceType::Spherical => vec![1.0, 4.0, 1.5625],
    };
    GmmParams::builder(K)
        .covariance_type(cov)
        .weights_init(vec![0.4, 0.4, 0.2])
        .means_init(vec![0.5, 0.5, 3.5, 0.5, 0.5, 3.5])
        .precisions_init(precisions)
}

const SUBSETS: [&[Parameter]; 7] = [
    &[Parameter::Weights],
    &[Parameter::Means],
    &[Parameter::Covariances],
    &[Parameter::Weights, Parameter::Means],
    &[Parameter::Weights, Parameter::Covariances],
    &[Parameter::Means, Parameter::Covariances],
    &[Parameter::Weights, Parameter::Means, Parameter::Covariances],
];

/// Every subset, every covariance type: the frozen arrays are bitwise the initial ones, the
/// others move.
#[test]
fn frozen_parameters_stay_bitwise_as_given() {
    let (x, _) = truth();
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let start = given(cov).max_iter(0).build().unwrap().fit(&data).unwrap();
        for subset in SUBSETS {
            let m = given(cov)
                .freeze(subset)
                .max_iter(20)
                .build()
                .unwrap()
                .fit(&data)
                .unwrap();
            let is = |p| subset.contains(&p);
            for (p, got, was) in [
                (Parameter::Weights, m.weights(), start.weights()),
                (Parameter::Means, m.means(), start.means()),
                (Parameter::Covariances, m.covariances(), start.covariances()),
                (
                    Parameter::Covariances,
                    m.precisions_cholesky(),
                    start.precisions_cholesky(),
                ),
            ] {
                if is(p) {
                    assert_eq!(got, was, "{cov} {subset:?}: {p} moved");
                } else if subset.len() < 3 {
                    assert_ne!(got, was, "{cov} {subset:?}: {p} did not move");
                }
            }
        }
    }
}

/// Freezing nothing is bitwise the ordinary fit.
#[test]
fn freezing_nothing_is_the_ordinary_fit() {
    let (x, _) = truth();
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let a = given(cov).build().unwrap().fit(&data).unwrap();
        let b = given(cov).freeze(&[]).build().unwrap().fit(&data).unwrap();
        assert_eq!(a, b, "{cov}");
    }
}

/// Unmixing: with the components known (means and covariances frozen at the truth), the fitted
/// weights are the true ones. The draws hold exactly 600, 900 and 1500 samples of each, so only
/// the noise of their positions moves the estimate: 1e-3 seen, 5e-3 allowed.
#[test]
fn weights_of_known_components_recover_the_true_weights() {
    let (x, _) = truth();
    let data = DataView::from_f64(&x, 2).unwrap();
    let truth_means = vec![0.0, 0.0, 4.0, 0.0, 0.0, 4.0];
    let m = GmmParams::builder(K)
        .covariance_type(CovarianceType::Diag)
        .weights_init(vec![1.0 / 3.0; 3])
        .means_init(truth_means)
        .precisions_init(vec![1.0, 1.0, 4.0, 4.0, 1.5625, 1.5625])
        .freeze(&[Parameter::Means, Parameter::Covariances])
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    assert_close("weights", m.weights(), &[0.2, 0.3, 0.5], 0.0, 5e-3);
}

/// With frozen means, one iteration's covariances are the responsibility-weighted scatter around
/// those means (not around the new centroids), by the naive formula.
#[test]
fn covariances_around_frozen_means_are_the_scatter_around_them() {
    let (x, _) = truth();
    let data = DataView::from_f64(&x, 2).unwrap();
    let start = given(CovarianceType::Full)
        .max_iter(0)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    let r = start.predict_proba(&data).unwrap();
    let m = given(CovarianceType::Full)
        .freeze(&[Parameter::Means])
        .max_iter(1)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    let mu = start.means();
    let mut want = vec![0.0; K * 4];
    for c in 0..K {
        let nk: f64 = (0..3000).map(|i| r[i * K + c]).sum::<f64>() + 10.0 * f64::EPSILON;
        for ab in 0..4 {
            let (a, b) = (ab / 2, ab % 2);
            let s: f64 = (0..3000)
                .map(|i| r[i * K + c] * (x[i * 2 + a] - mu[c * 2 + a]) * (x[i * 2 + b] - mu[c * 2 + b]))
                .sum();
            want[c * 4 + ab] = s / nk + if a == b { 1e-6 } else { 0.0 };
        }
    }
    // Sums of 3000 terms in another order: 1e-12.
    assert_close("covariances", m.covariances(), &want, 1e-12, 1e-14);
}

/// Sample weights, the GPU and ranks keep what is frozen and agree on the rest.
#[test]
fn frozen_fits_agree_across_weights_and_backends() {
    let (x, _) = truth();
    let data = DataView::from_f64(&x, 2).unwrap();
    // Integer weights equal duplicated rows.
    let w: Vec<f64> = (0..3000).map(|i| (i % 3) as f64).collect();
    let dup: Vec<f64> = x.chunks(2).enumerate().flat_map(|(i, r)| r.repeat(i % 3)).collect();
    for cov in CovarianceType::ALL {
        let params = given(cov)
            .freeze(&[Parameter::Means])
            .tol(0.0)
            .max_iter(10)
            .build()
            .unwrap();
        let weighted = params.fit_weighted(&data, &w).unwrap();
        let duplicated = params.fit(&DataView::from_f64(&dup, 2).unwrap()).unwrap();
        assert_eq!(weighted.means(), duplicated.means(), "{cov}");
        // The same sums in another order: 1e-11.
        let e = max_rel(weighted.covariances(), duplicated.covariances(), 1.0);
        assert!(e <= 1e-11, "{cov}: {e:e}");
    }
    let Some(ctx) = common::gpu() else { return };
    for cov in CovarianceType::ALL {
        for subset in SUBSETS {
            let params = given(cov).freeze(subset).tol(0.0).max_iter(10).build().unwrap();
            let (cpu, gpu) = (params.fit(&data).unwrap(), params.fit_on(ctx, &data).unwrap());
            for p in subset {
                let (a, b) = match p {
                    Parameter::Weights => (gpu.weights(), cpu.weights()),
                    Parameter::Means => (gpu.means(), cpu.means()),
                    Parameter::Covariances => (gpu.covariances(), cpu.covariances()),
                };
                assert_eq!(a, b, "{cov} {subset:?}: the GPU moved {p}");
            }
            // f32 statistics (GpuPrecision::Auto) over 10 iterations: 1e-4.
            let e = max_rel(gpu.means(), cpu.means(), 1.0).max(max_rel(gpu.covariances(), cpu.covariances(), 1.0));
            assert!(e <= 1e-4, "{cov} {subset:?}: {e:e}");
        }
    }
}

#[test]
fn freezing_without_an_initial_value_is_a_typed_error() {
    for (p, init) in [
        (Parameter::Weights, "weights_init"),
        (Parameter::Means, "means_init"),
        (Parameter::Covariances, "precisions_init"),
    ] {
        let e = GmmParams::builder(2).freeze(&[p]).build().unwrap_err();
        assert!(
            matches!(e, GmmError::FrozenWithoutInitial { parameter, init: i } if parameter == p && i == init),
            "{e}"
        );
        assert!(e.to_string().contains(init), "{e}");
    }
    let e = GmmParams::builder(2)
        .weights_init(vec![0.5, 0.5])
        .freeze(&[Parameter::Weights])
        .prior(gmm_gpu::Prior::mclust())
        .build()
        .unwrap_err();
    assert!(matches!(e, GmmError::FrozenWithPrior), "{e}");
}
