//! Criterion benchmark of one EM iteration (E-step, statistics and M-step) of the CPU path at
//! N = 100,000, d = 8, K = 8, for full and diagonal covariances.

use criterion::{Criterion, criterion_group, criterion_main};
use gmm_gpu::{CovarianceType, DataView, GmmParams};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

const N: usize = 100_000;
const D: usize = 8;
const K: usize = 8;

fn data() -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(1);
    (0..N * D)
        .map(|i| {
            let k = (i / D) % K;
            let z: f64 = StandardNormal.sample(&mut rng);
            z + 4.0 * ((k * 7 + i % D) % 5) as f64
        })
        .collect()
}

/// Parameters that start EM exactly where we say, so that max_iter = 1 is one iteration and nothing else.
fn one_iteration(cov: CovarianceType) -> GmmParams {
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
        .max_iter(1)
        .tol(0.0)
        .weights_init(vec![1.0 / K as f64; K])
        .means_init(means)
        .precisions_init(precisions)
        .build()
        .expect("valid parameters")
}

fn bench(c: &mut Criterion) {
    let x = data();
    let view = DataView::from_f64(&x, D).expect("finite data");
    let mut group = c.benchmark_group("cpu_em_iteration_n100k_d8_k8");
    group.sample_size(20);
    for cov in [CovarianceType::Full, CovarianceType::Diag] {
        let params = one_iteration(cov);
        group.bench_function(cov.as_str(), |b| b.iter(|| params.fit(&view).expect("fit")));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
