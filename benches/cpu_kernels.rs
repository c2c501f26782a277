//! Criterion benchmarks of the CPU block kernels, single-threaded and one at a time: the E-step
//! (log-densities, responsibilities and log p(x)) and the statistics (S0, S1, S2), in samples per
//! second, at d = 8, K = 8 and d = 32, K = 16, full and diagonal covariances.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gmm_gpu::bench::KernelBench;
use gmm_gpu::{CovarianceType, DataView, GmmParams};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

const N: usize = 100_000;

/// Seeded blobs: K centres on a coarse grid, unit noise.
fn data(n: usize, d: usize, k: usize) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(1);
    (0..n * d)
        .map(|i| {
            let z: f64 = StandardNormal.sample(&mut rng);
            z + 4.0 * ((((i / d) % k) * 7 + i % d) % 5) as f64
        })
        .collect()
}

fn bench_kernels(c: &mut Criterion) {
    for (d, k) in [(8, 8), (32, 16)] {
        let x = data(N, d, k);
        let view = DataView::from_f64(&x, d).expect("finite data");
        for cov in [CovarianceType::Full, CovarianceType::Diag] {
            let model = GmmParams::builder(k)
                .covariance_type(cov)
                .max_iter(1)
                .tol(0.0)
                .build()
                .expect("valid parameters")
                .fit(&view)
                .expect("fit");
            let mut kb = KernelBench::new(&model, &x);
            let mut group = c.benchmark_group(format!("cpu_kernels_n{}k_d{d}_k{k}_{cov}", N / 1000));
            group.throughput(Throughput::Elements(N as u64));
            group.sample_size(10);
            group.bench_function("estep", |b| b.iter(|| kb.estep()));
            kb.estep();
            group.bench_function("statistics", |b| b.iter(|| kb.statistics()));
            group.finish();
        }
    }
}

criterion_group!(benches, bench_kernels);
criterion_main!(benches);
