//! Issue 17: the GPU's arithmetic per fit. Both exact arithmetics (native f64 and two-float) and
//! fast's log-sum-exp against the f64 CPU path on the same f32 data, each at its own accuracy,
//! Auto staying fast on well-conditioned data, the model recording what ran, and Auto routing an
//! ill-conditioned component alone to the exact kernels. (Every arithmetic against the CPU at
//! awkward sizes: tests/gpu.rs; Auto on ill-conditioned data: tests/gpu_stress.rs.) Runs on any
//! wgpu adapter (lavapipe in CI, which has shaderFloat64); with CI=true a missing adapter fails.

mod common;

use common::{assert_close, blobs, gpu, shared_start};
use gmm_gpu::{CovarianceType, DataView, GmmModel, GpuKernels, GpuPrecision};

/// An exact arithmetic against the CPU from the same start on the data exactly as the GPU holds
/// it (`f32_image`), so that only the arithmetic differs: after 10 iterations, weights, means and
/// covariances within `param_rtol` (an absolute floor of `param_rtol` times each array's largest
/// magnitude) and the lower bound within `lb_rtol` of itself.
struct ExactBounds {
    /// The name the model's record gives the arithmetic.
    name: &'static str,
    param_rtol: f64,
    lb_rtol: f64,
}

/// Native f64: the device's f64 rounding, our own exp and log (a few 1e-16), and the f32 pairs (48
/// bits) that h, the responsibilities and the partial sums travel in, about 4e-15 relative per
/// value. Seen on lavapipe: parameters 2.7e-15 (a d = 20 diag covariance), the lower bound 3.8e-15
/// of itself (d = 20 spherical); the bounds are 10 times that. (They were 1e-11, which an f64 log
/// that dropped ln 2's low part, 1.9e-10 nats in a sample's log p, passed.)
const F64: ExactBounds = ExactBounds {
    name: "exact (f64)",
    param_rtol: 3e-14,
    lb_rtol: 4e-14,
};

/// Two-float: every product error-free and our own exp and log to ~5e-10, but each responsibility
/// and each staged value of the statistics (√r·z) stored as one f32 (6e-8 relative, unbiased over
/// the samples; shaders/precision_f32_values.wgsl). Seen on lavapipe: parameters 8.7e-9 (a d = 20
/// full covariance), the lower bound 2.5e-10 of itself (d = 20 tied); the bounds are 10 times that,
/// 1,000 times tighter than fast's (tests/gpu.rs: 1e-4, and 1e-5 nats).
const TWO_FLOAT: ExactBounds = ExactBounds {
    name: "exact (two-float)",
    param_rtol: 1e-7,
    lb_rtol: 3e-9,
};

/// The bounds of the exact arithmetic the record names `name`.
fn exact_bounds(name: &str) -> &'static ExactBounds {
    [&F64, &TWO_FLOAT]
        .into_iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no exact arithmetic is called {name}"))
}

/// The worst error of a fit's weights, means and covariances against the CPU's, each in the units
/// of `ExactBounds::param_rtol` (|a − e| / (|e| + the array's largest magnitude)), and of its lower
/// bound relative to the CPU's.
fn exact_errors(gpu: &GmmModel, cpu: &GmmModel) -> [f64; 4] {
    let scale = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let param = |g: &[f64], c: &[f64]| common::worst(g, c, 1.0, scale(c)).3;
    [
        param(gpu.weights(), cpu.weights()),
        param(gpu.means(), cpu.means()),
        param(gpu.covariances(), cpu.covariances()),
        ((gpu.lower_bound() - cpu.lower_bound()) / cpu.lower_bound()).abs(),
    ]
}

fn assert_exact_close(what: &str, gpu: &GmmModel, cpu: &GmmModel, bounds: &ExactBounds) {
    let scale = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let rtol = bounds.param_rtol;
    for (name, g, c) in [
        ("weights", gpu.weights(), cpu.weights()),
        ("means", gpu.means(), cpu.means()),
        ("covariances", gpu.covariances(), cpu.covariances()),
    ] {
        assert_close(&format!("{what}: {name}"), g, c, rtol, rtol * scale(c));
    }
    assert_close(
        &format!("{what}: lower bound"),
        &[gpu.lower_bound()],
        &[cpu.lower_bound()],
        bounds.lb_rtol,
        0.0,
    );
}

