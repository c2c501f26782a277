//! One pass of online (stepwise) EM against batch EM run to convergence, from the same start, on
//! separated Gaussian blobs: the held-out mean log-likelihood against the samples seen (and the
//! wall time) after every batch EM iteration and every online mini-batch, written as CSV, and a
//! summary of the final held-out log-likelihoods and wall times.
//!
//! ```text
//! cargo run --release --example online_vs_batch -- [--n 4000000] [--d 16] [--k 16]
//!     [--heldout 200000] [--batch-size 16384] [--decay 0.7] [--offset 2] [--tol 1e-3]
//!     [--max-iter 500] [--init k-means++] [--backend cpu|gpu] [--seed 1] [--out online_vs_batch.csv]
//! python3 benches/plot_online.py online_vs_batch.csv online_vs_batch.png
//! ```
//!
//! The start: the initialisation an online fit draws from its first mini-batch (`--init`, by
//! default k-means++ seeding alone, which leaves batch EM some way to go; `kmeans` runs Lloyd's
//! iterations on the batch too, as an online fit does by default), computed once and given to both fits as explicit initial parameters, so both begin from
//! the same model. Batch EM runs as a chain of one-iteration warm-started fits (bitwise one
//! uninterrupted fit: each continues from the last model and its lower bound, and stops when the
//! change falls below `tol`), so that the model after each iteration can be scored; online EM is one
//! `partial_fit` per mini-batch. The wall clock counts only the fits: the held-out evaluations run
//! with the clock stopped.
//!
//! Batches of 16,384 (not the crate's default 65,536): from a poor start (two seeds in one blob,
//! which batch EM needs ~10 iterations to split) one pass of 62 batches of 65,536 ended 0.08 nats
//! short, and 245 smaller steps got there (README, "Online against batch EM"). On the GPU each link of the batch chain uploads the data again, so there
//! the batch wall time reported is that of one uninterrupted fit from the same start instead.

use std::io::Write;
use std::time::Instant;

use gmm_gpu::{CovarianceType, DataView, GaussianMixture, GmmParams, GpuContext, InitMethod, Online};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

struct Args {
    n: usize,
    d: usize,
    k: usize,
    heldout: usize,
    batch_size: usize,
    decay: f64,
    offset: f64,
    tol: f64,
    max_iter: usize,
    gpu: bool,
    init: InitMethod,
    seed: u64,
    out: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        n: 4_000_000,
        d: 16,
        k: 16,
        heldout: 200_000,
        batch_size: 16_384,
        decay: 0.7,
        offset: 2.0,
        tol: 1e-3,
        max_iter: 500,
        gpu: false,
        init: InitMethod::KMeansPlusPlus,
        seed: 1,
        out: "online_vs_batch.csv".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--n" => a.n = value.parse().map_err(|e| bad(&e))?,
            "--d" => a.d = value.parse().map_err(|e| bad(&e))?,
            "--k" => a.k = value.parse().map_err(|e| bad(&e))?,
            "--heldout" => a.heldout = value.parse().map_err(|e| bad(&e))?,
            "--batch-size" => a.batch_size = value.parse().map_err(|e| bad(&e))?,
            "--decay" => a.decay = value.parse().map_err(|e| bad(&e))?,
            "--offset" => a.offset = value.parse().map_err(|e| bad(&e))?,
            "--tol" => a.tol = value.parse().map_err(|e| bad(&e))?,
            "--max-iter" => a.max_iter = value.parse().map_err(|e| bad(&e))?,
            "--init" => a.init = value.parse().map_err(|e| bad(&e))?,
            "--seed" => a.seed = value.parse().map_err(|e| bad(&e))?,
            "--out" => a.out = value,
            "--backend" => {
                a.gpu = match value.as_str() {
                    "cpu" => false,
                    "gpu" => true,
                    _ => return Err(format!("--backend {value}: cpu or gpu")),
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(a)
}

/// `n` samples of `d` features from `k` separated blobs: centres uniform in [−8, 8]^d (about
/// 4·√d apart, far beyond the spreads), each feature's spread in [0.5, 1.5] per component, and
/// the components drawn with weights in [1, 2] (normalised). The same `seed` gives the same blobs;
/// `draw` picks the stream of samples (training or held-out).
fn blobs(n: usize, d: usize, k: usize, seed: u64, draw: u64) -> Vec<f64> {
    let mut shape = StdRng::seed_from_u64(seed);
    let centres: Vec<f64> = (0..k * d).map(|_| shape.random_range(-8.0..8.0)).collect();
    let spreads: Vec<f64> = (0..k * d).map(|_| shape.random_range(0.5..1.5)).collect();
    let weights: Vec<f64> = (0..k).map(|_| shape.random_range(1.0..2.0)).collect();
    let total: f64 = weights.iter().sum();
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(draw));
    let mut x = Vec::with_capacity(n * d);
    for _ in 0..n {
        let mut u = rng.random_range(0.0..total);
        let c = weights
            .iter()
            .position(|&w| {
                u -= w;
                u < 0.0
            })
            .unwrap_or(k - 1);
        for j in 0..d {
            let z: f64 = StandardNormal.sample(&mut rng);
            x.push(centres[c * d + j] + spreads[c * d + j] * z);
        }
    }
    x
}

/// One row of the curve.
struct Point {
    seen: usize,
    wall: f64,
    ll: f64,
    method: &'static str,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    let (n, d, k) = (a.n, a.d, a.k);
    println!(
        "N = {n}, d = {d}, K = {k} (full covariances), held-out {}, batches of {}, decay {}, offset {}, tol {}, init {:?}, backend {}",
        a.heldout,
        a.batch_size,
        a.decay,
        a.offset,
        a.tol,
        a.init,
        if a.gpu { "gpu" } else { "cpu" }
    );
    let t = Instant::now();
    let x = blobs(n, d, k, a.seed, 0);
    let y = blobs(a.heldout, d, k, a.seed, 1);
    let (data, test) = (DataView::from_f64(&x, d)?, DataView::from_f64(&y, d)?);
    println!("data generated in {:.1} s", t.elapsed().as_secs_f64());
    let ctx = if a.gpu { Some(GpuContext::new()?) } else { None };
    if let Some(ctx) = &ctx {
        println!("GPU: {}", ctx.adapter_name());
    }

