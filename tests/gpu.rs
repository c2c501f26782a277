//! The GPU path against the f64 CPU path, from the same start: f32 on the device against f64 on
//! the host. Runs on any wgpu adapter (lavapipe in CI); with CI=true a missing adapter fails.

mod common;

use common::{assert_close, blobs, gpu, shared_start};
use gmm_gpu::{CovarianceType, DataView, GmmModel, GmmParams, GpuContext, GpuPrecision, InitMethod};

/// f32 against f64 after 30 EM iterations: the bound. Each iteration's statistics carry
/// f32 rounding (~1e-7 relative per sum, ~1e-6 after a 2048-sample block) that EM contracts; the
/// worst seen here is 2.3e-5 (a full covariance at N = 10,007), so the bound holds with 4x to spare.
const PARAM_RTOL: f64 = 1e-4;
/// The mean log-likelihood per sample: the bound (the worst seen is 1.9e-6, at d = 64).
const LB_ATOL: f64 = 1e-5;

/// The fast kernels' bound on the lower bound at `d` features: LB_ATOL, or past d = 250 4e-8·d.
/// Fast keeps each h as one f32 of magnitude ~d/2 (half an ulp, 2⁻²⁵·d/2, per sample) and sums
/// its Mahalanobis form in f32; seen 2.1e-6 at d = 500 and 2.7e-5 at d = 1,024 full (4.1e-5
/// allowed), 3.6e-6 at d = 4,096 diag.
fn fast_lb_atol(d: usize) -> f64 {
    LB_ATOL.max(4e-8 * d as f64)
}

/// Weights, means, covariances and the lower bound of two fits agree within the tolerances.
fn assert_same_fit(what: &str, gpu: &GmmModel, cpu: &GmmModel) {
    assert_same_fit_within(what, gpu, cpu, LB_ATOL);
}

/// [`assert_same_fit`] with the lower bound within `lb_atol`.
fn assert_same_fit_within(what: &str, gpu: &GmmModel, cpu: &GmmModel, lb_atol: f64) {
    let scale = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    assert_close(
        &format!("{what}: weights"),
        gpu.weights(),
        cpu.weights(),
        PARAM_RTOL,
        0.0,
    );
    // Means and covariances can have entries near zero: an absolute floor of PARAM_RTOL times the
    // array's largest magnitude.
    let (gm, cm) = (gpu.means(), cpu.means());
    assert_close(&format!("{what}: means"), gm, cm, PARAM_RTOL, PARAM_RTOL * scale(cm));
    let (gc, cc) = (gpu.covariances(), cpu.covariances());
    assert_close(
        &format!("{what}: covariances"),
        gc,
        cc,
        PARAM_RTOL,
        PARAM_RTOL * scale(cc),
    );
    assert_close(
        &format!("{what}: lower bound"),
        &[gpu.lower_bound()],
        &[cpu.lower_bound()],
        0.0,
        lb_atol,
    );
    assert_eq!(gpu.n_iter(), cpu.n_iter(), "{what}: iterations");
    // Entries below 1e-3 of the array's largest are measured against that floor.
    let rel = |a: &[f64], b: &[f64]| common::max_rel(a, b, 1e-3 * scale(b));
    println!(
        "{what}: worst relative difference weights {:.1e}, means {:.1e}, covariances {:.1e}; lower bound {:.1e} absolute",
        rel(gpu.weights(), cpu.weights()),
        rel(gm, cm),
        rel(gc, cc),
        (gpu.lower_bound() - cpu.lower_bound()).abs()
    );
}

/// Three overlapping 2-D blobs with different shapes.
fn three_blobs(n: usize, seed: u64) -> Vec<f64> {
    let mut x = blobs(n, &[0.0, 0.0, 3.0, 1.0, -1.0, 3.5], 2, 1.0, seed);
    x.iter_mut().step_by(3).for_each(|v| *v *= 1.5);
    x
}

