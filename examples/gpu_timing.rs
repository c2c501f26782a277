//! Times GPU EM iterations at a given size (a development aid): N, d, K and the covariance type
//! from the command line, e.g. `cargo run --release --example gpu_timing -- 200000 8 8 full`.

use std::time::Instant;

use gmm_gpu::{CovarianceType, DataView, GmmParams, GpuContext};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (n, d, k) = (arg(1, 200_000), arg(2, 8), arg(3, 8));
    let cov: CovarianceType = args.get(4).map_or(Ok(CovarianceType::Full), |s| s.parse())?;
    let x: Vec<f64> = (0..n * d)
        .map(|i| ((i * 7919) % 1000) as f64 / 100.0 + ((i / d) % k) as f64 * 3.0)
        .collect();
    let data = DataView::from_f64(&x, d)?;
    let ctx = GpuContext::new()?;
    let base = GmmParams::builder(k).covariance_type(cov).tol(0.0).reg_covar(1e-3);
    let init = base.clone().max_iter(0).build()?.fit(&data)?;
    let start = base
        .weights_init(init.weights().to_vec())
        .means_init(init.means().to_vec())
        .precisions_init(init.precisions());
    for (label, backend_gpu) in [("gpu", true), ("cpu", false)] {
        let mut times = Vec::new();
        for t in [1, 3] {
            let params = start.clone().max_iter(t).build()?;
            let began = Instant::now();
            let m = if backend_gpu {
                params.fit_on(&ctx, &data)?
            } else {
                params.fit(&data)?
            };
            times.push(began.elapsed().as_secs_f64());
            if t == 3 {
                println!("{label}: traffic {:?}", m.traffic());
            }
        }
        println!(
            "{label} N={n} d={d} K={k} {cov}: 1 iteration fit {:.3} s, per iteration {:.3} s",
            times[0],
            (times[1] - times[0]) / 2.0
        );
    }
    Ok(())
}
