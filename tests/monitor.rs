//! The hooks a host language needs around a fit: a monitor that sees every initialisation and
//! iteration and can stop the fit, the warning logged when a fit did not converge, and models made
//! from parameters kept outside the crate (for predictions and warm starts).

mod common;

use std::ops::ControlFlow;

use common::blobs;
use gmm_gpu::{CovarianceType, DataView, FitEvent, GaussianMixture, GmmError, GmmModel, GmmParams};

fn three_blobs(n: usize, seed: u64) -> Vec<f64> {
    blobs(n, &[0.0, 0.0, 6.0, 0.0, 0.0, 6.0], 2, 1.0, seed)
}

/// The events of one fit, in order, as short strings.
fn events_of(params: GmmParams, data: &DataView) -> Vec<String> {
    let mut seen = Vec::new();
    let mut gm = GaussianMixture::new(params);
    gm.fit_monitored(data, None, &mut |e| {
        seen.push(match e {
            FitEvent::InitStart { init } => format!("start {init}"),
            FitEvent::Iteration(p) => format!("iter {} {}", p.init, p.iteration),
            FitEvent::InitEnd {
                init,
                n_iter,
                converged,
                ..
            } => format!("end {init} {n_iter} {converged}"),
            _ => unreachable!("no other events"),
        });
        ControlFlow::Continue(())
    })
    .unwrap();
    seen
}

#[test]
fn the_monitor_sees_each_initialisation_begin_iterate_and_end() {
    let x = three_blobs(300, 1);
    let data = DataView::from_f64(&x, 2).unwrap();
    let params = GmmParams::builder(3)
        .n_init(2)
        .max_iter(3)
        .tol(0.0)
        .seed(5)
        .build()
        .unwrap();
    let want = [
        "start 0",
        "iter 0 1",
        "iter 0 2",
        "iter 0 3",
        "end 0 3 false",
        "start 1",
        "iter 1 1",
        "iter 1 2",
        "iter 1 3",
        "end 1 3 false",
    ];
    assert_eq!(events_of(params, &data), want);
    // With max_iter = 0 an initialisation begins but reports no end (as scikit-learn's verbose output).
    let params = GmmParams::builder(3).max_iter(0).build().unwrap();
    assert_eq!(events_of(params, &data), ["start 0"]);
}

#[test]
fn the_monitored_fit_equals_the_plain_fit_and_reports_its_lower_bounds() {
    let x = three_blobs(300, 2);
    let data = DataView::from_f64(&x, 2).unwrap();
    let w: Vec<f64> = (0..300).map(|i| (i % 3) as f64).collect();
    let params = GmmParams::builder(3).seed(9).build().unwrap();
    let plain = params.fit_weighted(&data, &w).unwrap();
    let mut bounds = Vec::new();
    let mut gm = GaussianMixture::new(params);
    let monitored = gm
        .fit_monitored(&data, Some(&w), &mut |e| {
            if let FitEvent::Iteration(p) = e {
                bounds.push(p.lower_bound);
            }
            ControlFlow::Continue(())
        })
        .unwrap()
        .clone();
    assert_eq!(monitored, plain);
    assert_eq!(bounds, plain.lower_bounds());
}

#[test]
fn a_break_from_the_monitor_stops_the_fit_and_keeps_the_current_model() {
    let x = three_blobs(300, 3);
    let data = DataView::from_f64(&x, 2).unwrap();
    let params = GmmParams::builder(3)
        .tol(0.0)
        .max_iter(50)
        .warm_start(true)
        .build()
        .unwrap();
    let mut gm = GaussianMixture::new(params);
    let mut calls = 0;
    let err = gm
        .fit_monitored(&data, None, &mut |e| {
            calls += 1;
            match e {
                FitEvent::Iteration(p) if p.iteration == 4 => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        })
        .unwrap_err();
    assert!(
        matches!(err, GmmError::Interrupted { init: 0, iteration: 4 }),
        "{err:?}"
    );
    assert_eq!(calls, 5, "the start and four iterations, then nothing");
    assert!(gm.model().is_none());
    // A stop at the very start, on a fitted estimator: the model it had stays.
    gm.fit(&data).unwrap();
    let before = gm.model().cloned();
    let err = gm
        .fit_monitored(&data, None, &mut |_| ControlFlow::Break(()))
        .unwrap_err();
    assert!(
        matches!(err, GmmError::Interrupted { init: 0, iteration: 0 }),
        "{err:?}"
    );
    assert_eq!(gm.model().cloned(), before);
}

/// The crate's log records on this thread while `f` runs. log's logger is global and set once per
/// process, so it keeps each thread's records apart: tests run on threads of their own.
fn logged_during(f: impl FnOnce()) -> Vec<(log::Level, String)> {
    use std::cell::RefCell;
    thread_local! {
        static RECORDS: RefCell<Vec<(log::Level, String)>> = const { RefCell::new(Vec::new()) };
    }
    struct Capture;
    impl log::Log for Capture {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.target().starts_with("gmm_gpu")
        }
        fn log(&self, r: &log::Record) {
            if self.enabled(r.metadata()) {
                RECORDS.with(|v| v.borrow_mut().push((r.level(), r.args().to_string())));
            }
        }
        fn flush(&self) {}
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Warn);
    });
    RECORDS.with(|v| v.borrow_mut().clear());
    f();
    RECORDS.with(|v| v.take())
}