#[test]
fn gpu_matches_cpu_at_awkward_sizes_for_every_type() {
    let Some(ctx) = gpu() else { return };
    for n in [2usize, 255, 257, 10_007] {
        let x = three_blobs(n, n as u64);
        let data = DataView::from_f64(&x, 2).unwrap();
        let k = n.min(3);
        for cov in CovarianceType::ALL {
            for (on, precision, used) in arithmetics(ctx) {
                // Forced chunks of 64 samples: 1, 4, 5 and 157 chunks. lavapipe holds on to
                // memory for every dispatch of the two-float kernels until the device goes (7.5 GB
                // for one 30-iteration fit of 157 chunks; the fast and f64 ones do not), so at
                // N = 10,007 they take chunks of 2,048 (5 chunks).
                let chunk = if used == "exact (two-float)" && n > 2048 {
                    2048
                } else {
                    64
                };
                let params = shared_start(&data, k, cov)
                    .tol(0.0)
                    .max_iter(30)
                    .chunk_size(chunk)
                    .gpu_precision(precision)
                    .build()
                    .unwrap();
                let cpu = params.fit(&data).unwrap();
                let gpu = params.fit_on(on, &data).unwrap();
                assert_eq!(gpu.backend(), "gpu");
                assert_ran(&gpu, precision, used);
                assert_same_fit(&format!("N={n} {cov} {used}"), &gpu, &cpu);
            }
        }
    }
}

/// Each of the GPU's arithmetics, as (context, precision, the name the model records): fast, exact
/// on this device (native f64 where it has it, as lavapipe does), and exact two-float.
fn arithmetics(ctx: &'static GpuContext) -> [(&'static GpuContext, GpuPrecision, &'static str); 3] {
    let two_float = common::gpu_two_float().expect("the device is there");
    [
        (ctx, GpuPrecision::Fast, "fast"),
        (ctx, GpuPrecision::Exact, common::exact_name(ctx)),
        (two_float, GpuPrecision::Exact, "exact (two-float)"),
    ]
}

/// The fit ran the kernels `used` names, as asked, throughout.
fn assert_ran(m: &GmmModel, precision: GpuPrecision, used: &str) {
    let record = m.gpu_precision().expect("a GPU fit records its arithmetic");
    assert_eq!(
        (record.requested.as_str(), record.used.as_str()),
        (precision.name(), used)
    );
    assert!(record.switches.is_empty(), "{record:?}");
}

#[test]
fn gpu_matches_cpu_across_blocks_and_combine_levels() {
    let Some(ctx) = gpu() else { return };
    // 140,001 samples in one chunk: 69 blocks of 2048, so the combine tree has two levels.
    let x = three_blobs(140_001, 5);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in [CovarianceType::Full, CovarianceType::Spherical] {
        let params = shared_start(&data, 3, cov).tol(0.0).max_iter(5).build().unwrap();
        assert_same_fit(
            &format!("N=140001 {cov} (auto)"),
            &params.fit_on(ctx, &data).unwrap(),
            &params.fit(&data).unwrap(),
        );
    }
}

#[test]
fn data_offset_by_ten_thousand_standard_deviations() {
    let Some(ctx) = gpu() else { return };
    let mut x = three_blobs(3000, 9);
    x.iter_mut().for_each(|v| *v += 1e4);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let params = shared_start(&data, 3, cov)
            .tol(0.0)
            .max_iter(30)
            .chunk_size(1000)
            .build()
            .unwrap();
        assert_same_fit(
            &format!("offset 1e4 {cov}"),
            &params.fit_on(ctx, &data).unwrap(),
            &params.fit(&data).unwrap(),
        );
    }
}

#[test]
fn a_component_that_receives_no_samples() {
    let Some(ctx) = gpu() else { return };
    let x = three_blobs(600, 10);
    let data = DataView::from_f64(&x, 2).unwrap();
    // Component 2 starts far from every sample: at 1e3 standard deviations its responsibilities
    // underflow in f64 and f32 alike; at (20, 20) they are ~e^-200 to e^-400, zero in f32 but not in
    // f64, so only the GPU's vanish (the M-step then gives the same model to ~1e-160).
    for (far, cov) in [1000.0, 20.0]
        .into_iter()
        .flat_map(|f| CovarianceType::ALL.into_iter().map(move |c| (f, c)))
    {
        let precisions = match cov {
            CovarianceType::Full => [1.0, 0.0, 0.0, 1.0].repeat(3),
            CovarianceType::Tied => vec![1.0, 0.0, 0.0, 1.0],
            CovarianceType::Diag => vec![1.0; 6],
            CovarianceType::Spherical => vec![1.0; 3],
        };
        let params = GmmParams::builder(3)
            .covariance_type(cov)
            .weights_init(vec![0.45, 0.45, 0.1])
            .means_init(vec![0.0, 0.0, 3.0, 2.0, far, far])
            .precisions_init(precisions)
            .tol(0.0)
            .max_iter(10)
            .build()
            .unwrap();
        let (g, c) = (params.fit_on(ctx, &data).unwrap(), params.fit(&data).unwrap());
        for m in [&g, &c] {
            assert!(
                m.weights()
                    .iter()
                    .chain(m.means())
                    .chain(m.covariances())
                    .all(|v| v.is_finite()),
                "{cov}: NaN"
            );
        }
        assert_same_fit(&format!("empty component at {far} {cov}"), &g, &c);
        // Nothing moved it: it keeps its mean, and (but for tied) its covariance is reg_covar·I.
        assert_eq!(&g.means()[4..], &[far, far], "{cov}");
        if cov != CovarianceType::Tied {
            assert_close(
                &format!("{cov}: empty covariance"),
                &g.covariance_matrix(2),
                &[1e-6, 0.0, 0.0, 1e-6],
                1e-9,
                0.0,
            );
        }
    }
}

