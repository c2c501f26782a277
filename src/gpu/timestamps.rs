//! Timestamp queries for `gmm bench`: a query set of start/end pairs, resolved into a buffer and
//! read back as seconds per pair.

use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::readback::read_back;
use crate::gpu::resources::{buffer, mappable};

/// `count` timestamps (pairs at 2i, 2i + 1) and the buffers that bring them back.
pub(crate) struct Timestamps {
    pub set: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    staging: wgpu::Buffer,
    count: u32,
}

impl Timestamps {
    /// At most `wgpu::QUERY_SET_MAX_QUERIES`; the device must have `TIMESTAMP_QUERY`.
    pub fn new(ctx: &GpuContext, label: &'static str, count: u32) -> Result<Self, GmmError> {
        let bytes = u64::from(count) * 8;
        let set = ctx.scoped(label, bytes, || {
            ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some(label),
                ty: wgpu::QueryType::Timestamp,
                count,
            })
        })?;
        let resolved = buffer(
            ctx,
            label,
            bytes,
            wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        )?;
        let staging = mappable(ctx, label, bytes)?;
        Ok(Self {
            set,
            resolved,
            staging,
            count,
        })
    }

    /// Writes of pair `i` for a compute pass.
    pub fn pass_writes(&self, i: u32) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        }
    }

    /// Resolves every timestamp and copies them for readback (encode after the timed passes).
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.set, 0..self.count, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.staging, 0, u64::from(self.count) * 8);
    }

    /// The first `pairs` pairs' durations in seconds (after the resolving submission).
    pub fn seconds(&self, ctx: &GpuContext, pairs: usize) -> Result<Vec<f64>, GmmError> {
        let mut ticks = vec![0u64; 2 * pairs];
        read_back(ctx, &self.staging, &mut ticks)?;
        let period = f64::from(ctx.queue.get_timestamp_period()) * 1e-9;
        Ok(ticks
            .chunks_exact(2)
            .map(|t| t[1].saturating_sub(t[0]) as f64 * period)
            .collect())
    }
}
