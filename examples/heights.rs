//! The heights example of the source notes: 600 draws of N(176, 8²) and 400 of N(164, 6²), fitted
//! with two components; prints the true and fitted parameters side by side.

use gmm_gpu::{DataView, GmmParams};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = StdRng::seed_from_u64(2);
    let male = Normal::new(176.0, 8.0)?;
    let female = Normal::new(164.0, 6.0)?;
    let mut x: Vec<f64> = (0..600).map(|_| male.sample(&mut rng)).collect();
    x.extend((0..400).map(|_| female.sample(&mut rng)));

    let data = DataView::from_f64(&x, 1)?;
    let started = std::time::Instant::now();
    let model = GmmParams::builder(2)
        .tol(1e-8)
        .max_iter(1000)
        .seed(0)
        .build()?
        .fit(&data)?;
    let elapsed = started.elapsed();

    // Order the fitted components as the truth: the shorter group first.
    let mut order = [0, 1];
    order.sort_by(|&a, &b| model.means()[a].total_cmp(&model.means()[b]));
    println!("heights: 1000 samples, 2 components, backend cpu (f64)");
    println!(
        "{:<10} {:>8} {:>8} {:>8} | {:>8} {:>9} {:>8}",
        "component", "π true", "μ true", "σ true", "π fit", "μ fit", "σ fit"
    );
    for (truth, &k) in [(0.4, 164.0, 6.0), (0.6, 176.0, 8.0)].iter().zip(&order) {
        println!(
            "{:<10} {:>8.3} {:>8.2} {:>8.2} | {:>8.4} {:>9.4} {:>8.4}",
            k,
            truth.0,
            truth.1,
            truth.2,
            model.weights()[k],
            model.means()[k],
            model.covariances()[k].sqrt()
        );
    }
    println!(
        "converged: {} after {} iterations; lower bound {:.6}; {:.1} ms",
        model.converged(),
        model.n_iter(),
        model.lower_bound(),
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}