#[test]
fn sixty_four_features_and_sixty_four_components() {
    let Some(ctx) = gpu() else { return };
    // d = 64, K = 64: every E-step invocation loops d²/2 = 2080 times and the statistics pass has
    // 2145 outputs per component, so a kernel that ignored lavapipe's loop cap would go wrong here.
    let (d, k, n) = (64, 64, 64 * 100);
    let centres: Vec<f64> = (0..k * d)
        .map(|i| (((i * 7919) % 97) as f64 / 97.0 - 0.5) * 12.0)
        .collect();
    let x = blobs(n, &centres, d, 1.0, 64);
    let data = DataView::from_f64(&x, d).unwrap();
    for cov in [CovarianceType::Full, CovarianceType::Diag] {
        for (on, precision, used) in arithmetics(ctx) {
            let params = shared_start(&data, k, cov)
                .reg_covar(1e-3)
                .tol(0.0)
                .max_iter(3)
                .gpu_precision(precision)
                .build()
                .unwrap();
            assert_same_fit(
                &format!("d=64 K=64 {cov} {used}"),
                &params.fit_on(on, &data).unwrap(),
                &params.fit(&data).unwrap(),
            );
        }
    }
}

#[test]
fn gpu_initialisations_match_the_cpus() {
    let Some(ctx) = gpu() else { return };
    let x = blobs(3001, &[0.0, 0.0, 8.0, 0.0, 0.0, 8.0], 2, 1.0, 12);
    let data = DataView::from_f64(&x, 2).unwrap();
    for init in [
        InitMethod::KMeans,
        InitMethod::KMeansPlusPlus,
        InitMethod::Random,
        InitMethod::RandomFromData,
    ] {
        let params = GmmParams::builder(3)
            .init_method(init)
            .max_iter(0)
            .seed(4)
            .chunk_size(500)
            .build()
            .unwrap();
        let (g, c) = (params.fit_on(ctx, &data).unwrap(), params.fit(&data).unwrap());
        // The same seed makes the same choices on both; k-means and random responsibilities then sum in f32.
        assert_close(&format!("{init}: means"), g.means(), c.means(), 1e-5, 1e-5);
        assert_close(&format!("{init}: weights"), g.weights(), c.weights(), 1e-5, 0.0);
        assert_close(
            &format!("{init}: covariances"),
            g.covariances(),
            c.covariances(),
            1e-4,
            1e-6,
        );
    }
}

#[test]
fn gpu_predictions_match_the_cpus() {
    let Some(ctx) = gpu() else { return };
    let x = three_blobs(5000, 13);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let m = GmmParams::builder(3)
            .covariance_type(cov)
            .build()
            .unwrap()
            .fit(&data)
            .unwrap();
        // f32 log-densities of magnitude < 40: ~1e-5 absolute.
        assert_close(
            &format!("{cov} score_samples"),
            &m.score_samples_on(ctx, &data).unwrap(),
            &m.score_samples(&data).unwrap(),
            1e-6,
            2e-5,
        );
        assert_close(
            &format!("{cov} predict_proba"),
            &m.predict_proba_on(ctx, &data).unwrap(),
            &m.predict_proba(&data).unwrap(),
            0.0,
            2e-5,
        );
        // Labels agree except where two components are within f32 rounding of a tie.
        let (gl, cl) = (m.predict_on(ctx, &data).unwrap(), m.predict(&data).unwrap());
        let proba = m.predict_proba(&data).unwrap();
        for (i, (a, b)) in gl.iter().zip(&cl).enumerate() {
            if a != b {
                let gap = (proba[i * 3 + a] - proba[i * 3 + b]).abs();
                assert!(
                    gap < 1e-4,
                    "{cov}: sample {i}: GPU label {a}, CPU label {b}, responsibilities differ by {gap}"
                );
            }
        }
    }
}

