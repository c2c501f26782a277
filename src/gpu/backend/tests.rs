//! The GPU backend's state across a fit: Auto's switches and routes start afresh with each
//! initialisation.

use super::{GpuBackend, Source};
use crate::backend::Backend;
use crate::data::DataView;
use crate::gpu::plan::Budget;
use crate::gpu::precision::Arith;
use crate::gpu::{GpuKernels, GpuPrecision};
use crate::kinds::CovarianceType;
use crate::mixture::Mixture;
use crate::stats::SuffStats;

/// Three components in 2-D with the given covariances (row-major 2 × 2 each).
fn mixture(covariances: [[f64; 4]; 3]) -> Mixture {
    let mut mix = Mixture::zeros(CovarianceType::Full, 3, 2);
    mix.weights = vec![0.3, 0.3, 0.4];
    mix.means = vec![0.0, 0.0, 5.0, 1.0, -3.0, 4.0];
    mix.covariances = covariances.concat();
    mix.set_precisions_from_covariances(&mut [0.0; 4]).unwrap();
    mix
}

/// Auto routes an ill-conditioned component to the exact kernels, then switches whole; a new
/// initialisation (`begin_init`) starts fast again with every component in the fast kernels and
/// nothing recorded, and its statistics are bitwise a fresh backend's.
#[test]
fn a_new_initialisation_starts_auto_afresh() {
    let Some(ctx) = crate::gpu::test_context() else { return };
    let x: Vec<f32> = (0..1500 * 2)
        .map(|i| ((i * 7919) % 1000) as f32 / 200.0 + [0.0, 5.0, -3.0][(i / 2) % 3])
        .collect();
    let view = DataView::from_f32(&x, 2).unwrap();
    let budget = Budget {
        kernels: GpuKernels::Split, // the fused pass switches whole; the split one routes
        precision: GpuPrecision::Auto,
        ..Budget::default()
    };
    let eye = [1.0, 0.0, 0.0, 1.0];
    let well = mixture([eye, eye, eye]);
    // κ = 1e6: √(d + 2)·u·√κ = 1.2e-4, past the guard's 1e-5.
    let ill = mixture([[1.0, 0.0, 0.0, 1e-6], eye, eye]);
    let run = |backend: &mut GpuBackend, mix: &Mixture| {
        let mut stats = SuffStats::new(CovarianceType::Full, 3, 2);
        backend.guard(mix).unwrap();
        backend.em_statistics(mix, &mix.means, &mut stats).unwrap();
        stats
    };
    let mut fresh = GpuBackend::new(&ctx, Source::Host(view), 3, CovarianceType::Full, None, budget).unwrap();
    let want = run(&mut fresh, &well);

    let mut backend = GpuBackend::new(&ctx, Source::Host(view), 3, CovarianceType::Full, None, budget).unwrap();
    run(&mut backend, &ill);
    assert_eq!(backend.exact_routes, [true, false, false]);
    assert!(backend.info().precision.unwrap().used.starts_with("fast + "));
    assert!(backend.escalate("a test's reason".into()));
    assert_ne!(backend.arith(), Arith::Fast);

    backend.begin_init().unwrap();
    assert_eq!(backend.arith(), Arith::Fast);
    assert!(backend.escalation_floor().is_some());
    assert_eq!(backend.exact_routes, [false; 3]);
    let record = backend.info().precision.unwrap();
    assert_eq!(record.used, "fast", "{record:?}");
    assert!(
        record.switches.is_empty() && record.exact_components.is_empty(),
        "{record:?}"
    );
    assert_eq!(run(&mut backend, &well), want);
}
