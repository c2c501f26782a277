//! `gmm info`: the GPU adapters wgpu finds, with their limits, and the kernels gmm would build on
//! each: a device is created on every adapter (as a fit creates it) and the fma and f64-rate
//! probes run on it, so the report is what a fit there would do, not a guess from the features.

use gmm_gpu::{GmmError, GpuContext, GpuPrecision};

use super::output::say;
use crate::error::CliError;

pub(super) fn info() -> Result<(), CliError> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    if adapters.is_empty() {
        say!("no GPU adapter found on backends {backends:?}.")?;
        say!("gmm still runs on the CPU (--backend cpu). For a GPU path without a GPU on Linux, install")?;
        say!("Mesa's software Vulkan driver: sudo apt-get install mesa-vulkan-drivers libvulkan1")?;
        say!("(and check the WGPU_BACKEND and WGPU_ADAPTER_NAME environment variables).")?;
        return Ok(());
    }
    say!("{} GPU adapter(s) on backends {backends:?}:", adapters.len())?;
    for (i, adapter) in adapters.iter().enumerate() {
        let info = adapter.get_info();
        let l = adapter.limits();
        say!("")?;
        say!("[{i}] {}", info.name)?;
        say!("    backend                               {:?}", info.backend)?;
        say!("    device type                           {:?}", info.device_type)?;
        say!(
            "    driver                                {} {}",
            info.driver,
            info.driver_info
        )?;
        say!(
            "    max_storage_buffer_binding_size       {}",
            l.max_storage_buffer_binding_size
        )?;
        say!("    max_buffer_size                       {}", l.max_buffer_size)?;
        say!(
            "    max_compute_workgroups_per_dimension  {}",
            l.max_compute_workgroups_per_dimension
        )?;
        say!(
            "    max_compute_workgroup_storage_size    {}",
            l.max_compute_workgroup_storage_size
        )?;
        say!(
            "    max_compute_invocations_per_workgroup {}",
            l.max_compute_invocations_per_workgroup
        )?;
        let f = adapter.features();
        say!(
            "    timestamp queries                     {}",
            if f.contains(wgpu::Features::TIMESTAMP_QUERY) {
                "yes"
            } else {
                "no"
            }
        )?;
        say!(
            "    subgroups                             {}",
            if f.contains(wgpu::Features::SUBGROUP) {
                format!("yes, {} to {} wide", info.subgroup_min_size, info.subgroup_max_size)
            } else {
                "no".to_string()
            }
        )?;
        // A device that cannot be made, or a probe that fails, is said in its place; the next
        // adapter follows.
        match kernels(adapter.clone()) {
            Ok(lines) => {
                for line in lines {
                    say!("    {line}")?;
                }
            }
            Err(e) => say!("    kernels                               none here: {e}")?,
        }
    }
    Ok(())
}

/// The kernels a fit on `adapter` would build and the arithmetic each precision starts in, from a
/// device made there as a fit makes it: one line each, label and value.
fn kernels(adapter: wgpu::Adapter) -> Result<Vec<String>, GmmError> {
    let ctx = GpuContext::from_adapter(adapter)?;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let line = |label: &str, value: &str| format!("{label:<37} {value}");
    let mut lines = vec![
        line("shader f64", yes_no(ctx.has_f64())),
        line(
            "kernel subgroup width",
            &match ctx.subgroup_width() {
                Some(w) => w.to_string(),
                None => "none (tree sums in workgroup memory)".to_string(),
            },
        ),
    ];
    let fma = ctx.exact_fma()?;
    let how = if fma { "by fma" } else { "by Dekker's split" };
    lines.push(line(
        "exact fma",
        &format!("{} (error-free products {how})", yes_no(fma)),
    ));
    for precision in [GpuPrecision::Auto, GpuPrecision::Fast, GpuPrecision::Exact] {
        let label = format!("precision {} starts in", precision.name());
        lines.push(line(&label, ctx.starting_arithmetic(precision)?));
    }
    Ok(lines)
}
