//! The compute pipelines, built once per GPU context and arithmetic from the three shader modules,
//! with bind group layouts made from the one binding table in src/gpu/layout.rs.

use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::layout::{self, Access, Binding, CHUNK_BINDINGS, COMBINE_BINDINGS, INFER_BINDINGS};
use crate::gpu::precision::Arith;

/// The bind group layouts, made once per context from the binding table.
#[derive(Debug)]
pub(crate) struct Layouts {
    pub chunk: wgpu::BindGroupLayout,
    pub combine: wgpu::BindGroupLayout,
    pub infer: wgpu::BindGroupLayout,
}

impl Layouts {
    pub fn new(ctx: &GpuContext) -> Result<Self, GmmError> {
        let device = &ctx.device;
        ctx.scoped("gmm bind group layouts", 0, || Self {
            chunk: device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("gmm chunk layout"),
                entries: &CHUNK_BINDINGS.map(|b| layout_entry(&b)),
            }),
            combine: device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("gmm combine layout"),
                entries: &COMBINE_BINDINGS.map(|b| layout_entry(&b)),
            }),
            infer: device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("gmm inference layout"),
                entries: &INFER_BINDINGS.map(|b| layout_entry(&b)),
            }),
        })
    }
}

/// Every pipeline of one arithmetic and the two bind group layouts they share.
#[derive(Debug)]
pub(crate) struct Pipelines {
    pub chunk_layout: wgpu::BindGroupLayout,
    pub combine_layout: wgpu::BindGroupLayout,
    pub logprob: wgpu::ComputePipeline,
    pub logprob_diag: wgpu::ComputePipeline,
    pub logprob_tri: wgpu::ComputePipeline,
    pub normalise: wgpu::ComputePipeline,
    pub assign: wgpu::ComputePipeline,
    pub random: wgpu::ComputePipeline,
    pub stats: wgpu::ComputePipeline,
    pub stats_tri: wgpu::ComputePipeline,
    pub combine: wgpu::ComputePipeline,
    pub fused: wgpu::ComputePipeline,
}

/// A compute pipeline of `module`'s `entry_point` on `layout`.
fn compute_pipeline(
    device: &wgpu::Device,
    label: &'static str,
    layout: &wgpu::PipelineLayout,
    module: &wgpu::ShaderModule,
    entry_point: &'static str,
) -> wgpu::ComputePipeline {
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: Some(layout),
        module,
        entry_point: Some(entry_point),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &[],
            // Every workgroup variable is written before it is read.
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    })
}