#[test]
fn weighted_fits_match() {
    let Some(ctx) = gpu() else { return };
    let x = three_blobs(1000, 14);
    let data = DataView::from_f64(&x, 2).unwrap();
    let w: Vec<f64> = (0..1000).map(|i| ((i * 31) % 7) as f64 / 3.0).collect();
    let params = shared_start(&data, 3, CovarianceType::Full)
        .tol(0.0)
        .max_iter(20)
        .chunk_size(300)
        .build()
        .unwrap();
    let cpu = params.fit_weighted(&data, &w).unwrap();
    let gpu = gmm_gpu::GaussianMixture::on_gpu(params.clone(), ctx.clone())
        .fit_weighted(&data, &w)
        .unwrap()
        .clone();
    assert_same_fit("weighted", &gpu, &cpu);
}

#[test]
fn readback_per_iteration_does_not_grow_with_n() {
    let Some(ctx) = gpu() else { return };
    let traffic = |n: usize| {
        let x = three_blobs(n, 15);
        let data = DataView::from_f64(&x, 2).unwrap();
        let m = shared_start(&data, 3, CovarianceType::Full)
            .tol(0.0)
            .max_iter(2)
            .build()
            .unwrap()
            .fit_on(ctx, &data)
            .unwrap();
        m.traffic().expect("a GPU fit records its traffic")
    };
    let (small, large) = (traffic(5_000), traffic(50_000));
    // One chunk either way: K·(1 + d + d(d+1)/2) + 1 = 3·6 + 1 = 19 two-float sums (8 bytes) come back.
    assert_eq!(small.bytes_read_back, 19 * 8);
    assert_eq!(large.bytes_read_back, small.bytes_read_back);
    assert_eq!(large.bytes_uploaded, small.bytes_uploaded);
    println!("traffic per iteration, N = 5,000 and 50,000: {small:?} / {large:?}");
}