/// `GpuPrecision::Exact` on `ctx` against the CPU (see [`ExactBounds`]) at d = 3 (the fused pass:
/// K·units fit a workgroup) and d = 20 (the split kernels, `logprob_tri` for full and tied), at an
/// awkward N over two chunks, for every covariance type; it runs the kernels `bounds` name.
fn exact_kernels_match_the_cpu(ctx: &gmm_gpu::GpuContext, bounds: &ExactBounds, sizes: &[(usize, usize)]) {
    let mut worst = [0.0f64; 4];
    for &(d, n) in sizes {
        let centres: Vec<f64> = (0..3 * d)
            .map(|i| [0.0, 4.0, -3.0][i / d] + (i % d) as f64 * 0.5)
            .collect();
        let x = blobs(n, &centres, d, 1.0, 17 + d as u64);
        let view = DataView::from_f64(&x, d).unwrap();
        let image = gmm_gpu::gpu::f32_image(&view).unwrap();
        let image_view = DataView::from_f64(&image, d).unwrap();
        for cov in CovarianceType::ALL {
            let params = shared_start(&image_view, 3, cov)
                .tol(0.0)
                .max_iter(10)
                .chunk_size(1024)
                .gpu_precision(GpuPrecision::Exact)
                .build()
                .unwrap();
            let started = std::time::Instant::now();
            let g = params.fit_on(ctx, &view).unwrap();
            let seconds = started.elapsed().as_secs_f64();
            let record = g.gpu_precision().unwrap();
            assert_eq!(record.used, bounds.name, "{record:?}");
            let c = params.fit(&image_view).unwrap();
            let what = format!("d = {d} {cov} {}", bounds.name);
            let errors = exact_errors(&g, &c);
            println!(
                "{what} ({seconds:.1} s) against the CPU: weights {:.1e}, means {:.1e}, covariances {:.1e}, lower bound {:.1e} relative",
                errors[0], errors[1], errors[2], errors[3]
            );
            worst.iter_mut().zip(errors).for_each(|(w, e)| *w = w.max(e));
            assert_exact_close(&what, &g, &c, bounds);
        }
    }
    println!(
        "{}: worst weights {:.1e}, means {:.1e}, covariances {:.1e}, lower bound {:.1e} relative",
        bounds.name, worst[0], worst[1], worst[2], worst[3]
    );
}

/// Exact on this device against the CPU at its arithmetic's bounds. What `GpuPrecision::Exact`
/// runs is the rate probe's choice (`GpuContext::exact_kernels_name`): native f64 where the device
/// has it and its f64 rate is worth it (lavapipe, data-centre GPUs), else two-float, which
/// [`two_float_exact_kernels_match_the_cpu`] covers on every device.
#[test]
fn native_f64_exact_kernels_match_the_cpu() {
    let Some(ctx) = gpu() else { return };
    if !ctx.has_f64() {
        // CI's lavapipe has f64, so there this fails.
        let _: Option<()> = common::gpu_unavailable(&format!("{} has no SHADER_F64", ctx.adapter_name()));
        return;
    }
    let name = ctx.exact_kernels_name().unwrap();
    println!("{}: Exact runs {name}", ctx.adapter_name());
    // lavapipe runs f64 at about half its f32 rate, far above the probe's threshold (1/17): there
    // Exact must be f64, or CI would test the f64 kernels nowhere.
    if ctx.adapter_info().name.contains("llvmpipe") {
        assert_eq!(name, F64.name, "{}: the rate probe chose two-float", ctx.adapter_name());
    }
    if name != F64.name {
        eprintln!(
            "NOTE: {}'s f64 rate is too low for the rate probe: Exact runs two-float here, not the f64 kernels",
            ctx.adapter_name()
        );
    }
    exact_kernels_match_the_cpu(ctx, exact_bounds(name), &[(3, 3001), (20, 1001)]);
}

/// The two-float exact kernels (`GpuContext::without_f64`, on the same device) against the CPU at
/// two-float's own bounds, the same cases as the f64 ones: they are what Exact runs on devices
/// without f64 or with a slow one (consumer GPUs), and what Auto routes components to there. About
/// 10 s on lavapipe (the f64 cases: under 1 s).
#[test]
fn two_float_exact_kernels_match_the_cpu() {
    let Some(ctx) = common::gpu_two_float() else { return };
    assert_eq!(ctx.exact_kernels_name().unwrap(), TWO_FLOAT.name);
    exact_kernels_match_the_cpu(ctx, &TWO_FLOAT, &[(3, 3001), (20, 1001)]);
}

