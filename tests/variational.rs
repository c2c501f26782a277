//! Variational Bayesian fits against scikit-learn's `BayesianGaussianMixture`
//! (tests/fixtures/sklearn_bayesian.json, written by tests/fixtures/make_sklearn_bayesian.py):
//! from the same responsibilities, after 1, 5 and 30 iterations, every fitted attribute, the lower
//! bound and the variational predictions, for every covariance type and both weight priors; the
//! GPU against the same fixtures; and the process prior emptying the components it does not need.

mod common;

use common::{flat, max_rel};
use gmm_gpu::{CovarianceType, DataView, GmmModel, GmmParams, GpuPrecision, Variational, WeightPrior};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/sklearn_bayesian.json")).unwrap()
}

struct Case {
    name: String,
    cov: CovarianceType,
    prior: WeightPrior,
    k: usize,
    value: Value,
}

fn cases() -> (Vec<f64>, Vec<Case>) {
    let f = fixture();
    let x = flat(&f["X"]);
    let cases = f["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let cov: CovarianceType = c["covariance_type"].as_str().unwrap().parse().unwrap();
            let prior: WeightPrior = c["weight_concentration_prior_type"].as_str().unwrap().parse().unwrap();
            Case {
                name: format!("{cov} {}", prior.as_str()),
                cov,
                prior,
                k: c["n_components"].as_u64().unwrap() as usize,
                value: c.clone(),
            }
        })
        .collect();
    (x, cases)
}

impl Case {
    fn params(&self, iters: usize) -> gmm_gpu::GmmParamsBuilder {
        GmmParams::builder(self.k)
            .covariance_type(self.cov)
            .tol(0.0)
            .max_iter(iters)
            .init_responsibilities(flat(&self.value["resp"]))
            .variational(Variational::dirichlet_process().weight_prior(self.prior))
    }

    /// The worst relative difference from scikit-learn's run after `iters` iterations, over every
    /// attribute, the lower bound and the predictions (entries near zero against a floor of the
    /// array's largest magnitude), with what it was.
    fn worst(&self, m: &GmmModel, data: &DataView, iters: usize) -> (f64, String) {
        let run = self.value["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["iterations"].as_u64() == Some(iters as u64))
            .unwrap();
        let (a, b) = m.weight_concentration().unwrap();
        let concentration: Vec<f64> = a.iter().chain(b.unwrap_or(&[])).copied().collect();
        let checks = [
            (
                "weight_concentration",
                concentration,
                flat(&run["weight_concentration"]),
            ),
            (
                "mean_precision",
                m.mean_precision().unwrap().to_vec(),
                flat(&run["mean_precision"]),
            ),
            ("means", m.means().to_vec(), flat(&run["means"])),
            (
                "degrees_of_freedom",
                m.degrees_of_freedom().unwrap().to_vec(),
                flat(&run["degrees_of_freedom"]),
            ),
            ("covariances", m.covariances().to_vec(), flat(&run["covariances"])),
            (
                "precisions_cholesky",
                m.precisions_cholesky().to_vec(),
                flat(&run["precisions_cholesky"]),
            ),
            ("weights", m.weights().to_vec(), flat(&run["weights"])),
            (
                "lower_bound",
                vec![m.lower_bound()],
                vec![run["lower_bound"].as_f64().unwrap()],
            ),
            (
                "score_samples",
                m.score_samples(data).unwrap(),
                flat(&run["score_samples"]),
            ),
            (
                "predict_proba",
                m.predict_proba(data).unwrap(),
                flat(&run["predict_proba"]),
            ),
        ];
        checks
            .iter()
            .map(|(what, got, want)| {
                let floor = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                (
                    max_rel(got, want, floor),
                    format!("{} after {iters}: {what}", self.name),
                )
            })
            .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a })
    }
}

/// The tolerance against scikit-learn (the issue asks for 1e-8): the same f64 formulas in another
/// order (we centre the moments and form the entropy from the statistics), amplified over 30
/// iterations. The worst seen is 1.7e-13 (full dirichlet_distribution after 30, predict_proba), so
/// 1e-12 is the tightest round number that holds; the test prints the worst per run.
const RTOL: f64 = 1e-12;

