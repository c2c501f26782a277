//! The GPU path: WGSL compute shaders on any wgpu adapter, behind the same EM driver as the CPU.
//!
//! Rooms: `plan` (chunk sizing), `frame` (centring and scaling, and back), `upload` (the host's
//! samples into segments), `pack` (mixture → model buffer), `resources` (buffers and bind groups), `passes` (encoding), `readback` (the f64 collect),
//! `stream` (uploading chunks each pass when the data does not fit), `precision` (fast, exact
//! or guarded arithmetic per fit), `probe` (whether the device's fma
//! rounds once), `rate` (whether its f64 beats two-float), `backend` (`impl Backend`);
//! for embedding, `samples` (where samples and outputs sit in a caller's buffers), `resident` (a
//! model on the device), `inference` (bound once, encoded into the caller's encoder) and `host`
//! (the host conveniences on that path); with
//! `layout` the one table host and shaders share (and, in tests, `translate`: every kernel in
//! Vulkan's, Metal's and DX12's languages).

pub(crate) mod backend;
mod context;
mod frame;
mod host;
mod inference;
pub(crate) mod layout;
pub(crate) mod online;
mod pack;
pub(crate) mod passes;
pub(crate) mod pipelines;
pub(crate) mod plan;
pub(crate) mod precision;
mod probe;
mod rate;
pub(crate) mod readback;
pub(crate) mod resident;
pub(crate) mod resources;
mod samples;
mod stream;
pub(crate) mod timestamps;
#[cfg(test)]
mod translate;
mod upload;

pub use context::GpuContext;
pub(crate) use host::outputs_on as host_outputs;
pub use inference::Inference;
pub use layout::{MAX_GPU_COMPONENTS, MAX_GPU_FEATURES, MAX_GPU_FEATURES_TRIANGULAR, max_gpu_features};
pub use plan::GpuKernels;
pub use precision::{GpuPrecision, PrecisionRecord};
pub use resident::GpuModel;
pub use samples::{DeviceSamples, InferOutputs, OutputBuffer};
pub use stream::StreamTimes;
pub use upload::f32_image;

/// The test adapter: with CI=true (or GMM_REQUIRE_GPU=1) a missing one is a failure, as in
/// tests/common; elsewhere the test says it did not run.
#[cfg(test)]
pub(crate) fn test_context() -> Option<GpuContext> {
    match GpuContext::new() {
        Ok(ctx) => Some(ctx),
        Err(e)
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
                || std::env::var("GMM_REQUIRE_GPU").is_ok_and(|v| v == "1") =>
        {
            panic!("a GPU is required here: {e}")
        }
        Err(e) => {
            eprintln!("NOT RUN: no GPU adapter ({e})");
            None
        }
    }
}
