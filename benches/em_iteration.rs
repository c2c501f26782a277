//! Criterion benchmarks of EM iterations (E-step, statistics and M-step) at d = 8, K = 8, full and
//! diagonal covariances: the CPU path at N = 100,000 and 1,000,000, and the GPU path at 1,000,000.
//!
//! A GPU fit also uploads the data and builds its buffers, so the GPU group times fits of 1 and of
//! 3 iterations from the same start: one iteration costs (t3 − t1) / 2.

use criterion::{Criterion, criterion_group, criterion_main};
use gmm_gpu::{CovarianceType, DataView, GmmParams, GpuContext};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

const D: usize = 8;
const K: usize = 8;

fn data(n: usize) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(1);
    (0..n * D)
        .map(|i| {
            let k = (i / D) % K;
            let z: f64 = StandardNormal.sample(&mut rng);
            z + 4.0 * ((k * 7 + i % D) % 5) as f64
        })
        .collect()
}

/// Parameters that start EM exactly where we say, so that max_iter = T is T iterations and nothing else.
fn iterations(cov: CovarianceType, t: usize) -> GmmParams {
    let means: Vec<f64> = (0..K * D)
        .map(|i| 4.0 * (((i / D) * 7 + i % D) % 5) as f64 + 0.3)
        .collect();
    let precisions = match cov {
        CovarianceType::Full => (0..K)
            .flat_map(|_| (0..D * D).map(|i| if i % (D + 1) == 0 { 1.0 } else { 0.0 }))
            .collect(),
        CovarianceType::Tied => (0..D * D).map(|i| if i % (D + 1) == 0 { 1.0 } else { 0.0 }).collect(),
        CovarianceType::Diag => vec![1.0; K * D],
        CovarianceType::Spherical => vec![1.0; K],
    };
    GmmParams::builder(K)
        .covariance_type(cov)
        .max_iter(t)
        .tol(0.0)
        .weights_init(vec![1.0 / K as f64; K])
        .means_init(means)
        .precisions_init(precisions)
        .build()
        .expect("valid parameters")
}

fn bench_cpu(c: &mut Criterion) {
    for n in [100_000, 1_000_000] {
        let x = data(n);
        let view = DataView::from_f64(&x, D).expect("finite data");
        let mut group = c.benchmark_group(format!("cpu_em_iteration_n{}k_d8_k8", n / 1000));
        group.sample_size(10);
        for cov in [CovarianceType::Full, CovarianceType::Diag] {
            let params = iterations(cov, 1);
            group.bench_function(cov.as_str(), |b| b.iter(|| params.fit(&view).expect("fit")));
        }
        group.finish();
    }
}

fn bench_gpu(c: &mut Criterion) {
    let ctx = match GpuContext::new() {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("gpu benchmarks not run: {e}");
            return;
        }
    };
    eprintln!("gpu benchmarks on {}", ctx.adapter_name());
    let x = data(1_000_000);
    let view = DataView::from_f64(&x, D).expect("finite data");
    let mut group = c.benchmark_group("gpu_em_n1000k_d8_k8");
    group.sample_size(10);
    for cov in [CovarianceType::Full, CovarianceType::Diag] {
        for t in [1, 3] {
            let params = iterations(cov, t);
            group.bench_function(format!("{cov}_{t}_iterations"), |b| {
                b.iter(|| params.fit_on(&ctx, &view).expect("fit"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_cpu, bench_gpu);
criterion_main!(benches);
