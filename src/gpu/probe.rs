//! Whether the device's `fma` rounds once, probed before the kernels are built: shaders/probe.wgsl
//! runs `two_prod` with fma on pairs whose exact products are known here in f64. WGSL lets fma
//! round twice (an unfused multiply-add), which would lose a product's error term silently, so the
//! kernels use it only where every pair comes back exact; else Dekker's split, which is exact
//! anywhere. Both give the same (p, e), so the choice changes speed, never a result.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use wgpu::BufferUsages as Usage;

use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::layout::{self, WG};
use crate::gpu::readback::read_back;
use crate::gpu::resources::{buffer, mappable, storage};

/// Pairs probed: enough that an fma rounding twice, which loses the error of every product that is
/// not exact in f32 (nearly all of these), cannot pass by chance.
const PAIRS: usize = 256;

/// The probe's pairs: seeded, 24-bit significands at exponents from −20 to 20 (products far from
/// overflow and from subnormals, so every error term is a normal f32), and one square of
/// 1 + 2⁻¹² (an error of exactly 2⁻²⁴).
pub(crate) fn pairs() -> Vec<[f32; 2]> {
    let mut rng = StdRng::seed_from_u64(0x05ee_df3a);
    let value = |rng: &mut StdRng| {
        let m = rng.random_range(1.0f32..2.0);
        let e = rng.random_range(-20i32..=20);
        let s = if rng.random::<bool>() { -1.0 } else { 1.0 };
        s * m * 2f32.powi(e)
    };
    let mut p: Vec<[f32; 2]> = (1..PAIRS).map(|_| [value(&mut rng), value(&mut rng)]).collect();
    let near_one = 1.0 + 2f32.powi(-12);
    p.push([near_one, near_one]);
    p
}

/// a·b as (p, e): p the f32 product (Rust's is correctly rounded), e = a·b − p exactly (in f64 the
/// product of two 24-bit significands is exact, and so is its difference from p, which fits an
/// f32).
pub(crate) fn exact_product(a: f32, b: f32) -> [f32; 2] {
    let p = a * b;
    [p, (f64::from(a) * f64::from(b) - f64::from(p)) as f32]
}

/// Runs the probe: true if the device's `two_prod` with fma gives every pair's exact (p, e).
pub(crate) fn fma_is_exact(ctx: &GpuContext) -> Result<bool, GmmError> {
    let pairs = pairs();
    let bytes = (pairs.len() * 8) as u64;
    let device = &ctx.device;
    let pipeline = ctx.scoped("gmm fma probe pipeline", 0, || {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("probe.wgsl"),
            source: wgpu::ShaderSource::Wgsl(layout::probe_source().into()),
        });
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("gmm fma probe"),
            layout: None,
            module: &module,
            entry_point: Some("probe_fma"),
            compilation_options: Default::default(),
            cache: None,
        })
    })?;
    // Plain buffers filled by the queue (not created mapped: wgpu panics mapping a buffer of a
    // lost device, where these calls must come back as typed errors).
    let input = storage(ctx, "gmm fma probe pairs", bytes, Usage::COPY_DST)?;
    let one = buffer(ctx, "gmm fma probe one", 16, Usage::UNIFORM | Usage::COPY_DST)?;
    let products = storage(ctx, "gmm fma probe products", bytes, Usage::COPY_SRC)?;
    let readback = mappable(ctx, "gmm fma probe readback", bytes)?;
    let bind = ctx.scoped("gmm fma probe bind group", 0, || {
        ctx.queue.write_buffer(&input, 0, bytemuck::cast_slice(&pairs));
        ctx.queue.write_buffer(&one, 0, bytemuck::cast_slice(&[1.0f32; 4]));
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("gmm fma probe"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 20,
                    resource: input.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 21,
                    resource: products.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 22,
                    resource: one.as_entire_binding(),
                },
            ],
        })
    })?;
    ctx.scoped("gmm fma probe run", 0, || {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("gmm fma probe"),
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("gmm fma probe"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(pairs.len().div_ceil(WG as usize) as u32, 1, 1);
        }
        encoder.copy_buffer_to_buffer(&products, 0, &readback, 0, bytes);
        ctx.queue.submit([encoder.finish()]);
    })?;
    let mut got = vec![[0f32; 2]; pairs.len()];
    read_back(ctx, &readback, &mut got)?;
    let exact = pairs
        .iter()
        .zip(&got)
        .all(|(&[a, b], g)| exact_product(a, b).map(f32::to_bits) == g.map(f32::to_bits));
    log::info!(
        "GPU fma on {}: {}",
        ctx.adapter_name(),
        if exact {
            "rounds once; error-free products use it"
        } else {
            "not exact; error-free products use Dekker's split"
        }
    );
    Ok(exact)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe's expected values, by hand: (1 + 2⁻¹²)² = 1 + 2⁻¹¹ + 2⁻²⁴, whose f32 is 1 + 2⁻¹¹ (the
    /// 2⁻²⁴ falls below its last bit, 2⁻²³, and rounds to even), leaving e = 2⁻²⁴; and every
    /// pair's p + e is its product in f64, with e not zero for nearly all (so an fma that rounds
    /// twice, giving e = 0, fails the probe).
    #[test]
    fn the_probe_knows_each_exact_product() {
        let x = 1.0 + 2f32.powi(-12);
        assert_eq!(exact_product(x, x), [1.0 + 2f32.powi(-11), 2f32.powi(-24)]);
        let pairs = pairs();
        assert_eq!(pairs.len(), PAIRS);
        let mut inexact = 0;
        for &[a, b] in &pairs {
            let [p, e] = exact_product(a, b);
            assert_eq!(f64::from(p) + f64::from(e), f64::from(a) * f64::from(b), "{a} × {b}");
            inexact += usize::from(e != 0.0);
        }
        assert!(
            inexact > PAIRS * 9 / 10,
            "only {inexact} of {PAIRS} products carry an error term"
        );
    }
}