fn layout_entry(b: &Binding) -> wgpu::BindGroupLayoutEntry {
    use wgpu::BufferBindingType::{Storage, Uniform};
    wgpu::BindGroupLayoutEntry {
        binding: b.binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: match b.access {
                Access::Uniform => Uniform,
                Access::Read => Storage { read_only: true },
                Access::ReadWrite => Storage { read_only: false },
            },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// Bind group entries in the table's order.
fn entries<'r, const N: usize>(
    table: &[Binding; N],
    resources: [wgpu::BindingResource<'r>; N],
) -> [wgpu::BindGroupEntry<'r>; N] {
    let mut resources = resources.into_iter();
    table.map(|b| wgpu::BindGroupEntry {
        binding: b.binding,
        resource: resources.next().expect("one resource per binding"),
    })
}

impl Pipelines {
    /// The pipelines of one arithmetic, on the context's bind group layouts (shared by every
    /// arithmetic, so that a fit can switch kernels on the same bind groups).
    pub fn new(ctx: &GpuContext, layouts: &Layouts, arith: Arith) -> Result<Self, GmmError> {
        let build = layout::Build {
            subgroup: ctx.subgroup_width(),
            exact_fma: ctx.exact_fma()?,
            arith,
        };
        ctx.scoped("gmm pipelines", 0, || Self::build(&ctx.device, layouts, build))
    }

    /// The entries of a chunk bind group, from resources in the order of `CHUNK_BINDINGS`.
    pub fn chunk_entries(resources: [wgpu::BindingResource<'_>; 10]) -> [wgpu::BindGroupEntry<'_>; 10] {
        entries(&CHUNK_BINDINGS, resources)
    }

    /// The entries of an inference bind group, in the order of `INFER_BINDINGS`.
    pub fn infer_entries(resources: [wgpu::BindingResource<'_>; 10]) -> [wgpu::BindGroupEntry<'_>; 10] {
        entries(&INFER_BINDINGS, resources)
    }

    /// The entries of a combine bind group, in the order of `COMBINE_BINDINGS`.
    pub fn combine_entries(resources: [wgpu::BindingResource<'_>; 3]) -> [wgpu::BindGroupEntry<'_>; 3] {
        entries(&COMBINE_BINDINGS, resources)
    }

    fn build(device: &wgpu::Device, layouts: &Layouts, build: layout::Build) -> Self {
        let chunk_layout = layouts.chunk.clone();
        let combine_layout = layouts.combine.clone();
        let layout_of = |label, bgl: &wgpu::BindGroupLayout| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(bgl)],
                immediate_size: 0,
            })
        };
        let main = layout_of("gmm chunk pipeline layout", &chunk_layout);
        let combine = layout_of("gmm combine pipeline layout", &combine_layout);
        let estep = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("estep.wgsl"),
            source: wgpu::ShaderSource::Wgsl(layout::estep_source(build).into()),
        });
        let reduce = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("reduce.wgsl"),
            source: wgpu::ShaderSource::Wgsl(layout::reduce_source(build).into()),
        });
        let fused = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("fused.wgsl"),
            source: wgpu::ShaderSource::Wgsl(layout::fused_source(build).into()),
        });
        let pipeline =
            |label, layout, module, entry_point| compute_pipeline(device, label, layout, module, entry_point);
        Self {
            logprob: pipeline("gmm logprob", &main, &estep, "logprob"),
            logprob_diag: pipeline("gmm logprob_diag", &main, &estep, "logprob_diag"),
            logprob_tri: pipeline("gmm logprob_tri", &main, &estep, "logprob_tri"),
            normalise: pipeline("gmm normalise", &main, &estep, "normalise"),
            assign: pipeline("gmm assign", &main, &estep, "assign"),
            random: pipeline("gmm random", &main, &estep, "random"),
            stats: pipeline("gmm stats", &main, &reduce, "stats"),
            stats_tri: pipeline("gmm stats_tri", &main, &reduce, "stats_tri"),
            combine: pipeline("gmm combine", &combine, &reduce, "combine"),
            fused: pipeline("gmm fused", &main, &fused, "fused"),
            chunk_layout,
            combine_layout,
        }
    }
}

/// The inference pipelines of one arithmetic (shaders/infer.wgsl), built on a context's first
/// inference in that arithmetic, apart from the fit's so that fits never compile them.
#[derive(Debug)]
pub(crate) struct InferPipelines {
    pub infer: wgpu::ComputePipeline,
    pub infer_h: wgpu::ComputePipeline,
}

impl InferPipelines {
    pub fn new(ctx: &GpuContext, layouts: &Layouts, arith: Arith) -> Result<Self, GmmError> {
        let build = layout::Build {
            subgroup: ctx.subgroup_width(),
            exact_fma: ctx.exact_fma()?,
            arith,
        };
        let device = &ctx.device;
        ctx.scoped("gmm inference pipelines", 0, || {
            let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("gmm inference pipeline layout"),
                bind_group_layouts: &[Some(&layouts.infer)],
                immediate_size: 0,
            });
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("infer.wgsl"),
                source: wgpu::ShaderSource::Wgsl(layout::infer_source(build).into()),
            });
            let pipeline = |label, entry_point| compute_pipeline(device, label, &layout, &module, entry_point);
            Self {
                infer: pipeline("gmm infer", "infer"),
                infer_h: pipeline("gmm infer_h", "infer_h"),
            }
        })
    }
}
