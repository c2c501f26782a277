//! Inference throughput (issue 26): labels, log-densities and responsibilities at 1M×8 with K = 8
//! full and 1M×32 with K = 64 diagonal, through the encode path (bound once, recorded into an
//! encoder), the host conveniences (`predict_on` and the rest) and the f64 CPU, side by side in
//! one run; with the encode path's bytes per sample (`bench::cost::InferShape`) and GB/s.
//!
//! `cargo bench --bench infer -- [--scale S] [--iters N]`: S multiplies N (default 1 on a hardware
//! adapter, 0.1 on a software one such as llvmpipe), N timed runs per path (median; default 5).

use gmm_gpu::GpuContext;
use gmm_gpu::bench::infer::{copy_bandwidth, infer_cases, run_infer_case};

fn arg(name: &str) -> Option<f64> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1)?.parse().ok()
}

fn main() -> Result<(), gmm_gpu::GmmError> {
    let ctx = GpuContext::new()?;
    let software = ctx.adapter_info().device_type == wgpu::DeviceType::Cpu;
    let scale = arg("--scale").unwrap_or(if software { 0.1 } else { 1.0 });
    let iters = arg("--iters").map_or(5, |v| v as usize);
    println!(
        "inference throughput on {} (N × {scale}, median of {iters})",
        ctx.adapter_name()
    );
    // The memory-bound target: the encode path's bytes per second against a plain copy's.
    let copy = copy_bandwidth(&ctx, (256u64 << 20).min(ctx.device().limits().max_buffer_size), iters)?;
    println!("copy bandwidth (256 MiB buffer to buffer, read + write): {copy:.1} GB/s");
    println!();
    println!(
        "| case | output | N | encode path | host predict_on | CPU (f64) | encode / CPU | bytes/sample | encode GB/s | of copy | encode arithmetic, path |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for case in infer_cases() {
        for r in run_infer_case(&ctx, &case, scale, iters)? {
            println!(
                "| {} | {} | {} | {:.3e}/s | {:.3e}/s | {:.3e}/s | {:.3}× | {} | {:.2} | {:.1}% | {}, {} |",
                r.case,
                r.output.name(),
                r.n,
                r.rate(r.encode_s),
                r.rate(r.host_s),
                r.rate(r.cpu_s),
                r.cpu_s / r.encode_s,
                r.bytes_per_sample,
                r.encode_gb_s(),
                100.0 * r.encode_gb_s() / copy,
                r.arithmetic,
                if r.direct { "direct" } else { "two-pass" },
            );
        }
    }
    Ok(())
}