/// `gmm demo`'s fit (the heights of 1000 people, K = 2, full, tol 1e-8) from one shared start, in
/// each exact arithmetic (what `GpuPrecision::Exact` runs on this device: f64 on lavapipe, and
/// two-float through `GpuContext::without_f64`): the GPU's lower bound is accurate enough that EM
/// stops where the CPU's does, give or take the one iteration whose step lies within the GPU's
/// rounding of tol, and the two models then agree to 1e-4 (the target).
#[test]
fn the_demo_fit_runs_as_long_on_the_gpu_as_on_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let x = common::heights(2);
    let data = DataView::from_f64(&x, 1).unwrap();
    let image = gmm_gpu::gpu::f32_image(&data).unwrap();
    let image_view = DataView::from_f64(&image, 1).unwrap();
    let start = shared_start(&data, 2, CovarianceType::Full).tol(1e-8).max_iter(1000);
    let params = start.clone().gpu_precision(GpuPrecision::Exact).build().unwrap();
    let cpu = params.fit(&data).unwrap();
    let c = cpu.n_iter();
    // The lower bound at the shared start (the same parameters on both sides) against the CPU's on
    // the data as the GPU holds it: only the GPU's arithmetic differs.
    let on_image = start.clone().max_iter(1).build().unwrap().fit(&image_view).unwrap();
    let two_float = common::gpu_two_float().expect("the device is there");
    for on in [ctx, two_float] {
        let name = common::exact_name(on);
        if !std::ptr::eq(on, ctx) && name == common::exact_name(ctx) {
            continue;
        }
        let gpu = params.fit_on(on, &data).unwrap();
        assert_ran(&gpu, GpuPrecision::Exact, name);
        let first = (gpu.lower_bounds()[0] - on_image.lower_bounds()[0]).abs();
        println!(
            "demo, {name}: CPU {c} iterations, GPU {}; lower bound at the shared start differs by {first:.1e}; weights {:?} / {:?}",
            gpu.n_iter(),
            cpu.weights(),
            gpu.weights()
        );
        // Seen 4.4e-16 in f64 (its exp and log to a few 1e-16); 3.2e-12 in two-float, where each
        // log p is good to ~3e-10 (the f32 tails of exp and log), unbiased, averaged over 1000
        // samples (2.2e-10 with exp and log correct to an f32 ulp only, which moved the demo's stop
        // by 2). Both bounds were 1e-10, which an f64 log that dropped ln 2's low part passed.
        let bound = if name == "exact (f64)" { 5e-15 } else { 4e-11 };
        assert!(
            first <= bound,
            "{name}: lower bound at the shared start: {first:e} per sample"
        );
        // Near the stop the step shrinks by ~1.2e-10 per iteration, far more than the GPU's error
        // in it (~2e-11 in two-float), so at most the one iteration straddling tol can differ.
        let g = gpu.n_iter();
        assert!(c.abs_diff(g) <= 1, "{name}: iterations: GPU {g}, CPU {c}");
        // One iteration at the stop moves the weights by up to ~8e-5 relative.
        assert_close(
            &format!("demo weights, {name}"),
            gpu.weights(),
            cpu.weights(),
            1e-4,
            0.0,
        );
        assert_close(&format!("demo means, {name}"), gpu.means(), cpu.means(), 1e-4, 0.0);
        assert_close(
            &format!("demo covariances, {name}"),
            gpu.covariances(),
            cpu.covariances(),
            1e-4,
            0.0,
        );
    }
    // Auto (the default) starts fast; a tol of 1e-8 is below the fast arithmetic's noise, so it
    // finishes in exact arithmetic and stops where the exact fit does, give or take one iteration
    // on either side of the switch.
    let auto = start.build().unwrap().fit_on(ctx, &data).unwrap();
    let record = auto.gpu_precision().expect("a GPU fit records its arithmetic");
    println!("demo, auto: {} iterations, {record:?}", auto.n_iter());
    assert_eq!(record.requested, "auto");
    assert_eq!(record.used, common::exact_name(ctx));
    assert_eq!(record.switches.len(), 1, "{record:?}");
    assert!(
        record.switches[0].contains("below the fast arithmetic's noise"),
        "{record:?}"
    );
    assert!(
        auto.n_iter().abs_diff(c) <= 2,
        "iterations: auto {}, CPU {c}",
        auto.n_iter()
    );
    assert_close("demo weights, auto", auto.weights(), cpu.weights(), 1e-4, 0.0);
    assert_close("demo means, auto", auto.means(), cpu.means(), 1e-4, 0.0);
    assert_close(
        "demo covariances, auto",
        auto.covariances(),
        cpu.covariances(),
        1e-4,
        0.0,
    );
}

/// Clusters 1e4 apart with spread 1: centring on the global mean leaves every sample 5e3 from zero,
/// so f32 holds each to ~5e-4 of its spread; the statistics, summed around each component's own
/// centre in two-float arithmetic, must not lose more than that.
#[test]
fn clusters_far_apart_relative_to_their_spread() {
    let Some(ctx) = gpu() else { return };
    let x = blobs(4000, &[0.0, 0.0, 1e4, 1e4], 2, 1.0, 31);
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let params = shared_start(&data, 2, cov).tol(0.0).max_iter(30).build().unwrap();
        assert_same_fit(
            &format!("clusters 1e4 apart {cov}"),
            &params.fit_on(ctx, &data).unwrap(),
            &params.fit(&data).unwrap(),
        );
    }
}