    // The start: what an online fit would draw from its first mini-batch.
    let first = DataView::from_f64(&x[..a.batch_size.min(n) * d], d)?;
    let start = GmmParams::builder(k)
        .covariance_type(CovarianceType::Full)
        .init_method(a.init)
        .seed(a.seed)
        .max_iter(0)
        .build()?
        .fit(&first)?;
    let from_start = || {
        GmmParams::builder(k)
            .covariance_type(CovarianceType::Full)
            .weights_init(start.weights().to_vec())
            .means_init(start.means().to_vec())
            .precisions_init(start.precisions())
            .tol(a.tol)
    };
    let estimator = |params: GmmParams| match &ctx {
        Some(ctx) => GaussianMixture::on_gpu(params, ctx.clone()),
        None => GaussianMixture::new(params),
    };
    let start_ll = start.score(&test)?;
    let mut curve = vec![
        Point {
            seen: 0,
            wall: 0.0,
            ll: start_ll,
            method: "batch",
        },
        Point {
            seen: 0,
            wall: 0.0,
            ll: start_ll,
            method: "online",
        },
    ];

    // Batch EM, one warm-started iteration at a time.
    let mut batch = estimator(from_start().max_iter(1).warm_start(true).build()?);
    let (mut wall, mut iterations, mut converged) = (0.0, 0, false);
    while iterations < a.max_iter && !converged {
        let t = Instant::now();
        let m = batch.fit(&data)?;
        wall += t.elapsed().as_secs_f64();
        iterations += 1;
        converged = m.converged();
        let ll = m.score(&test)?;
        println!("batch iteration {iterations}: {wall:.2} s, held-out {ll:.6}");
        curve.push(Point {
            seen: iterations * n,
            wall,
            ll,
            method: "batch",
        });
    }
    let batch_ll = curve.last().expect("a batch point").ll;
    let mut batch_wall = wall;
    if let Some(ctx) = &ctx {
        let t = Instant::now();
        let whole = from_start().max_iter(a.max_iter).build()?.fit_on(ctx, &data)?;
        batch_wall = t.elapsed().as_secs_f64();
        println!(
            "uninterrupted GPU batch fit: {} iterations in {batch_wall:.2} s (the chain took {wall:.2} s)",
            whole.n_iter()
        );
    }

    // One pass of online EM.
    let schedule = Online::default()
        .batch_size(a.batch_size)
        .decay(a.decay)
        .offset(a.offset);
    let mut online = estimator(from_start().online(schedule).build()?);
    let mut wall = 0.0;
    for first in (0..n).step_by(a.batch_size) {
        let m = a.batch_size.min(n - first);
        let rows = DataView::from_f64(&x[first * d..(first + m) * d], d)?;
        let t = Instant::now();
        let model = online.partial_fit(&rows)?;
        wall += t.elapsed().as_secs_f64();
        let ll = model.score(&test)?;
        curve.push(Point {
            seen: first + m,
            wall,
            ll,
            method: "online",
        });
    }
    let online_ll = curve.last().expect("an online point").ll;
    let online_wall = wall;

    let mut csv = std::io::BufWriter::new(std::fs::File::create(&a.out)?);
    writeln!(csv, "samples_seen,wall_s,heldout_ll,method")?;
    for p in &curve {
        writeln!(csv, "{},{:.6},{:.10},{}", p.seen, p.wall, p.ll, p.method)?;
    }
    csv.flush()?;
    println!("curve written to {}", a.out);
    println!("start held-out mean log-likelihood: {start_ll:.6}");
    println!(
        "batch EM: {iterations} iterations ({}), held-out {batch_ll:.6}, {batch_wall:.2} s",
        if converged { "converged" } else { "NOT converged" }
    );
    println!(
        "online EM, one pass ({} batches): held-out {online_ll:.6}, {online_wall:.2} s",
        n.div_ceil(a.batch_size)
    );
    let gap = batch_ll - online_ll;
    println!(
        "difference (batch − online): {gap:.4} nats ({}); wall time online/batch: {:.3} ({})",
        if gap.abs() < 0.01 {
            "within 0.01"
        } else {
            "NOT within 0.01"
        },
        online_wall / batch_wall,
        if online_wall < batch_wall {
            "faster"
        } else {
            "NOT faster"
        }
    );
    Ok(())
}