#[test]
fn cpu_equals_scikit_learn_from_the_same_responsibilities() {
    let (x, cases) = cases();
    let data = DataView::from_f64(&x, 3).unwrap();
    let mut report = Vec::new();
    for case in &cases {
        for iters in [1, 5, 30] {
            let m = case.params(iters).build().unwrap().fit(&data).unwrap();
            assert_eq!(m.n_iter(), iters, "{}", case.name);
            let (worst, what) = case.worst(&m, &data, iters);
            report.push(format!("{what}: {worst:.1e}"));
            assert!(worst <= RTOL, "{what}: {worst:.3e} > {RTOL:e}\n{}", report.join("\n"));
        }
    }
    println!("{}", report.join("\n"));
}

/// The GPU in every arithmetic, against the same fixtures after 30 iterations (the issue asks for
/// 1e-3): the worst seen on lavapipe is 9.7e-6 (tied, Fast: the means), so 1e-4 holds with room
/// for other hardware's rounding; the test prints the worst per case.
#[test]
fn gpu_equals_scikit_learn_from_the_same_responsibilities() {
    let Some(ctx) = common::gpu() else { return };
    let (x, cases) = cases();
    let data = DataView::from_f64(&x, 3).unwrap();
    let mut report = Vec::new();
    for precision in [GpuPrecision::Fast, GpuPrecision::Exact, GpuPrecision::Auto] {
        for case in &cases {
            let m = case
                .params(30)
                .gpu_precision(precision)
                .build()
                .unwrap()
                .fit_on(ctx, &data)
                .unwrap();
            let (worst, what) = case.worst(&m, &data, 30);
            report.push(format!("{precision:?} {what}: {worst:.1e}"));
            assert!(
                worst <= 1e-4,
                "{precision:?} {what}: {worst:.3e}\n{}",
                report.join("\n")
            );
        }
    }
    println!("{}", report.join("\n"));
}

/// A variational model file carries scikit-learn's attributes (the process's concentration as
/// `[[a…], [b…]]`, one ν for tied) and its priors, and reads back exactly: the same
/// predictions, through the same E-step constants.
#[test]
fn a_variational_model_file_round_trips() {
    let (x, cases) = cases();
    let data = DataView::from_f64(&x, 3).unwrap();
    for case in &cases {
        let m = case.params(5).build().unwrap().fit(&data).unwrap();
        let text = m.to_json();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["weight_concentration_prior_type"],
            case.prior.as_str(),
            "{}",
            case.name
        );
        let (a, b) = m.weight_concentration().unwrap();
        match case.prior {
            WeightPrior::DirichletProcess => {
                assert_eq!(flat(&v["weight_concentration"][0]), a, "{}", case.name);
                assert_eq!(flat(&v["weight_concentration"][1]), b.unwrap(), "{}", case.name);
            }
            WeightPrior::DirichletDistribution => assert_eq!(flat(&v["weight_concentration"]), a),
        }
        assert_eq!(
            v["degrees_of_freedom"].is_number(),
            case.cov == CovarianceType::Tied,
            "{}",
            case.name
        );
        let p = &case.value["priors"];
        // numpy's mean and ours sum in another order: 1e-14.
        let mean_prior = flat(&v["variational_prior"]["mean_prior"]);
        assert!(
            max_rel(&mean_prior, &flat(&p["mean_prior"]), 1.0) <= 1e-14,
            "{}",
            case.name
        );
        let psi = flat(&v["variational_prior"]["covariance_prior"]);
        assert!(
            max_rel(&psi, &flat(&p["covariance_prior"]), 1.0) <= 1e-14,
            "{}",
            case.name
        );
        let back = GmmModel::from_json(&text).unwrap();
        assert_eq!(back, m, "{}", case.name);
        assert_eq!(back.score_samples(&data).unwrap(), m.score_samples(&data).unwrap());
    }
}