/// Auto on well-conditioned blobs with scikit-learn's default tol (1e-3, far above the fast noise
/// floor): no component trips the guard, so the whole fit runs fast, and it still agrees with the
/// CPU to the fast bound.
#[test]
fn auto_stays_fast_on_well_conditioned_data() {
    let Some(ctx) = gpu() else { return };
    let x = blobs(5000, &[0.0, 0.0, 6.0, 1.0, -2.0, 7.0], 2, 1.0, 23);
    let view = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let params = shared_start(&view, 3, cov).build().unwrap();
        let g = params.fit_on(ctx, &view).unwrap();
        let record = g.gpu_precision().unwrap();
        assert_eq!(
            (record.requested.as_str(), record.used.as_str()),
            ("auto", "fast"),
            "{cov}: {record:?}"
        );
        assert!(record.switches.is_empty(), "{cov}: {record:?}");
        let c = params.fit(&view).unwrap();
        assert_eq!(g.n_iter(), c.n_iter(), "{cov}: iterations");
        assert_close(&format!("{cov} means"), g.means(), c.means(), 1e-4, 1e-4);
    }
}

/// Fast's log-sum-exp takes the log-density constants' high parts and an h into which the
/// log-density kernels fold their low parts (shaders/estep.wgsl `write_h_parts`), one load each.
/// Four clusters of weights 0.6 to 0.01 and spreads 0.02 to 30, overlapping: the fitted constants
/// spread over 17 nats at d = 2 (the fused pass) and 68–93 at d = 24 (the split kernels; tied, 4).
/// Fast agrees with the CPU on the same f32 data within 10 times tighter than its bounds
/// (tests/gpu.rs: parameters 1e-4, the lower bound 1e-5): the worst seen is 1.7e-6 of a covariance
/// and 1.9e-7 nats. A constant rounded to one f32 (shifted by the middle of their range) erred by
/// 1.3e-5 of a covariance here (d = 24 diag), which these bounds reject.
#[test]
fn fast_holds_on_constants_spread_far_apart() {
    let Some(ctx) = gpu() else { return };
    let weights = [0.6, 0.3, 0.09, 0.01];
    let spreads = [0.02, 1.0, 30.0, 3.0];
    let mut worst = 0.0f64;
    for d in [2usize, 24] {
        let n = 4000;
        let mut x = Vec::with_capacity(n * d);
        for (c, (&w, &s)) in weights.iter().zip(&spreads).enumerate() {
            let m = (w * n as f64).round() as usize;
            let centre: Vec<f64> = (0..d).map(|j| c as f64 * 5.0 * ((j % 3) as f64 - 1.0)).collect();
            x.extend(blobs(m, &centre, d, s, (10 * d + c) as u64));
        }
        let view = DataView::from_f64(&x, d).unwrap();
        let image = gmm_gpu::gpu::f32_image(&view).unwrap();
        let image_view = DataView::from_f64(&image, d).unwrap();
        for cov in CovarianceType::ALL {
            let params = shared_start(&image_view, 4, cov)
                .tol(0.0)
                .max_iter(10)
                .reg_covar(1e-6)
                .gpu_precision(GpuPrecision::Fast)
                .build()
                .unwrap();
            let g = params.fit_on(ctx, &view).unwrap();
            assert_eq!(g.gpu_precision().unwrap().used, "fast");
            let c = params.fit(&image_view).unwrap();
            let what = format!("d = {d} {cov}");
            let spread = constant_spread(&c);
            // Tied shares one log det: only the weights spread its constants (about 4 nats).
            let wide = if cov == CovarianceType::Tied {
                3.0
            } else {
                2.5 * d as f64
            };
            assert!(spread > wide, "{what}: constants spread over {spread} nats only");
            let lb = (g.lower_bound() - c.lower_bound()).abs();
            // Each component's means and covariance relative to its own largest entry (the
            // clusters' variances run from 4e-4 to 900); the weights relative to themselves.
            let blocks = if cov == CovarianceType::Tied { 1 } else { 4 };
            let (cov_err, cov_at) = per_block_error(g.covariances(), c.covariances(), blocks);
            let (mean_err, mean_at) = per_block_error(g.means(), c.means(), 4);
            let weight_err = common::max_rel(g.weights(), c.weights(), 0.0);
            println!(
                "{what}: constants spread over {spread:.0} nats; lower bound {lb:.1e}, weights {weight_err:.1e}, means {mean_err:.1e} [{mean_at}], covariances {cov_err:.1e} [{cov_at}]"
            );
            worst = worst.max(lb);
            assert!(
                lb <= 1e-6,
                "{what}: lower bound {} vs {}",
                g.lower_bound(),
                c.lower_bound()
            );
            assert!(
                weight_err <= 1e-5,
                "{what}: weights {:?} vs {:?}",
                g.weights(),
                c.weights()
            );
            assert!(mean_err <= 1e-5, "{what}: means, worst entry [{mean_at}]: {mean_err:e}");
            assert!(
                cov_err <= 1e-5,
                "{what}: covariances, worst entry [{cov_at}]: {cov_err:e}"
            );
        }
    }
    println!("worst lower bound: {worst:.1e}");
}

