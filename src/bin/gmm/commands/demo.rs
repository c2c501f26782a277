//! `gmm demo`: fits the heights example (two Gaussians) and prints true and fitted parameters side
//! by side, then the same fit on the other backend from the same start.

use std::path::PathBuf;
use std::time::Instant;

use gmm_gpu::{BackendKind, DataView, GmmParams, GpuContext};

use super::common::{build, fit_error};
use super::output::{backend_line, say, seconds};
use crate::args::DemoArgs;
use crate::error::CliError;

/// The heights example: 600 draws of N(176, 8²), then 400 of N(164, 6²), seed 2 (as the tests' common::heights).
fn heights() -> Vec<f64> {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = StdRng::seed_from_u64(2);
    let (Ok(male), Ok(female)) = (Normal::new(176.0, 8.0), Normal::new(164.0, 6.0)) else {
        unreachable!("constant, valid normal parameters")
    };
    let mut x: Vec<f64> = (0..600).map(|_| male.sample(&mut rng)).collect();
    x.extend((0..400).map(|_| female.sample(&mut rng)));
    x
}

pub(super) fn demo(a: &DemoArgs) -> Result<(), CliError> {
    let x = heights();
    let demo_path = PathBuf::from("<demo data>");
    let view = DataView::from_f64(&x, 1).map_err(|source| CliError::Data {
        path: demo_path.clone(),
        source,
    })?;
    say!("gmm demo: the heights of 1000 people, one feature (cm)")?;
    say!("  truth: 600 men ~ N(176, 8²) and 400 women ~ N(164, 6²), drawn with seed 2")?;
    say!("  fit: 2 components, full covariance, k-means start (seed 0), tol 1e-8, max_iter 1000")?;
    // One start for every backend: k-means on the CPU, then given to each fit.
    let init = build(GmmParams::builder(2).max_iter(0).seed(0), None)?
        .fit(&view)
        .map_err(|e| fit_error(&demo_path, e))?;
    let start = GmmParams::builder(2)
        .tol(1e-8)
        .max_iter(1000)
        .weights_init(init.weights().to_vec())
        .means_init(init.means().to_vec())
        .precisions_init(init.precisions());
    let params = build(start.clone().backend(a.backend), None)?;
    let started = Instant::now();
    let model = params.fit(&view).map_err(|e| fit_error(&demo_path, e))?;
    let elapsed = started.elapsed();
    say!("  backend: {}", backend_line(&model))?;
    if let Some(why) = model.fallback_reason() {
        say!("  ({why})")?;
    }
    say!("")?;
    let mut order = [0usize, 1];
    order.sort_by(|&p, &q| model.means()[p].total_cmp(&model.means()[q]));
    say!(
        "  {:<10} {:>8} {:>8}   {:>8} {:>8}   {:>8} {:>8}",
        "",
        "weight",
        "",
        "mean",
        "",
        "std dev",
        ""
    )?;
    say!(
        "  {:<10} {:>8} {:>8}   {:>8} {:>8}   {:>8} {:>8}",
        "component",
        "true",
        "fitted",
        "true",
        "fitted",
        "true",
        "fitted"
    )?;
    for ((label, w, mu, sd), &k) in [("women", 0.4, 164.0, 6.0), ("men", 0.6, 176.0, 8.0)]
        .iter()
        .zip(&order)
    {
        say!(
            "  {label:<10} {w:>8.3} {:>8.3}   {mu:>8.2} {:>8.2}   {sd:>8.2} {:>8.2}",
            model.weights()[k],
            model.means()[k],
            model.covariances()[k].sqrt()
        )?;
    }
    say!("")?;
    say!(
        "  {} after {} iterations; lower bound {:.6} (mean log-likelihood); {}",
        if model.converged() {
            "converged"
        } else {
            "NOT converged"
        },
        model.n_iter(),
        model.lower_bound(),
        seconds(elapsed)
    )?;
    // Where any GPU adapter exists (a software one too), the same fit on the other side, from the
    // same start: the GPU's f32 against the CPU's f64.
    if a.backend == BackendKind::Cpu {
        return Ok(());
    }
    let other = if model.backend() == "gpu" {
        build(start.backend(BackendKind::Cpu), None)?.fit(&view)
    } else {
        match GpuContext::new() {
            Ok(ctx) => params.fit_on(&ctx, &view),
            Err(e) => {
                say!("  no GPU adapter to compare with ({e})")?;
                return Ok(());
            }
        }
    }
    .map_err(|e| fit_error(&demo_path, e))?;
    let (gpu, cpu) = if model.backend() == "gpu" {
        (&model, &other)
    } else {
        (&other, &model)
    };
    let rel = |g: &[f64], c: &[f64]| g.iter().zip(c).map(|(a, b)| ((a - b) / b).abs()).fold(0.0f64, f64::max);
    say!(
        "  GPU vs CPU from the same start, on {}: {} against {} iterations; largest relative difference: weights {:.1e}, means {:.1e}, variances {:.1e}",
        backend_line(gpu),
        gpu.n_iter(),
        cpu.n_iter(),
        rel(gpu.weights(), cpu.weights()),
        rel(gpu.means(), cpu.means()),
        rel(gpu.covariances(), cpu.covariances())
    )
}
