//! The GPU path: WGSL compute shaders on any wgpu adapter, behind the same EM driver as the CPU.

pub(crate) mod backend;
mod context;
pub(crate) mod layout;
pub(crate) mod pipelines;

pub use context::GpuContext;
pub use layout::{MAX_GPU_COMPONENTS, MAX_GPU_FEATURES};