/// Fast's log-sum-exp (the device's exp and log, shaders/precision_fast.wgsl `lse_term` and
/// `lse_total`) against the CPU on the data as the GPU holds it, on three blobs two spreads apart,
/// so that a sample's components other than its best hold 15–23% of its responsibility on
/// average: the lower bound at the shared start (one E-step of the same parameters on both
/// sides) and the model one M-step later, at fast's accuracy here times 10:
/// - the lower bound within 1e-7·(d + 2) nats (fast's noise floor, src/gpu/precision.rs): seen
///   5.1e-8 at d = 2 (tied) and 2.4e-7 at d = 20 (diag), each h's f32 rounding;
/// - weights, means and covariances within 6e-7 of each array's largest (seen 6e-8, d = 20 tied
///   weights).
///
/// An exp 1e-5 too large shifts every log p by 1e-5 (the lower bound), or, on the terms off the
/// best only, moves the responsibilities by ~1e-5·r_k·r_best (the weights by ~1e-6).
#[test]
fn fast_log_sum_exp_matches_the_cpu_on_overlapping_blobs() {
    let Some(ctx) = gpu() else { return };
    let mut worst = [0.0f64; 4];
    for d in [2usize, 20] {
        // Consecutive centres 2 apart (in distance) whatever d.
        let step = 2.0 / (d as f64).sqrt();
        let centres: Vec<f64> = (0..3 * d).map(|i| (i / d) as f64 * step * [1.0, -0.5][i % 2]).collect();
        let x = blobs(4000, &centres, d, 1.0, 71 + d as u64);
        let view = DataView::from_f64(&x, d).unwrap();
        let image = gmm_gpu::gpu::f32_image(&view).unwrap();
        let image_view = DataView::from_f64(&image, d).unwrap();
        let lb_atol = 1e-7 * (d + 2) as f64;
        for cov in CovarianceType::ALL {
            let params = shared_start(&image_view, 3, cov)
                .tol(0.0)
                .max_iter(1)
                .gpu_precision(GpuPrecision::Fast)
                .build()
                .unwrap();
            let g = params.fit_on(ctx, &view).unwrap();
            assert_eq!(g.gpu_precision().unwrap().used, "fast");
            let c = params.fit(&image_view).unwrap();
            let what = format!("d = {d} {cov}");
            let scale = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let param = |a: &[f64], e: &[f64]| common::worst(a, e, 1.0, scale(e)).3;
            let errors = [
                (g.lower_bounds()[0] - c.lower_bounds()[0]).abs(),
                param(g.weights(), c.weights()),
                param(g.means(), c.means()),
                param(g.covariances(), c.covariances()),
            ];
            println!(
                "{what}: lower bound at the start {:.1e}; after one M-step weights {:.1e}, means {:.1e}, covariances {:.1e}",
                errors[0], errors[1], errors[2], errors[3]
            );
            worst.iter_mut().zip(errors).for_each(|(w, e)| *w = w.max(e));
            assert_close(
                &format!("{what}: lower bound at the start"),
                &g.lower_bounds()[..1],
                &c.lower_bounds()[..1],
                0.0,
                lb_atol,
            );
            for (name, a, e) in [
                ("weights", g.weights(), c.weights()),
                ("means", g.means(), c.means()),
                ("covariances", g.covariances(), c.covariances()),
            ] {
                assert_close(&format!("{what}: {name}"), a, e, 6e-7, 6e-7 * scale(e));
            }
        }
    }
    println!(
        "worst: lower bound {:.1e}, weights {:.1e}, means {:.1e}, covariances {:.1e}",
        worst[0], worst[1], worst[2], worst[3]
    );
}