/// A variational model rebuilt from its parameters and its posterior (as the Python package
/// rebuilds one from scikit-learn's attributes) predicts exactly as the fitted one, and a warm
/// start from it continues the fit: 5 iterations, then 25 from the rebuilt model, are scikit-learn's
/// 30. Posteriors of the wrong shape or values are refused.
#[test]
fn a_variational_model_rebuilt_from_its_parameters_predicts_and_warm_starts_as_fitted() {
    let (x, cases) = cases();
    let data = DataView::from_f64(&x, 3).unwrap();
    let rebuild = |m: &GmmModel| {
        let (a, b) = m.weight_concentration().unwrap();
        GmmModel::from_parameters(
            m.covariance_type(),
            m.n_features(),
            m.weights().to_vec(),
            m.means().to_vec(),
            m.covariances().to_vec(),
            m.precisions_cholesky().to_vec(),
            m.lower_bound(),
        )
        .unwrap()
        .with_variational_posterior(
            m.weight_prior().unwrap(),
            (a.to_vec(), b.map(<[f64]>::to_vec)),
            m.mean_precision().unwrap().to_vec(),
            m.degrees_of_freedom().unwrap().to_vec(),
        )
    };
    for case in &cases {
        let m = case.params(5).build().unwrap().fit(&data).unwrap();
        let back = rebuild(&m).unwrap();
        assert_eq!(back.weights(), m.weights(), "{}", case.name);
        assert_eq!(
            back.score_samples(&data).unwrap(),
            m.score_samples(&data).unwrap(),
            "{}",
            case.name
        );
        assert_eq!(
            back.predict_proba(&data).unwrap(),
            m.predict_proba(&data).unwrap(),
            "{}",
            case.name
        );

        let mut warm = gmm_gpu::GaussianMixture::new(case.params(25).warm_start(true).build().unwrap());
        warm.set_model(Some(back));
        let continued = warm.fit(&data).unwrap();
        let (worst, what) = case.worst(continued, &data, 30);
        assert!(worst <= RTOL, "{what}: {worst:e}");

        let (a, b) = m.weight_concentration().unwrap();
        let (beta, nu) = (
            m.mean_precision().unwrap().to_vec(),
            m.degrees_of_freedom().unwrap().to_vec(),
        );
        let plain = || {
            GmmModel::from_parameters(
                m.covariance_type(),
                3,
                m.weights().to_vec(),
                m.means().to_vec(),
                m.covariances().to_vec(),
                m.precisions_cholesky().to_vec(),
                f64::NEG_INFINITY,
            )
            .unwrap()
        };
        let missing_b = match case.prior {
            WeightPrior::DirichletProcess => (a.to_vec(), None),
            WeightPrior::DirichletDistribution => (a.to_vec(), Some(a.to_vec())),
        };
        let err = plain().with_variational_posterior(case.prior, missing_b, beta.clone(), nu.clone());
        assert!(matches!(
            err,
            Err(gmm_gpu::GmmError::ModelShape {
                field: "weight_concentration",
                ..
            })
        ));
        let mut negative = beta.clone();
        negative[1] = -1.0;
        let err =
            plain().with_variational_posterior(case.prior, (a.to_vec(), b.map(<[f64]>::to_vec)), negative, nu.clone());
        assert!(matches!(
            err,
            Err(gmm_gpu::GmmError::ModelValue {
                field: "mean_precision",
                ..
            })
        ));
        let wrong_nu = if case.cov == CovarianceType::Tied {
            vec![nu[0]; 4]
        } else {
            vec![nu[0]]
        };
        let err = plain().with_variational_posterior(case.prior, (a.to_vec(), b.map(<[f64]>::to_vec)), beta, wrong_nu);
        assert!(
            matches!(
                err,
                Err(gmm_gpu::GmmError::ModelShape {
                    field: "degrees_of_freedom",
                    ..
                })
            ),
            "{}",
            case.name
        );
    }
}