#[test]
fn a_fit_that_did_not_converge_warns_once() {
    // As scikit-learn's ConvergenceWarning: once per fit, after the best initialisation, when it
    // ran out of iterations; not when it converged, and not with max_iter = 0 (nothing was run).
    let x = three_blobs(300, 4);
    let data = DataView::from_f64(&x, 2).unwrap();
    let warnings = |params: GmmParams| {
        let mut converged = None;
        let logged = logged_during(|| converged = Some(params.fit(&data).unwrap().converged()));
        let warned: Vec<String> = logged
            .into_iter()
            .filter(|(level, _)| *level == log::Level::Warn)
            .map(|(_, m)| m)
            .collect();
        (converged.unwrap(), warned)
    };
    let builder = || GmmParams::builder(3).n_init(2).seed(1);
    let (converged, warned) = warnings(builder().max_iter(2).tol(0.0).build().unwrap());
    assert!(!converged);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].starts_with("EM did not converge after 2 iterations"),
        "{}",
        warned[0]
    );
    let (converged, warned) = warnings(builder().max_iter(200).build().unwrap());
    assert!(converged);
    assert_eq!(warned, Vec::<String>::new());
    let (converged, warned) = warnings(builder().max_iter(0).build().unwrap());
    assert!(!converged);
    assert_eq!(warned, Vec::<String>::new());
}

/// A model rebuilt from `m`'s parameters (as a host language keeps them), with its lower bound.
fn rebuilt(m: &GmmModel) -> GmmModel {
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
}

#[test]
fn a_model_from_parameters_predicts_as_the_fitted_one_and_warm_starts_like_it() {
    let x = three_blobs(400, 4);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let build = |t: usize| {
            GmmParams::builder(3)
                .covariance_type(cov)
                .max_iter(t)
                .tol(0.0)
                .seed(11)
                .warm_start(true)
                .build()
                .unwrap()
        };
        let one = build(1).fit(&data).unwrap();
        let copy = rebuilt(&one);
        assert_eq!(
            copy.score_samples(&data).unwrap(),
            one.score_samples(&data).unwrap(),
            "{cov}"
        );
        assert_eq!(
            copy.predict_proba(&data).unwrap(),
            one.predict_proba(&data).unwrap(),
            "{cov}"
        );
        assert_eq!(copy.sample(20, 1).unwrap(), one.sample(20, 1).unwrap(), "{cov}");
        assert_eq!((copy.n_iter(), copy.converged()), (0, false));
        // Continuing from the copy is continuing from the fit: bitwise the fit of two iterations.
        let mut warm = GaussianMixture::new(build(1));
        warm.set_model(Some(copy));
        let continued = warm.fit(&data).unwrap();
        let two = build(2).fit(&data).unwrap();
        assert_eq!(continued.means(), two.means(), "{cov}");
        assert_eq!(continued.covariances(), two.covariances(), "{cov}");
        assert_eq!(continued.lower_bound(), two.lower_bound(), "{cov}");
    }
}

#[test]
fn a_model_from_parameters_rejects_wrong_shapes_and_values() {
    let full = |w: Vec<f64>, m: Vec<f64>, c: Vec<f64>, u: Vec<f64>, lb: f64| {
        GmmModel::from_parameters(CovarianceType::Full, 2, w, m, c, u, lb)
    };
    let eye = vec![1.0, 0.0, 0.0, 1.0];
    let ok = full(vec![1.0], vec![0.0, 0.0], eye.clone(), eye.clone(), f64::NEG_INFINITY).unwrap();
    assert_eq!(ok.lower_bound(), f64::NEG_INFINITY);
    // The weights need not sum to 1 exactly (parameters rounded to f32 do not).
    full(vec![1.0 + 1e-5], vec![0.0, 0.0], eye.clone(), eye.clone(), -1.0).unwrap();
    let shape = full(vec![1.0], vec![0.0; 3], eye.clone(), eye.clone(), -1.0).unwrap_err();
    assert!(
        matches!(shape, GmmError::ModelShape { field: "means", .. }),
        "{shape:?}"
    );
    let shape = full(vec![1.0], vec![0.0; 2], eye.clone(), vec![1.0; 3], -1.0).unwrap_err();
    assert!(
        matches!(
            shape,
            GmmError::ModelShape {
                field: "precisions_cholesky",
                ..
            }
        ),
        "{shape:?}"
    );
    let lower = full(vec![1.0], vec![0.0; 2], eye.clone(), vec![1.0, 0.0, 0.5, 1.0], -1.0).unwrap_err();
    assert!(
        matches!(
            lower,
            GmmError::ModelValue {
                field: "precisions_cholesky",
                index: 2,
                ..
            }
        ),
        "{lower:?}"
    );
    let weight = full(vec![0.0], vec![0.0; 2], eye.clone(), eye.clone(), -1.0).unwrap_err();
    assert!(
        matches!(weight, GmmError::ModelValue { field: "weights", .. }),
        "{weight:?}"
    );
    let not_pd = full(vec![1.0], vec![0.0; 2], vec![1.0, 2.0, 2.0, 1.0], eye.clone(), -1.0).unwrap_err();
    assert!(
        matches!(
            not_pd,
            GmmError::ModelValue {
                field: "covariances",
                ..
            }
        ),
        "{not_pd:?}"
    );
    let nan = full(vec![1.0], vec![0.0; 2], eye.clone(), eye.clone(), f64::NAN).unwrap_err();
    assert!(
        matches!(
            nan,
            GmmError::ModelValue {
                field: "lower_bound",
                ..
            }
        ),
        "{nan:?}"
    );
    let none = GmmModel::from_parameters(CovarianceType::Diag, 0, vec![1.0], vec![], vec![], vec![], -1.0).unwrap_err();
    assert!(
        matches!(
            none,
            GmmError::ModelValue {
                field: "n_features",
                ..
            }
        ),
        "{none:?}"
    );
}
