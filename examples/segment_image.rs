//! Segments a photo by colour with a Gaussian mixture fitted and applied inside one wgpu program
//! that owns its device: the pixels go up once as one buffer, `fit_resident` fits K components to
//! them in place, and one command encoder records the labels and log-densities, this example's own
//! WGSL pass that paints each pixel with its component's mean colour and marks the least likely
//! pixels magenta, and the copy out. Nothing but the model's parameters and the painted image
//! crosses the bus.
//!
//! ```text
//! cargo run --release --example segment_image -- assets/chelsea.png out.png -k 6 [--position]
//! ```
//!
//! Each pixel is a record of 5 f32s (r, g, b in [0, 1], then x and y scaled to [0, 1]): the fit
//! reads the first 3 (colour) with a stride of 5, or all 5 with `--position`. The device asks for
//! WebGPU's default limits and no optional features, as an engine would.

use std::fs::File;
use std::io::BufWriter;

use gmm_gpu::{CovarianceType, DeviceSamples, GmmParams, GpuContext, InferOutputs, OutputBuffer};
use wgpu::util::DeviceExt;

/// The example's own pass: the painted image from the labels and log-densities.
const PAINT: &str = r#"
struct Params { n: u32, k: u32, threshold: f32, _pad: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> log_p: array<f32>;
@group(0) @binding(3) var<storage, read> colours: array<f32>;   // K rows of r, g, b
@group(0) @binding(4) var<storage, read_write> image: array<u32>; // RGBA8, packed

@compute @workgroup_size(64)
fn paint(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = id.y * nwg.x * 64u + id.x;
    if i >= params.n {
        return;
    }
    let l = labels[i];
    var c = vec3<f32>(colours[3u * l], colours[3u * l + 1u], colours[3u * l + 2u]);
    if log_p[i] < params.threshold {
        c = vec3<f32>(1.0, 0.0, 1.0);
    }
    image[i] = pack4x8unorm(vec4<f32>(clamp(c, vec3<f32>(0.0), vec3<f32>(1.0)), 1.0));
}
"#;

struct Args {
    input: String,
    output: String,
    k: usize,
    position: bool,
    /// Pixels whose log-density is this many nats below the mean log-likelihood are marked.
    outlier_nats: f32,
}

fn args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let (mut k, mut position, mut outlier_nats) = (6, false, 8.0);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-k" => {
                k = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("-k takes a number of components")?
            }
            "--position" => position = true,
            "--outlier-nats" => {
                outlier_nats = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--outlier-nats takes a number")?
            }
            _ => positional.push(a),
        }
    }
    let [input, output] = <[String; 2]>::try_from(positional)
        .map_err(|_| "usage: segment_image IN.png OUT.png [-k K] [--position] [--outlier-nats X]")?;
    Ok(Args {
        input,
        output,
        k,
        position,
        outlier_nats,
    })
}

/// The image's pixels as records (r, g, b, x, y), its width and height.
fn load(path: &str) -> Result<(Vec<f32>, u32, u32), Box<dyn std::error::Error>> {
    let mut decoder = png::Decoder::new(File::open(path)?);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let mut bytes = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut bytes)?;
    let channels = info.color_type.samples();
    let (w, h) = (info.width, info.height);
    let mut records = Vec::with_capacity((w * h) as usize * 5);
    for (i, px) in bytes[..info.buffer_size()].chunks_exact(channels).enumerate() {
        let grey = channels < 3;
        let c = |j: usize| f32::from(px[if grey { 0 } else { j }]) / 255.0;
        let (x, y) = ((i as u32 % w) as f32 / w as f32, (i as u32 / w) as f32 / h as f32);
        records.extend_from_slice(&[c(0), c(1), c(2), x, y]);
    }
    Ok((records, w, h))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let (records, width, height) = load(&args.input)?;
    let n = (width * height) as usize;

    // The program's own device, with WebGPU's default limits and no optional features.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("segment_image"),
        required_limits: wgpu::Limits::default(),
        ..Default::default()
    }))?;
    let ctx = GpuContext::from_device(device.clone(), queue.clone(), adapter.get_info())?;

    // The pixels, uploaded once; the fit reads them in place (COPY_SRC: k-means reads seed rows).
    let pixels = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("pixels"),
        contents: bytemuck::cast_slice(&records),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    });
    let d = if args.position { 5 } else { 3 };
    let samples = DeviceSamples::new(&pixels, n, d).stride(5);
    let resident = GmmParams::builder(args.k)
        .covariance_type(CovarianceType::Full)
        .seed(0)
        .build()?
        .fit_resident(&ctx, samples)?;
    let model = resident.model();
    println!(
        "{} components of {d} features on {}: {} iterations, mean log-likelihood {:.3}, {} arithmetic",
        args.k,
        ctx.adapter_name(),
        model.n_iter(),
        model.lower_bound(),
        resident.arithmetic()
    );

    // Labels and log-densities into buffers of this program's.
    let storage = |label, bytes: u64, extra| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | extra,
            mapped_at_creation: false,
        })
    };
    let labels = storage("labels", 4 * n as u64, wgpu::BufferUsages::empty());
    let log_p = storage("log-densities", 4 * n as u64, wgpu::BufferUsages::empty());
    let image = storage("painted image", 4 * n as u64, wgpu::BufferUsages::COPY_SRC);
    let inference = resident.bind(
        samples,
        InferOutputs::new()
            .labels(OutputBuffer::new(&labels))
            .log_density(OutputBuffer::new(&log_p)),
    )?;

    // The paint pass: each component's mean colour, and the threshold for the least likely pixels.
    let colours: Vec<f32> = (0..args.k)
        .flat_map(|c| model.mean(c)[..3].iter().map(|&v| v as f32))
        .collect();
    let colours = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("component colours"),
        contents: bytemuck::cast_slice(&colours),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let threshold = model.lower_bound() as f32 - args.outlier_nats;
    let params: [u32; 4] = [n as u32, args.k as u32, threshold.to_bits(), 0];
    let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("paint parameters"),
        contents: bytemuck::cast_slice(&params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("paint"),
        source: wgpu::ShaderSource::Wgsl(PAINT.into()),
    });
    let paint = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("paint"),
        layout: None,
        module: &module,
        entry_point: Some("paint"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("paint"),
        layout: &paint.get_bind_group_layout(0),
        entries: &[&params, &labels, &log_p, &colours, &image]
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect::<Vec<_>>(),
    });
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("painted image readback"),
        size: 4 * n as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });

    // One encoder: inference, paint, copy out.
    let mut encoder = device.create_command_encoder(&Default::default());
    inference.encode(&mut encoder)?;
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&paint);
        pass.set_bind_group(0, &bind, &[]);
        let groups = n.div_ceil(64) as u32;
        let gx = groups.min(device.limits().max_compute_workgroups_per_dimension);
        pass.dispatch_workgroups(gx, groups.div_ceil(gx), 1);
    }
    encoder.copy_buffer_to_buffer(&image, 0, &readback, 0, 4 * n as u64);
    queue.submit([encoder.finish()]);
    readback
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.expect("the painted image maps"));
    device.poll(wgpu::PollType::wait_indefinitely())?;
    let rgba = readback.get_mapped_range(..)?.to_vec();

    let mut encoder = png::Encoder::new(BufWriter::new(File::create(&args.output)?), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&rgba)?;
    let marked = rgba.chunks_exact(4).filter(|p| p == &[255, 0, 255, 255]).count();
    println!(
        "wrote {} ({width} x {height}); {marked} pixels below {threshold:.2} nats marked",
        args.output
    );
    Ok(())
}