/// The spread (largest less smallest) of the components' log-density constants
/// log π_k + log det U_k, from the model's precision factors.
fn constant_spread(m: &GmmModel) -> f64 {
    let (k, d) = (m.weights().len(), m.n_features());
    let u = m.precisions_cholesky();
    let log_det = |c: usize| -> f64 {
        match m.covariance_type() {
            CovarianceType::Full => (0..d).map(|i| u[c * d * d + i * d + i].ln()).sum(),
            CovarianceType::Tied => (0..d).map(|i| u[i * d + i].ln()).sum(),
            CovarianceType::Diag => (0..d).map(|i| u[c * d + i].ln()).sum(),
            CovarianceType::Spherical => d as f64 * u[c].ln(),
        }
    };
    let g: Vec<f64> = (0..k).map(|c| m.weights()[c].ln() + log_det(c)).collect();
    g.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b)) - g.iter().fold(f64::INFINITY, |a, &b| a.min(b))
}

/// The largest |a − e| over `blocks` equal blocks, each relative to its block's largest |e|, and
/// where it is.
fn per_block_error(actual: &[f64], expected: &[f64], blocks: usize) -> (f64, usize) {
    let len = expected.len() / blocks;
    let mut worst = (0.0, 0);
    for (b, (a, e)) in actual.chunks(len).zip(expected.chunks(len)).enumerate() {
        let scale = e.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(e).enumerate() {
            let err = (x - y).abs() / scale;
            if err > worst.0 {
                worst = (err, b * len + i);
            }
        }
    }
    worst
}

/// Auto stays fast at large d too: d = 256 full and d = 2,048 diag, where a guard that grew with
/// d + 2 would send every fit to the exact kernels; one iteration agrees with the CPU to the fast
/// bound (tests/gpu.rs).
#[test]
fn auto_stays_fast_at_large_d() {
    let Some(ctx) = gpu() else { return };
    for (d, cov) in [(256usize, CovarianceType::Full), (2048, CovarianceType::Diag)] {
        let centres: Vec<f64> = (0..2 * d).map(|i| if i < d { 0.0 } else { 3.0 }).collect();
        // Enough samples per component (1,000) for d = 256 full covariances, so that the lower
        // bound rises (with fewer, reg_covar's share makes it fall, which Auto takes for f32's
        // failure).
        let x = blobs(2000, &centres, d, 1.0, 31);
        let view = DataView::from_f64(&x, d).unwrap();
        // scikit-learn's tol (1e-3), above fast's noise: a tol below it finishes in exact.
        let params = shared_start(&view, 2, cov).max_iter(3).build().unwrap();
        let g = params.fit_on(ctx, &view).unwrap();
        let record = g.gpu_precision().unwrap();
        assert_eq!(record.used, "fast", "d = {d} {cov}: {record:?}");
        let c = params.fit(&view).unwrap();
        let scale = c.means().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert_close(
            &format!("d = {d} {cov} means"),
            g.means(),
            c.means(),
            1e-4,
            1e-4 * scale,
        );
    }
}

/// The model file records the arithmetic, and reading it back keeps the record.
#[test]
fn the_model_file_records_the_arithmetic() {
    let Some(ctx) = gpu() else { return };
    let x = blobs(600, &[0.0, 0.0, 5.0, 5.0], 2, 1.0, 29);
    let view = DataView::from_f64(&x, 2).unwrap();
    let m = shared_start(&view, 2, CovarianceType::Diag)
        .gpu_precision(GpuPrecision::Fast)
        .build()
        .unwrap()
        .fit_on(ctx, &view)
        .unwrap();
    let json = m.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["gpu_precision"]["requested"], "fast", "{json}");
    assert_eq!(value["gpu_precision"]["used"], "fast", "{json}");
    let back = GmmModel::from_json(&json).unwrap();
    assert_eq!(back.gpu_precision(), m.gpu_precision());
    // A CPU fit has no GPU arithmetic to record.
    let cpu = shared_start(&view, 2, CovarianceType::Diag)
        .build()
        .unwrap()
        .fit(&view)
        .unwrap();
    assert!(cpu.gpu_precision().is_none());
    assert!(!cpu.to_json().contains("gpu_precision"));
}

