//! `gmm compare`: fits on the GPU and on the CPU from the same start and reports how far apart
//! the two models are, as a table or JSON.

use std::time::{Duration, Instant};

use gmm_gpu::{BackendKind, GmmModel};
use serde_json::json;

use super::common::{build, fit_error, gpu_context, prepare_builder};
use super::output::{precision_line, say, seconds};
use crate::args::CompareArgs;
use crate::error::CliError;

/// Below this share of an array's largest |cpu| an entry's difference is measured against that
/// share, not against itself.
const REL_FLOOR: f64 = 1e-3;

/// Max absolute and max relative difference of `gpu` against the reference `cpu`. The relative
/// difference divides by |cpu|, floored at REL_FLOOR of the array's largest |cpu|: the GPU holds
/// the data in f32, so every entry carries an absolute error of about 1e-7 of the array's scale,
/// which against a near-zero entry of its own (an off-diagonal covariance at d = 256) would read
/// as a large relative one (tests/gpu.rs measures the same way).
fn diffs(gpu: &[f64], cpu: &[f64]) -> (f64, f64) {
    let scale = cpu.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let floor = (scale * REL_FLOOR).max(f64::MIN_POSITIVE);
    gpu.iter().zip(cpu).fold((0.0f64, 0.0f64), |(a, r), (g, c)| {
        let d = (g - c).abs();
        (a.max(d), r.max(d / c.abs().max(floor)))
    })
}

pub(super) fn compare(a: &CompareArgs) -> Result<(), CliError> {
    if a.spec.data.missing == gmm_gpu::Missing::Marginalise {
        return Err(CliError::MissingNotHere {
            command: "compare",
            why: "fits on the GPU, which does not marginalise missing values yet",
            fix: "fit on the CPU with gmm fit --missing marginalise",
        });
    }
    let (data, base) = prepare_builder(&a.spec, |b| b.n_init(1))?;
    let view = data.view()?;
    let ctx = gpu_context()?;
    let json_out = a.json;
    let a = &a.spec;
    // The start, computed once on the CPU: initialisation only (max_iter 0).
    let start = build(
        base.clone().max_iter(0).backend(BackendKind::Cpu),
        a.init_file.as_deref(),
    )?
    .fit(&view)
    .map_err(|e| fit_error(&data.path, e))?;
    let base = if a.init_resp.is_some() || a.init_labels.is_some() {
        // The user's responsibilities or labels: already one start for both sides.
        base
    } else if start.weight_prior().is_some() {
        // A variational fit takes no initial parameters: both sides start from the
        // responsibilities of the start's posterior.
        let resp = start.predict_proba(&view).map_err(|e| fit_error(&data.path, e))?;
        base.init_responsibilities(resp)
    } else {
        base.weights_init(start.weights().to_vec())
            .means_init(start.means().to_vec())
            .precisions_init(start.precisions())
    };
    let params = build(base.backend(BackendKind::Cpu), a.init_file.as_deref())?;
    let t = Instant::now();
    let cpu = params.fit(&view).map_err(|e| fit_error(&data.path, e))?;
    let cpu_time = t.elapsed();
    let t = Instant::now();
    let gpu = params.fit_on(&ctx, &view).map_err(|e| fit_error(&data.path, e))?;
    let gpu_time = t.elapsed();

    let w = diffs(gpu.weights(), cpu.weights());
    let m = diffs(gpu.means(), cpu.means());
    let c = diffs(gpu.covariances(), cpu.covariances());
    let adapter = ctx.adapter_name();
    let precision = gpu.gpu_precision();
    if json_out {
        let run = |m: &GmmModel, t: Duration| {
            let mut v = json!({
                "lower_bound": m.lower_bound().is_finite().then_some(m.lower_bound()),
                "n_iter": m.n_iter(),
                "converged": m.converged(),
                "seconds": t.as_secs_f64(),
            });
            // A MAP fit's lower bound is its log-posterior: its log-likelihood beside it.
            if m.prior().is_some() {
                v["log_likelihood"] = json!(m.log_likelihood());
            }
            // A variational fit's lower bound is its ELBO: say which weight prior.
            if let Some(w) = m.weight_prior() {
                v["weight_concentration_prior_type"] = json!(w.as_str());
            }
            // The GPU side's arithmetic: requested, used and each switch (none on the CPU side).
            if let Some(p) = m.gpu_precision() {
                v["precision"] = json!(p);
            }
            v
        };
        let report = json!({
            "data": data.path.display().to_string(),
            "n_samples": data.n_samples(),
            "n_features": data.n_features,
            "n_components": a.k,
            "covariance_type": a.covariance.as_str(),
            "adapter": adapter,
            "max_abs_diff": {"weights": w.0, "means": m.0, "covariances": c.0},
                        "max_rel_diff": {"weights": w.1, "means": m.1, "covariances": c.1},
            // Entries below this share of their array's largest are measured against it.
            "rel_floor": REL_FLOOR,
            "cpu": run(&cpu, cpu_time),
            "gpu": run(&gpu, gpu_time),
        });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        return say!("{text}");
    }
    say!(
        "gmm compare: {} samples x {} features from {}, K = {}, {} covariance, the same start on both",
        data.n_samples(),
        data.n_features,
        data.path.display(),
        a.k,
        a.covariance
    )?;
    say!("GPU: {adapter}")?;
    if let Some(p) = precision {
        say!("GPU precision: {}", precision_line(p))?;
        for why in &p.switches {
            say!("  switched to exact: {why}")?;
        }
    }
    say!("")?;
    say!("{:<12} {:>14} {:>14}", "GPU vs CPU", "max abs diff", "max rel diff")?;
    for (name, (abs, rel)) in [("weights", w), ("means", m), ("covariances", c)] {
        say!("{name:<12} {abs:>14.3e} {rel:>14.3e}")?;
    }
    say!("(relative to each entry, or to {REL_FLOOR:e} of its array's largest where that is more)")?;
    say!("")?;
    let gpu_arith = match precision.map(|p| p.used.as_str()) {
        Some("fast") | None => "GPU (f32)".to_string(),
        Some(used) => format!("GPU ({used})"),
    };
    say!("{:<12} {:>24} {:>24}", "", "CPU (f64)", gpu_arith)?;
    say!(
        "{:<12} {:>24} {:>24}",
        if cpu.weight_prior().is_some() {
            "ELBO"
        } else {
            "lower bound"
        },
        cpu.lower_bound(),
        gpu.lower_bound()
    )?;
    if cpu.prior().is_some() {
        say!(
            "{:<12} {:>24} {:>24}",
            "likelihood",
            cpu.log_likelihood(),
            gpu.log_likelihood()
        )?;
    }
    let it = |m: &GmmModel| format!("{}{}", m.n_iter(), if m.converged() { " (converged)" } else { "" });
    say!("{:<12} {:>24} {:>24}", "iterations", it(&cpu), it(&gpu))?;
    say!(
        "{:<12} {:>24} {:>24}",
        "wall time",
        seconds(cpu_time),
        seconds(gpu_time)
    )
}