/// Components 1e6 spreads from the frame's centre: there the low part of a mean (its f32 rounding,
/// up to 3e-8 in the device's units) is 6% of x − μ, so the two-float z = x − μ and y = Uᵀz must be
/// renormalised before squaring; a dropped lo² term once raised every log p by a near-constant
/// 2.3e-4 nats. The reference is the CPU on the data exactly as the GPU holds it (f32_image), so
/// only the GPU's arithmetic is measured.
#[test]
fn log_densities_of_components_far_from_the_frame_centre() {
    let Some(ctx) = gpu() else { return };
    // Two correlated clusters 1e6 apart (the second feature shares the first's noise).
    let n = 2000;
    let noise = blobs(n, &[0.0, 0.0], 2, 1.0, 41);
    let x: Vec<f64> = noise
        .chunks_exact(2)
        .enumerate()
        .flat_map(|(i, e)| {
            let c = if i % 2 == 0 { 0.0 } else { 1e6 };
            [c + e[0], 1.7 * c + e[0] + e[1]]
        })
        .collect();
    let data = DataView::from_f64(&x, 2).unwrap();
    let image = gmm_gpu::gpu::f32_image(&data).unwrap();
    let image_view = DataView::from_f64(&image, 2).unwrap();
    for cov in CovarianceType::ALL {
        let m = GmmParams::builder(2)
            .covariance_type(cov)
            .max_iter(5)
            .seed(1)
            .build()
            .unwrap()
            .fit(&image_view)
            .unwrap();
        let gpu_lp = m.score_samples_on(ctx, &data).unwrap();
        let cpu_lp = m.score_samples(&image_view).unwrap();
        // Each GPU log p leaves the device as one f32 of magnitude < 32 in the device's units,
        // so it carries up to an ulp there (1.9e-6) from its rounding; seen: 1.14e-6.
        assert_close(&format!("{cov} score_samples"), &gpu_lp, &cpu_lp, 0.0, 2e-6);
        // Those roundings are unbiased, so the mean over 2000 samples is far tighter (seen
        // 1.9e-8; the lost lo² term gave 2.3e-4).
        let bias = gpu_lp.iter().zip(&cpu_lp).map(|(g, c)| g - c).sum::<f64>() / n as f64;
        assert!(
            bias.abs() < 1e-7,
            "{cov}: the GPU's log p is biased by {bias:e} nats per sample"
        );
    }
}