/// With three clusters and K = 12 under the process prior, the components the data do not need
/// are emptied: started from the clusters' labels in the first three components (the other nine
/// empty at the stick's end), their weights fall below 1e-4 and stay there, on the CPU and the
/// GPU. (Where an empty component sits before a used one, its expected stick share keeps a
/// weight near 1/N, in scikit-learn as here: the fixtures above cover that order.)
#[test]
fn the_process_prior_empties_the_components_it_does_not_need() {
    let x = common::blobs(300, &[0.0, 0.0, 6.0, 0.0, 0.0, 6.0], 2, 1.0, 5);
    let data = DataView::from_f64(&x, 2).unwrap();
    // common::blobs cycles through the centres, sample by sample.
    let labels: Vec<usize> = (0..x.len() / 2).map(|i| i % 3).collect();
    let params = GmmParams::builder(12)
        // α0 = 0.01, a process that favours few components (scikit-learn's example's choice):
        // the first empty one keeps about α0/N of the stick.
        .variational(Variational::dirichlet_process().weight_concentration_prior(0.01))
        .init_labels(labels)
        .max_iter(500)
        .build()
        .unwrap();
    let mut fits = vec![("cpu", params.fit(&data).unwrap())];
    if let Some(ctx) = common::gpu() {
        fits.push(("gpu", params.fit_on(ctx, &data).unwrap()));
    }
    for (name, m) in fits {
        assert!(m.converged(), "{name}");
        let used: Vec<usize> = (0..12).filter(|&k| m.weights()[k] >= 1e-4).collect();
        assert_eq!(used, [0, 1, 2], "{name}: weights {:?}", m.weights());
    }
}

/// Blobs in 2-D with a labelling for a start (three clusters, K = 4).
fn blob_start() -> (Vec<f64>, Vec<usize>) {
    let x = common::blobs(240, &[0.0, 0.0, 5.0, 1.0, -1.0, 5.0], 2, 1.0, 9);
    let labels = (0..240).map(|i| if i % 7 == 0 { 3 } else { i % 3 }).collect();
    (x, labels)
}

/// Integer sample weights give the variational fit (priors included) that duplicated rows give.
#[test]
fn integer_sample_weights_equal_duplicated_rows() {
    let (x, labels) = blob_start();
    let w: Vec<f64> = (0..240).map(|i| (i % 3) as f64).collect();
    let dup: Vec<f64> = x.chunks(2).enumerate().flat_map(|(i, r)| r.repeat(i % 3)).collect();
    let dup_labels: Vec<usize> = labels.iter().enumerate().flat_map(|(i, &l)| vec![l; i % 3]).collect();
    for cov in CovarianceType::ALL {
        for prior in [WeightPrior::DirichletProcess, WeightPrior::DirichletDistribution] {
            let params = |labels: Vec<usize>| {
                GmmParams::builder(4)
                    .covariance_type(cov)
                    .tol(0.0)
                    .max_iter(10)
                    .init_labels(labels)
                    .variational(Variational::dirichlet_process().weight_prior(prior))
                    .build()
                    .unwrap()
            };
            let weighted = params(labels.clone())
                .fit_weighted(&DataView::from_f64(&x, 2).unwrap(), &w)
                .unwrap();
            let duplicated = params(dup_labels.clone())
                .fit(&DataView::from_f64(&dup, 2).unwrap())
                .unwrap();
            // The same sums in another order, amplified by 10 iterations: 1e-11.
            for (what, a, b) in [
                ("means", weighted.means(), duplicated.means()),
                ("covariances", weighted.covariances(), duplicated.covariances()),
                (
                    "mean precision",
                    weighted.mean_precision().unwrap(),
                    duplicated.mean_precision().unwrap(),
                ),
                ("bounds", weighted.lower_bounds(), duplicated.lower_bounds()),
            ] {
                let e = max_rel(a, b, 1.0);
                assert!(e <= 1e-11, "{cov} {prior:?} {what}: {e:e}");
            }
        }
    }
}

/// Two warm-started fits of 3 iterations equal one fit of 6: the posterior carries on.
#[test]
fn warm_starts_continue_the_posterior() {
    let (x, labels) = blob_start();
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let params = |iters| {
            GmmParams::builder(4)
                .covariance_type(cov)
                .tol(0.0)
                .max_iter(iters)
                .warm_start(true)
                .init_labels(labels.clone())
                .variational(Variational::dirichlet_distribution())
                .build()
                .unwrap()
        };
        let mut warm = gmm_gpu::GaussianMixture::new(params(3));
        warm.fit(&data).unwrap();
        let second = warm.fit(&data).unwrap().clone();
        let once = params(6).fit(&data).unwrap();
        assert_eq!(second.means(), once.means(), "{cov}");
        assert_eq!(second.weight_concentration(), once.weight_concentration(), "{cov}");
        assert_eq!(second.lower_bound(), once.lower_bound(), "{cov}");
    }
}

