//! Fits mixtures to synthetic 1-D and 2-D data and draws them with the `gmm plot` module (PNG and SVG)
//! into the directory given as the first argument (default: the current directory).

#[path = "../src/bin/gmm/plot.rs"]
mod plot;

use std::path::PathBuf;

use gmm_gpu::{DataView, GmmParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    // Two well separated 2-D blobs and a third elongated one, from a fixed-seed mixture.
    let truth = GmmParams::builder(3)
        .weights_init(vec![0.3, 0.3, 0.4])
        .means_init(vec![-4.0, 0.0, 3.0, 3.0, 2.0, -3.0])
        .precisions_init(vec![1.0, 0.0, 0.0, 1.0, 2.0, -1.2, -1.2, 2.0, 0.5, 0.0, 0.0, 4.0])
        .max_iter(0)
        .build()?;
    let seed_data = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0];
    let model0 = truth.fit(&DataView::from_f64(&seed_data, 2)?)?;
    let (x, _) = model0.sample(1500, 7)?;
    let data = DataView::from_f64(&x, 2)?;
    let model = GmmParams::builder(3).seed(1).build()?.fit(&data)?;
    plot::draw(&model, &data, 0, 1, plot::Format::Png, &dir.join("probe_2d.png"))?;
    plot::draw(&model, &data, 0, 1, plot::Format::Svg, &dir.join("probe_2d.svg"))?;

    // Heights-like 1-D data.
    let heights: Vec<f64> = x.chunks(2).map(|r| 170.0 + 3.0 * r[0]).collect();
    let data1 = DataView::from_f64(&heights, 1)?;
    let model1 = GmmParams::builder(2).seed(1).build()?.fit(&data1)?;
    plot::draw(&model1, &data1, 0, 0, plot::Format::Png, &dir.join("probe_1d.png"))?;
    plot::draw(&model1, &data1, 0, 0, plot::Format::Svg, &dir.join("probe_1d.svg"))?;
    println!(
        "wrote probe_2d.png, probe_2d.svg, probe_1d.png, probe_1d.svg to {}",
        dir.display()
    );
    Ok(())
}
