//! The compute pipelines, built once per GPU context from the two shader modules.

use crate::error::GmmError;
use crate::gpu::GpuContext;
use crate::gpu::layout;

/// Every pipeline and the two bind group layouts they share.
#[derive(Debug)]
pub(crate) struct Pipelines {
    pub main_layout: wgpu::BindGroupLayout,
    pub combine_layout: wgpu::BindGroupLayout,
    pub logprob: wgpu::ComputePipeline,
    pub normalise: wgpu::ComputePipeline,
    pub assign: wgpu::ComputePipeline,
    pub random: wgpu::ComputePipeline,
    pub stats: wgpu::ComputePipeline,
    pub combine: wgpu::ComputePipeline,
}

fn entry(binding: u32, ty: wgpu::BufferBindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl Pipelines {
    pub fn new(ctx: &GpuContext) -> Result<Self, GmmError> {
        ctx.scoped("gmm pipelines", 0, || Self::build(&ctx.device))
    }

    fn build(device: &wgpu::Device) -> Self {
        use wgpu::BufferBindingType::{Storage, Uniform};
        let ro = Storage { read_only: true };
        let rw = Storage { read_only: false };
        // The bindings of shaders/estep.wgsl and shaders/reduce.wgsl (group 0).
        let main_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gmm chunk layout"),
            entries: &[
                entry(0, Uniform),
                entry(1, ro),
                entry(2, ro),
                entry(3, rw),
                entry(4, rw),
                entry(5, ro),
                entry(6, rw),
                entry(7, Uniform),
                entry(8, rw),
            ],
        });
        let combine_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("gmm combine layout"),
            entries: &[entry(10, Uniform), entry(11, ro), entry(12, rw)],
        });
        let layout_of = |label, bgl: &wgpu::BindGroupLayout| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(bgl)],
                immediate_size: 0,
            })
        };
        let main = layout_of("gmm chunk pipeline layout", &main_layout);
        let combine = layout_of("gmm combine pipeline layout", &combine_layout);
        let estep = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("estep.wgsl"),
            source: wgpu::ShaderSource::Wgsl(layout::estep_source().into()),
        });
        let reduce = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("reduce.wgsl"),
            source: wgpu::ShaderSource::Wgsl(layout::reduce_source().into()),
        });
        let pipeline = |label, layout: &wgpu::PipelineLayout, module: &wgpu::ShaderModule, entry_point| {
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
        };
        Self {
            logprob: pipeline("gmm logprob", &main, &estep, "logprob"),
            normalise: pipeline("gmm normalise", &main, &estep, "normalise"),
            assign: pipeline("gmm assign", &main, &estep, "assign"),
            random: pipeline("gmm random", &main, &estep, "random"),
            stats: pipeline("gmm stats", &main, &reduce, "stats"),
            combine: pipeline("gmm combine", &combine, &reduce, "combine"),
            main_layout,
            combine_layout,
        }
    }
}