/// n_init keeps the initialisation with the highest lower bound (scikit-learn's rule), of ends
/// that differ.
#[test]
fn restarts_keep_the_highest_lower_bound() {
    let (x, _) = blob_start();
    let data = DataView::from_f64(&x, 2).unwrap();
    let params = GmmParams::builder(6)
        .init_method(gmm_gpu::InitMethod::Random)
        .n_init(4)
        .variational(Variational::dirichlet_process())
        .build()
        .unwrap();
    let (m, ends) = common::fit_with_init_ends(params, &data);
    let best = ends.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(m.lower_bound(), best, "{ends:?}");
    assert!(
        ends.iter().any(|&e| e < best - 1e-6),
        "the restarts all ended alike: {ends:?}"
    );
}

/// The variational bound never falls (beyond rounding) on the CPU.
#[test]
fn the_lower_bound_never_falls() {
    let (x, _) = blob_start();
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        for prior in [Variational::dirichlet_process(), Variational::dirichlet_distribution()] {
            let m = GmmParams::builder(6)
                .covariance_type(cov)
                .init_method(gmm_gpu::InitMethod::Random)
                .tol(0.0)
                .max_iter(60)
                .variational(prior)
                .build()
                .unwrap()
                .fit(&data)
                .unwrap();
            for (t, w) in m.lower_bounds().windows(2).enumerate() {
                // Sums over 240 samples: 1e-12 of the bound.
                assert!(
                    w[1] >= w[0] - 1e-12 * w[0].abs(),
                    "{cov}: fell from {} to {} at {}",
                    w[0],
                    w[1],
                    t + 2
                );
            }
        }
    }
}

/// GpuPrecision::Auto on a variational fit: a tol below the fast arithmetic's noise (scaled to
/// the bound's total) finishes in exact arithmetic, recorded on the model, and ends where the CPU
/// does.
#[test]
fn auto_escalates_a_variational_fit_as_any_other() {
    let Some(ctx) = common::gpu() else { return };
    let (x, labels) = blob_start();
    let data = DataView::from_f64(&x, 2).unwrap();
    let params = GmmParams::builder(4)
        .tol(1e-9)
        .max_iter(300)
        .init_labels(labels)
        .variational(Variational::dirichlet_process())
        .gpu_precision(GpuPrecision::Auto)
        .build()
        .unwrap();
    let gpu = params.fit_on(ctx, &data).unwrap();
    let cpu = params.fit(&data).unwrap();
    let record = gpu.gpu_precision().expect("a GPU fit records its arithmetic");
    assert!(!record.switches.is_empty(), "{record:?}");
    // Exact (two-float or f64) arithmetic at the end: 1e-6 of the CPU.
    let e = max_rel(gpu.means(), cpu.means(), 1.0).max(max_rel(gpu.covariances(), cpu.covariances(), 1.0));
    assert!(e <= 1e-6, "{e:e}");
}

/// A variational model's predictions on the GPU (the host path: a resident model in exact
/// arithmetic) use the same E-step constants as the CPU's: a model run with ln w_k in their place
/// would be off by ~0.03 nats per sample.
#[test]
fn gpu_inference_of_a_variational_model_equals_the_cpus() {
    let Some(ctx) = common::gpu() else { return };
    let (x, cases) = cases();
    // f32 data on both sides, so that only the arithmetic differs.
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let data = DataView::from_f32(&x32, 3).unwrap();
    for case in &cases {
        let m = case.params(5).build().unwrap().fit(&data).unwrap();
        // The host inference path's own accuracy on lavapipe: 7e-8 (a maximum-likelihood model on
        // the same data shows the same), so 1e-6.
        let e = max_rel(
            &m.score_samples_on(ctx, &data).unwrap(),
            &m.score_samples(&data).unwrap(),
            1.0,
        );
        assert!(e <= 1e-6, "{}: {e:e}", case.name);
        let p = max_rel(
            &m.predict_proba_on(ctx, &data).unwrap(),
            &m.predict_proba(&data).unwrap(),
            1.0,
        );
        assert!(p <= 1e-6, "{}: {p:e}", case.name);
    }
}
