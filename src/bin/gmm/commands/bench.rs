//! `gmm bench`: each GPU kernel of an EM iteration on the standard cases, against this adapter's
//! own peaks, as tables or JSON lines (the library side is `gmm_gpu::bench`).

use gmm_gpu::GpuContext;
use gmm_gpu::bench::{self, CaseReport, Peaks, Timing};
use serde_json::json;

use super::output::say;
use crate::args::{BenchArgs, KernelsArg};
use crate::error::CliError;

pub(super) fn bench(a: &BenchArgs) -> Result<(), CliError> {
    let all = bench::standard_cases();
    for name in &a.case {
        if !all.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
            return Err(CliError::BenchCase { name: name.clone() });
        }
    }
    if let Some(s) = a.scale
        && !(s > 0.0 && s.is_finite())
    {
        return Err(CliError::BenchScale { value: s });
    }
    let cases: Vec<_> = all
        .into_iter()
        .filter(|c| a.case.is_empty() || a.case.iter().any(|n| c.name.eq_ignore_ascii_case(n)))
        .collect();
    let ctx = GpuContext::new().map_err(|source| CliError::Gpu { source })?;
    let ctx = if a.no_f64 { ctx.without_f64() } else { ctx };
    let info = ctx.adapter_info();
    let software = info.device_type == wgpu::DeviceType::Cpu;
    let scale = a.scale.unwrap_or(if software { 0.01 } else { 1.0 });
    let timing = if a.wall_clock {
        Timing::Wall
    } else {
        bench::best_timing(&ctx)
    };
    let peaks = bench::peaks::measure(&ctx, software, timing).map_err(|source| CliError::Gpu { source })?;
    let exact_fma = ctx.exact_fma().map_err(|source| CliError::Gpu { source })?;
    if !a.json {
        say!("gmm bench on {}", ctx.adapter_name())?;
        say!(
            "  kernel times: {}; N scaled by {scale}; medians of {} iterations",
            match timing {
                Timing::Timestamp => "timestamp queries, one compute pass per dispatch",
                Timing::Wall => "wall clock per submission (includes submission overhead)",
            },
            a.iters
        )?;
        say!(
            "  peaks (measured): copy {:.1} GB/s, FMA {:.1} GFLOP/s",
            peaks.copy_gbs,
            peaks.fma_gflops
        )?;
        say!(
            "  kernels: tree sums {}; error-free products {}",
            match ctx.subgroup_width() {
                Some(w) => format!("by {w}-wide subgroups"),
                None => "in workgroup memory".to_string(),
            },
            if exact_fma {
                "by fma (it rounds once here)"
            } else {
                "by Dekker's split (this fma is not exact)"
            }
        )?;
        say!("  bytes: each buffer region a kernel must move, once; flops: the algorithm's f32 arithmetic")?;
        print_ops()?;
    }
    let mut failed = Vec::new();
    for case in &cases {
        let outcome = bench::run_case(
            &ctx,
            case,
            scale,
            a.iters,
            &peaks,
            timing,
            bench::KernelChoice {
                kernels: a.kernels.into(),
                precision: a.precision.into(),
            },
        );
        match (&outcome, a.json) {
            (Ok(r), true) => say!("{}", case_json(&ctx, &peaks, r, a))?,
            (Ok(r), false) => print_table(r)?,
            (Err(e), true) => say!(
                "{}",
                json!({"adapter": ctx.adapter_name(), "case": case.name, "covariance": case.covariance.as_str(), "error": e.to_string()})
            )?,
            (Err(e), false) => say!("\ncase {} {}: failed: {e}", case.name, case.covariance)?,
        }
        if let Err(e) = outcome {
            failed.push(format!("{} {}: {e}", case.name, case.covariance));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::BenchFailed { failed })
    }
}

fn case_json(ctx: &GpuContext, peaks: &Peaks, r: &CaseReport, a: &BenchArgs) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["adapter"] = json!(ctx.adapter_name());
    v["subgroup_width"] = json!(ctx.subgroup_width());
    v["exact_fma"] = json!(ctx.exact_fma().ok());
    v["kernels_asked"] = json!(match a.kernels {
        KernelsArg::Auto => "auto",
        KernelsArg::Split => "split",
    });
    // What ran is the report's own "precision"; this is what was asked.
    v["precision"] = json!(r.precision);
    v["precision_asked"] = json!(gmm_gpu::GpuPrecision::from(a.precision).name());
    v["peaks"] = json!(peaks);
    // The hot loops' floating-point operations per useful flop, in the arithmetics that ran (both,
    // where Auto routed some components: "fast + exact (f64)").
    let ops: Vec<_> = bench::ops::count_all()
        .into_iter()
        .filter(|l| r.precision.split(" + ").any(|p| p == l.arithmetic))
        .collect();
    v["hot_loops"] = json!(ops);
    v
}

/// Each kernel's hot loop in each arithmetic: floating-point operations per useful flop, counted
/// from the compiled shaders (`gmm_gpu::bench::ops`): the same on any GPU.
fn print_ops() -> Result<(), CliError> {
    let all = bench::ops::count_all();
    let arithmetics: Vec<&str> = all.iter().fold(Vec::new(), |mut v, l| {
        if !v.contains(&l.arithmetic) {
            v.push(l.arithmetic);
        }
        v
    });
    say!(
        "  hot loops, floating-point ops per useful flop (loads from workgroup or storage memory per flop), from the compiled shaders:"
    )?;
    say!(
        "    {:<13} {:>6} {}",
        "kernel",
        "flops",
        arithmetics.iter().map(|a| format!("{a:>26}")).collect::<String>()
    )?;
    for kernel in all.iter().filter(|l| l.arithmetic == arithmetics[0]) {
        let cells: String = arithmetics
            .iter()
            .map(|a| {
                let l = all.iter().find(|l| l.kernel == kernel.kernel && l.arithmetic == *a);
                l.map_or(format!("{:>26}", "-"), |l| {
                    format!("{:>9} = {:>6.2} ({:.3})", l.ops, l.ops_per_flop(), l.loads_per_flop())
                })
            })
            .collect();
        say!("    {:<13} {:>6} {cells}", kernel.kernel, kernel.flops)?;
    }
    Ok(())
}

fn print_table(r: &CaseReport) -> Result<(), CliError> {
    say!(
        "\ncase {} {}: N = {}, d = {}, K = {}, {} kernels, {} precision{}",
        r.case,
        r.covariance,
        r.n,
        r.d,
        r.k,
        if r.fused { "fused" } else { "split" },
        r.precision,
        if r.reference.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.reference)
        }
    )?;
    say!(
        "  {:<10} {:>10} {:>10} {:>7} {:>10} {:>7}",
        "kernel",
        "ms",
        "GB/s",
        "% copy",
        "GFLOP/s",
        "% FMA"
    )?;
    for k in &r.kernels {
        say!(
            "  {:<10} {:>10.3} {:>10.2} {:>7.1} {:>10.2} {:>7.1}",
            k.name,
            k.ms,
            k.gbs,
            k.pct_copy,
            k.gflops,
            k.pct_fma
        )?;
    }
    say!("  {:<10} {:>10.3}", "kernels", r.kernels_ms)?;
    say!(
        "  {:<10} {:>10.3}  (model upload, kernels, readback, f64 collect and host M-step)",
        "iteration",
        r.iteration_ms
    )
}