/// One EM iteration on the GPU and on the CPU from the same start, on two blobs of `n` samples
/// of `d` features 3 apart per feature: few samples per dimension, so reg_covar 0.1 keeps every
/// covariance's condition number near (spread² + 0.1)/0.1, as f32 needs.
fn one_iteration_agrees(ctx: &'static GpuContext, n: usize, d: usize, cov: CovarianceType, seed: u64) {
    let centres: Vec<f64> = (0..2 * d).map(|i| if i < d { 0.0 } else { 3.0 }).collect();
    let x = blobs(n, &centres, d, 1.0, seed);
    let data = DataView::from_f64(&x, d).unwrap();
    let cpu = shared_start(&data, 2, cov)
        .reg_covar(0.1)
        .tol(0.0)
        .max_iter(1)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    for (on, precision, used) in arithmetics(ctx) {
        let params = shared_start(&data, 2, cov)
            .reg_covar(0.1)
            .tol(0.0)
            .max_iter(1)
            .gpu_precision(precision)
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let g = params.fit_on(on, &data).unwrap();
        println!(
            "d = {d} {cov} {used} on the GPU: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert_ran(&g, precision, used);
        let lb_atol = match precision {
            GpuPrecision::Fast => fast_lb_atol(d),
            _ => LB_ATOL,
        };
        assert_same_fit_within(&format!("d = {d} {cov} {used}"), &g, &cpu, lb_atol);
    }
}

/// Feature counts around `logprob_tri`'s tiles (32 columns, 16 rows) and past the old limit of
/// 128: d = 16 (the largest per-sample triangular path), 17 (the smallest tiled one) and 129 (one
/// column past four blocks) for every type, d = 500 for full and diag, d = 200 full over two
/// sample blocks; one EM iteration from the same start against the CPU.
#[test]
fn feature_counts_that_do_not_fill_the_tiles() {
    let Some(ctx) = gpu() else { return };
    for (d, types) in [
        (16, &CovarianceType::ALL[..]),
        (17, &CovarianceType::ALL[..]),
        (129, &CovarianceType::ALL[..]),
        (500, &[CovarianceType::Full, CovarianceType::Diag][..]),
    ] {
        for &cov in types {
            one_iteration_agrees(ctx, 203, d, cov, 43);
        }
    }
    // `stats_tri` in square blocks (51 tiles a side: seven blocks, the last with three live tile
    // rows) over two blocks of samples.
    one_iteration_agrees(ctx, 2100, 200, CovarianceType::Full, 44);
}

/// The kernels at their extremes: d = 1,024 with full covariances (`logprob_tri` loops about
/// 23,200 times per invocation, `stats_tri`, in square blocks, about 6,300), d = 4,096 with
/// diagonal ones (`stats` stages 256 features of a row per workgroup), and K = 16,384 components
/// (normalise loops 3K = 49,152 times), all under lavapipe's 65,535-iteration cap, against the CPU
/// from the same start.
#[test]
fn the_largest_d_and_k_the_kernels_take() {
    let Some(ctx) = gpu() else { return };
    one_iteration_agrees(
        ctx,
        200,
        gmm_gpu::gpu::MAX_GPU_FEATURES_TRIANGULAR,
        CovarianceType::Full,
        41,
    );
    one_iteration_agrees(ctx, 200, gmm_gpu::gpu::MAX_GPU_FEATURES, CovarianceType::Diag, 47);

    let k = gmm_gpu::gpu::MAX_GPU_COMPONENTS;
    let n = k + 1000;
    let x: Vec<f64> = (0..n).map(|i| (i % k) as f64 * 0.01 + (i / k) as f64 * 1e-3).collect();
    let data = DataView::from_f64(&x, 1).unwrap();
    // One component on each of the first K samples, 0.01 apart, with spread 0.01.
    let params = GmmParams::builder(k)
        .covariance_type(CovarianceType::Diag)
        .weights_init(vec![1.0 / k as f64; k])
        .means_init(x[..k].to_vec())
        .precisions_init(vec![1e4; k])
        .tol(0.0)
        .max_iter(1)
        .build()
        .unwrap();
    let (g, c) = (params.fit_on(ctx, &data).unwrap(), params.fit(&data).unwrap());
    // One iteration from the same start. The samples reach 164, so their feature is scaled by 256
    // and f32 holds them to 7.6e-6, 7.6e-4 of a component's spread: the means agree to that (seen
    // 4.5e-6), the weights to a few 1e-4 (seen 1.2e-4).
    assert_close("K = 16384 weights", g.weights(), c.weights(), 5e-4, 0.0);
    assert_close("K = 16384 means", g.means(), c.means(), 0.0, 1e-5);
    assert_close(
        "K = 16384 lower bound",
        &[g.lower_bound()],
        &[c.lower_bound()],
        0.0,
        LB_ATOL,
    );
}

/// A sample with weight 0 that no component reaches in f32 (its Mahalanobis form overflows) adds
/// nothing on the GPU, as on the CPU: no NaN responsibility.
#[test]
fn a_zero_weight_sample_that_f32_cannot_reach() {
    let Some(ctx) = gpu() else { return };
    let mut x: Vec<f64> = (0..99).map(|i| (i % 10) as f64 * 1e-3).collect();
    x.push(1.0);
    let data = DataView::from_f64(&x, 1).unwrap();
    let mut w = vec![1.0; 100];
    w[99] = 0.0;
    // With precisions of 1e4 the last sample is 1e4 away in the Mahalanobis form; with 1e40 it is
    // 1e40 away, beyond f32 (h = −∞ for every component), while the others stay below 1e36.
    for precision in [1e4, 1e40] {
        let params = GmmParams::builder(2)
            .covariance_type(CovarianceType::Diag)
            .weights_init(vec![0.5, 0.5])
            .means_init(vec![0.002, 0.007])
            .precisions_init(vec![precision, precision])
            .reg_covar(1e-9)
            .tol(0.0)
            .max_iter(3)
            .build()
            .unwrap();
        let c = params.fit_weighted(&data, &w).unwrap();
        let g = gmm_gpu::GaussianMixture::on_gpu(params.clone(), ctx.clone())
            .fit_weighted(&data, &w)
            .unwrap()
            .clone();
        for v in g.weights().iter().chain(g.means()).chain(g.covariances()) {
            assert!(v.is_finite(), "precision {precision}: {v}");
        }
        assert_close(
            &format!("precision {precision}: weights"),
            g.weights(),
            c.weights(),
            1e-4,
            0.0,
        );
        assert_close(
            &format!("precision {precision}: means"),
            g.means(),
            c.means(),
            1e-4,
            0.0,
        );
    }
}

/// A mean that moves 1e3 standard deviations in one iteration: around its old centre the second
/// moments would cancel six digits of the f32 products (~1e-3 relative error in the covariance at
/// N = 2000), so the GPU sums them again around the new mean and keeps the CPU's covariance.
#[test]
fn a_mean_that_moves_far_in_one_iteration() {
    let Some(ctx) = gpu() else { return };
    let mut x = blobs(2000, &[0.0, 0.0], 2, 1.0, 51);
    // Correlated: the second feature follows the first.
    for r in x.chunks_exact_mut(2) {
        r[1] = 0.9 * r[0] + 0.3 * r[1];
    }
    let data = DataView::from_f64(&x, 2).unwrap();
    for cov in CovarianceType::ALL {
        let precisions = match cov {
            CovarianceType::Full => vec![1.0, 0.0, 0.0, 1.0],
            CovarianceType::Tied => vec![1.0, 0.0, 0.0, 1.0],
            CovarianceType::Diag => vec![1.0, 1.0],
            CovarianceType::Spherical => vec![1.0],
        };
        let params = GmmParams::builder(1)
            .covariance_type(cov)
            .means_init(vec![1e3, -1e3])
            .precisions_init(precisions)
            .tol(0.0)
            .max_iter(1)
            .build()
            .unwrap();
        let (g, c) = (params.fit_on(ctx, &data).unwrap(), params.fit(&data).unwrap());
        // Recentred, only the f32 rounding of the data and of each term remains (seen below 1e-6).
        assert_close(
            &format!("{cov}: covariances"),
            g.covariances(),
            c.covariances(),
            1e-5,
            0.0,
        );
        assert_close(&format!("{cov}: means"), g.means(), c.means(), 0.0, 1e-5);
    }
}

#[test]
fn the_adapter_list_holds_the_adapter_fits_run_on() {
    let Some(ctx) = gpu() else { return };
    let adapters = gmm_gpu::GpuContext::adapters();
    let name = &ctx.adapter_info().name;
    assert!(
        adapters.iter().any(|a| &a.name == name),
        "{name} is not among {adapters:?}"
    );
    // Hardware first, software last.
    let software = adapters.iter().position(|a| a.device_type == wgpu::DeviceType::Cpu);
    if let Some(i) = software {
        assert!(adapters[i..].iter().all(|a| a.device_type == wgpu::DeviceType::Cpu));
    }
}

#[test]
fn a_monitored_gpu_fit_stops_when_told() {
    let Some(ctx) = gpu() else { return };
    let x = three_blobs(500, 15);
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let data = DataView::from_f32(&xf, 2).unwrap();
    let params = GmmParams::builder(3).tol(0.0).max_iter(30).build().unwrap();
    let mut gm = gmm_gpu::GaussianMixture::on_gpu(params, ctx.clone());
    let err = gm
        .fit_monitored(&data, None, &mut |e| match e {
            gmm_gpu::FitEvent::Iteration(p) if p.iteration == 2 => std::ops::ControlFlow::Break(()),
            _ => std::ops::ControlFlow::Continue(()),
        })
        .unwrap_err();
    assert!(
        matches!(err, gmm_gpu::GmmError::Interrupted { iteration: 2, .. }),
        "{err:?}"
    );
}

/// A column that is exactly 0 on one cluster's rows and about 0.017 on the other's: the first
/// component's variance there is reg_covar (1e-6), so the second cluster's rows weigh e^−150 to it
/// in the CPU's f64, and after one iteration its mean of that column (4e-70) and the entries of its
/// precision factor with it (−1.6e-66) lie far below f32's range (digits' pixel columns do this with
/// full covariances). A GPU fit that starts from that model has them zero on the device, not an
/// error, and agrees with the CPU's.
#[test]
fn entries_below_f32s_range_in_a_components_factor() {
    let Some(ctx) = gpu() else { return };
    let n = 600;
    let noise = blobs(n, &[0.0, 0.0, 5.0, 5.0], 2, 1.0, 77);
    let x: Vec<f64> = noise
        .chunks_exact(2)
        .enumerate()
        .flat_map(|(i, r)| {
            // Rows alternate between the clusters.
            let sparse = if i % 2 == 1 {
                0.0167 * (1.0 + (i % 5) as f64 * 0.01)
            } else {
                0.0
            };
            [r[0], r[1], sparse]
        })
        .collect();
    let data = DataView::from_f64(&x, 3).unwrap();
    let one = shared_start(&data, 2, CovarianceType::Full)
        .max_iter(1)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    let tiny = one.precisions_cholesky()[2];
    assert!(
        tiny != 0.0 && tiny.abs() < 1e-60,
        "the start must hold entries below f32: {tiny:e}"
    );
    for (on, precision, used) in arithmetics(ctx) {
        let params = GmmParams::builder(2)
            .covariance_type(CovarianceType::Full)
            .weights_init(one.weights().to_vec())
            .means_init(one.means().to_vec())
            .precisions_init(one.precisions())
            .tol(0.0)
            .max_iter(5)
            .gpu_precision(precision)
            .build()
            .unwrap();
        let g = params.fit_on(on, &data).unwrap();
        assert_ran(&g, precision, used);
        assert_same_fit(&format!("sparse column {used}"), &g, &params.fit(&data).unwrap());
    }
}