/// Three blobs of 500 samples in d features, the last with features 0–4 a thousand times narrower
/// than the rest: its factor's diagonal spreads by 1e3, past the guard (at d = 20,
/// √22·2⁻²⁴·1e3 = 2.8e-4 > 1e-5), while the other two stay well inside it. Returned as the GPU
/// holds it (`f32_image`), so that only the arithmetic differs from the CPU's.
fn one_thin_blob(d: usize, seed: u64) -> Vec<f64> {
    let centres: Vec<f64> = (0..3 * d)
        .map(|i| [0.0, 6.0, -6.0][i / d] + (i % d) as f64 * 0.25)
        .collect();
    let mut x = blobs(1500, &centres, d, 1.0, seed);
    // blobs deals samples to the centres in turn: sample i belongs to blob i % 3.
    for (i, row) in x.chunks_exact_mut(d).enumerate() {
        if i % 3 == 2 {
            for j in 0..5 {
                row[j] = centres[2 * d + j] + (row[j] - centres[2 * d + j]) * 1e-3;
            }
        }
    }
    gmm_gpu::gpu::f32_image(&DataView::from_f64(&x, d).unwrap()).unwrap()
}

/// Auto sends only the thin blob's component to the exact kernels (fast and exact walking their
/// own lists of components in each pass, the normalisation exact), full and diag (`logprob_tri`
/// and `stats_tri`, `logprob_diag` and `stats`), on both exact arithmetics, on
/// the data as the GPU holds it (`f32_image`), from the same start as the CPU:
/// - the record names the component and says why;
/// - its mean and covariance are the whole-exact fit's: the other blobs' terms in its samples'
///   log-sum-exp are below exp's skip threshold in both, so its responsibilities, and from them its
///   statistics, come out the same (seen identical; 1e-12 allows a last-bit difference);
/// - with native f64 that is the CPU's to F64's bound (seen 4e-15), where fast alone errs by 8.8e-6
///   at d = 20 full (less elsewhere, but the guard sees only the spread); with two-float to 6e-6
///   (seen 5.7e-7 there);
/// - the other components stay fast, within fast's 1e-4 of the CPU (seen 5.2e-6), and the lower
///   bound within fast's 1e-5 (seen 3.5e-8).
///
/// tol is 1e-5, above fast's noise at d = 20 (2.2e-6), so that Auto has no reason to finish exact.
#[test]
fn auto_routes_only_the_ill_conditioned_component_to_exact() {
    let Some(ctx) = gpu() else { return };
    // d = 20 past the fused pass's 16 features; d = 8 through the split kernels (`logprob`).
    for (d, cov_type, kernels) in [
        (20, CovarianceType::Full, GpuKernels::Auto),
        (20, CovarianceType::Diag, GpuKernels::Auto),
        (8, CovarianceType::Full, GpuKernels::Split),
    ] {
        let x = one_thin_blob(d, 61);
        let view = DataView::from_f64(&x, d).unwrap();
        routes_only_the_thin_blob(ctx, &view, d, cov_type, kernels);
    }
}

/// Where the fused pass runs (d = 8, K = 3: every component in one kernel) Auto switches the whole
/// fit, and says so.
#[test]
fn auto_switches_a_fused_fit_whole() {
    let Some(ctx) = gpu() else { return };
    let d = 8;
    let x = one_thin_blob(d, 61);
    let view = DataView::from_f64(&x, d).unwrap();
    let params = shared_start(&view, 3, CovarianceType::Full)
        .tol(1e-5)
        .max_iter(10)
        .build()
        .unwrap();
    let g = params.fit_on(ctx, &view).unwrap();
    let record = g.gpu_precision().unwrap();
    assert_eq!(record.used, common::exact_name(ctx), "{record:?}");
    assert!(record.exact_components.is_empty(), "{record:?}");
    assert_eq!(record.switches.len(), 1, "{record:?}");
    assert!(record.switches[0].contains("fused pass"), "{record:?}");
}

fn routes_only_the_thin_blob(
    ctx: &'static gmm_gpu::GpuContext,
    view: &DataView,
    d: usize,
    cov_type: CovarianceType,
    kernels: GpuKernels,
) {
    let params = |p| {
        shared_start(view, 3, cov_type)
            .gpu_kernels(kernels)
            .tol(1e-5)
            .max_iter(10)
            .gpu_precision(p)
            .build()
            .unwrap()
    };
    let cpu = params(GpuPrecision::Auto).fit(view).unwrap();
    // A component's covariance: d² entries (full) or d (diag).
    let len = cpu.covariances().len() / 3;
    // The thin blob is the one centred lowest in feature 0 (−6).
    let thin = (0..3)
        .min_by(|&a, &b| cpu.means()[a * d].total_cmp(&cpu.means()[b * d]))
        .unwrap();
    let scale = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mean = |m: &GmmModel, c: usize| m.means()[c * d..(c + 1) * d].to_vec();
    let cov = |m: &GmmModel, c: usize| m.covariances()[c * len..(c + 1) * len].to_vec();
    // Entries below 1e-3 of their array's largest are measured against that floor, as in
    // tests/gpu.rs.
    let rel = |a: &[f64], e: &[f64]| common::max_rel(a, e, 1e-3 * scale(e));
    for on in [ctx, common::gpu_two_float().expect("the device is there")] {
        let exact_name = common::exact_name(on);
        let [fast, auto, exact] =
            [GpuPrecision::Fast, GpuPrecision::Auto, GpuPrecision::Exact].map(|p| params(p).fit_on(on, view).unwrap());
        let record = auto.gpu_precision().unwrap();
        let what = format!("d = {d} {cov_type} {exact_name}");
        assert_eq!(record.used, format!("fast + {exact_name}"), "{what}: {record:?}");
        assert_eq!(record.exact_components, vec![thin], "{record:?}");
        assert_eq!(record.switches.len(), 1, "{record:?}");
        assert!(
            record.switches[0].starts_with(&format!("component {thin} ")),
            "{record:?}"
        );
        assert_eq!(auto.n_iter(), cpu.n_iter(), "{exact_name}: iterations");

        for (what, a, e) in [
            ("mean", mean(&auto, thin), mean(&exact, thin)),
            ("covariance", cov(&auto, thin), cov(&exact, thin)),
        ] {
            let err = rel(&a, &e);
            assert!(
                err <= 1e-12,
                "{exact_name}: the routed component's {what} is {err:e} from the exact fit's"
            );
        }
        let err = rel(&cov(&auto, thin), &cov(&cpu, thin));
        let fast_err = rel(&cov(&fast, thin), &cov(&cpu, thin));
        println!("{what}: the routed component's covariance is {err:.1e} from the CPU's (fast alone: {fast_err:.1e})");
        // Seen 4e-15 in f64; in two-float 5.7e-7 at d = 20 full, where the thin blob's spread
        // magnifies its f32 responsibilities' rounding (1.7e-9 and 2e-8 elsewhere).
        let route_bound = if exact_name == F64.name { F64.param_rtol } else { 6e-6 };
        assert!(
            err <= route_bound,
            "{what}: the routed component's covariance is {err:e} from the CPU's"
        );
        if exact_name == F64.name && (d, cov_type) == (20, CovarianceType::Full) {
            // (Elsewhere fast holds it: 6.8e-8 at d = 8 full, 2.2e-8 at d = 20 diag. The guard
            // sees only the spread.)
            assert!(
                fast_err > 1e-7,
                "fast alone should lose this component's precision ({fast_err:e})"
            );
        }
        for c in (0..3).filter(|&c| c != thin) {
            assert_close(
                &format!("{exact_name}: fast component {c} mean"),
                &mean(&auto, c),
                &mean(&cpu, c),
                1e-4,
                1e-4 * scale(cpu.means()),
            );
            assert_close(
                &format!("{exact_name}: fast component {c} covariance"),
                &cov(&auto, c),
                &cov(&cpu, c),
                1e-4,
                1e-4 * scale(&cov(&cpu, c)),
            );
        }
        assert_close(
            &format!("{exact_name}: lower bound"),
            &[auto.lower_bound()],
            &[cpu.lower_bound()],
            0.0,
            1e-5,
        );
    }
}
