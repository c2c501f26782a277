//! Inference inside the caller's GPU pipeline: a model resident on the caller's device, bound once
//! to the caller's buffers (offsets, strides) and recorded into the caller's command encoder;
//! checked against the f64 CPU's predict, score_samples and predict_proba on the same f32 samples,
//! with an uncaptured-error handler that fails every test on any wgpu error.

mod common;

use std::sync::{Arc, Mutex};

use common::{assert_close, blobs, gpu};
use gmm_gpu::{
    CovarianceType, DataView, DeviceSamples, GmmError, GmmModel, GmmParams, GpuContext, GpuModel, GpuPrecision,
    InferOutputs, OutputBuffer,
};

/// The caller's device (adapter limits, no optional features) wrapped in a context, and every
/// wgpu error that reached its uncaptured-error handler.
struct Callers {
    adapter: wgpu::Adapter,
    device: wgpu::Device,
    queue: wgpu::Queue,
    ctx: GpuContext,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Callers {
    /// Fails the test if wgpu reported any error outside our error scopes.
    fn assert_no_wgpu_errors(&self) {
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        let errors = self.errors.lock().unwrap();
        assert!(
            errors.is_empty(),
            "wgpu errors reached the caller's handler: {errors:?}"
        );
    }

    /// A buffer of `values` with `usage` (COPY_DST added, to fill it).
    fn buffer<T: bytemuck::Pod>(&self, values: &[T], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("a caller's buffer"),
            size: (std::mem::size_of_val(values) as u64).max(16).next_multiple_of(4),
            usage: usage | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(values));
        buffer
    }

    /// An output buffer of `bytes`, readable back.
    fn output(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("a caller's output"),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// `count` 4-byte values of `buffer` from byte `offset`.
    fn read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer, offset: u64, count: usize) -> Vec<T> {
        let bytes = (count * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("the caller's readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        staging.slice(..).map_async(wgpu::MapMode::Read, |r| r.unwrap());
        self.device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        let view = staging.get_mapped_range(..).unwrap();
        let mut values = vec![T::zeroed(); count];
        values.copy_from_slice(&bytemuck::cast_slice::<u8, T>(&view)[..count]);
        values
    }
}

/// The caller's own device with `limits` (the adapter's where None), as an engine requests one.
fn callers(limits: Option<wgpu::Limits>) -> Option<Callers> {
    let (adapter, device, queue) = common::callers_device(limits)?;
    let info = adapter.get_info();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| sink.lock().unwrap().push(e.to_string())));
    let ctx = GpuContext::from_device(device.clone(), queue.clone(), info).unwrap();
    Some(Callers {
        adapter,
        device,
        queue,
        ctx,
        errors,
    })
}

/// A model of 3 components of 2 features, fitted on the CPU to three blobs.
fn model(cov: CovarianceType) -> GmmModel {
    let x = blobs(900, &[0.0, 0.0, 5.0, 1.0, -2.0, 6.0], 2, 1.0, 7);
    GmmParams::builder(3)
        .covariance_type(cov)
        .seed(3)
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&x, 2).unwrap())
        .unwrap()
}

/// `n` samples of the blobs as f32, and inside records of `stride` f32s from f32 `first` on,
/// the rest of each record NaN (the kernels must never read it).
fn records(n: usize, d: usize, stride: usize, first: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let x: Vec<f32> = blobs(n, &[0.0, 0.0, 5.0, 1.0, -2.0, 6.0], d, 1.0, seed)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let packed = pack_records(&x, d, stride, first);
    (x, packed)
}

/// Rows of `x` (`d` features) inside records of `stride` f32s from f32 `first` on, NaN elsewhere.
fn pack_records(x: &[f32], d: usize, stride: usize, first: usize) -> Vec<f32> {
    let mut packed = vec![f32::NAN; first + x.len() / d * stride];
    for (i, row) in x.chunks_exact(d).enumerate() {
        packed[first + i * stride..first + i * stride + d].copy_from_slice(row);
    }
    packed
}

/// The outputs of one encode of every output, read back: labels, log-densities, responsibilities.
struct Outputs {
    labels: Vec<u32>,
    log_p: Vec<f64>,
    proba: Vec<f64>,
}

/// Binds `resident` to `n` samples inside records (stride 5, from byte 20) and to output buffers at
/// unaligned offsets, encodes once into the caller's encoder, submits and reads back. With
/// `proba` the responsibilities too (the two-pass path: log-densities per component first); without,
/// labels and log-densities straight from the samples (`proba` then empty).
fn infer_all(c: &Callers, resident: &GpuModel, x_records: &[f32], n: usize, d: usize, want_proba: bool) -> Outputs {
    let k = resident.n_components();
    let input = c.buffer(x_records, wgpu::BufferUsages::STORAGE);
    let (labels, log_p, proba) = (
        c.output(12 + 4 * n as u64),
        c.output(8 + 4 * n as u64),
        c.output(4 + 4 * (n * k) as u64),
    );
    let mut outputs = InferOutputs::new()
        .labels(OutputBuffer::new(&labels).offset(12))
        .log_density(OutputBuffer::new(&log_p).offset(8));
    if want_proba {
        outputs = outputs.responsibilities(OutputBuffer::new(&proba).offset(4));
    }
    let inference = resident
        .bind(DeviceSamples::new(&input, n, d).offset(20).stride(5), outputs)
        .unwrap();
    let mut encoder = c.device.create_command_encoder(&Default::default());
    inference.encode(&mut encoder).unwrap();
    c.queue.submit([encoder.finish()]);
    Outputs {
        labels: c.read(&labels, 12, n),
        log_p: c.read::<f32>(&log_p, 8, n).into_iter().map(f64::from).collect(),
        proba: if want_proba {
            c.read::<f32>(&proba, 4, n * k).into_iter().map(f64::from).collect()
        } else {
            Vec::new()
        },
    }
}

/// Labels equal the CPU's except where the CPU's two responsibilities are within `gap` of a tie.
fn assert_labels(what: &str, gpu: &[u32], cpu: &[usize], cpu_proba: &[f64], k: usize, gap: f64) {
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let g = g as usize;
        assert!(g < k, "{what}: sample {i}: label {g} out of range");
        if g != c {
            let between = (cpu_proba[i * k + g] - cpu_proba[i * k + c]).abs();
            assert!(
                between < gap,
                "{what}: sample {i}: GPU label {g}, CPU label {c} ({between} apart)"
            );
        }
    }
}

/// GPU outputs against the CPU's at awkward sample counts (1, 63, 65: one sample, a workgroup
/// less one, a workgroup plus one), with strides and offsets, fast and exact.
#[test]
fn inference_in_the_callers_buffers_matches_the_cpu_at_awkward_sizes() {
    let Some(c) = callers(None) else { return };
    for cov in CovarianceType::ALL {
        let m = model(cov);
        for precision in [GpuPrecision::Fast, GpuPrecision::Exact] {
            let resident = GpuModel::with_precision(&c.ctx, &m, precision).unwrap();
            for (n, proba) in [1, 63, 65, 1000].into_iter().flat_map(|n| [(n, true), (n, false)]) {
                let (x, packed) = records(n, 2, 5, 5, n as u64);
                let view = DataView::from_f32(&x, 2).unwrap();
                let got = infer_all(&c, &resident, &packed, n, 2, proba);
                let path = if proba { "two-pass" } else { "direct" };
                let what = format!("{cov} {precision} n = {n} {path}");
                let (cpu_lp, cpu_proba) = (m.score_samples(&view).unwrap(), m.predict_proba(&view).unwrap());
                // Log-densities leave the device as one f32 in the caller's buffer: exact carries that
                // rounding and little more (seen 9.1e-8 relative: bound 2⁻²³), fast its f32
                // arithmetic besides (seen 2.0e-7; the issue allows 1e-5, bound 1e-6).
                let bound = if precision == GpuPrecision::Fast { 1e-6 } else { 1.2e-7 };
                assert_close(&format!("{what} log-density"), &got.log_p, &cpu_lp, bound, 1e-30);
                // Responsibilities in [0, 1] leave as one f32 each; fast's exp adds a few ulps
                // (seen 3.4e-7 absolute fast, 8.7e-8 exact).
                if proba {
                    assert_close(&format!("{what} responsibilities"), &got.proba, &cpu_proba, 0.0, 1e-6);
                }
                assert_labels(&what, &got.labels, &m.predict(&view).unwrap(), &cpu_proba, 3, 1e-5);
            }
        }
    }
    c.assert_no_wgpu_errors();
}

/// Past 65,535 workgroups of 64 samples: the dispatch is folded into two dimensions.
#[test]
fn inference_past_65535_workgroups_covers_every_sample() {
    let Some(c) = callers(None) else { return };
    let n = 65_537 * 64 + 5;
    let m = model(CovarianceType::Diag);
    let resident = GpuModel::with_precision(&c.ctx, &m, GpuPrecision::Fast).unwrap();
    let (x, packed) = records(n, 2, 5, 5, 99);
    let view = DataView::from_f32(&x, 2).unwrap();
    let (got, direct) = (
        infer_all(&c, &resident, &packed, n, 2, true),
        infer_all(&c, &resident, &packed, n, 2, false),
    );
    let (cpu_lp, cpu_proba) = (m.score_samples(&view).unwrap(), m.predict_proba(&view).unwrap());
    // As at awkward sizes, fast (seen: 2.3e-7 relative, 5.7e-7 absolute).
    assert_close("log-density", &got.log_p, &cpu_lp, 1e-6, 1e-30);
    assert_close("responsibilities", &got.proba, &cpu_proba, 0.0, 1e-6);
    assert_labels("labels", &got.labels, &m.predict(&view).unwrap(), &cpu_proba, 3, 1e-5);
    assert_close("direct log-density", &direct.log_p, &cpu_lp, 1e-6, 1e-30);
    assert_labels(
        "direct labels",
        &direct.labels,
        &m.predict(&view).unwrap(),
        &cpu_proba,
        3,
        1e-5,
    );
    c.assert_no_wgpu_errors();
}

/// Full covariances past the direct kernel's reach (d > 16): labels and log-densities alone take
/// the two-pass path, and agree with the CPU as well.
#[test]
fn labels_of_a_model_too_large_for_the_direct_kernel() {
    let Some(c) = callers(None) else { return };
    let d = 20;
    let centres: Vec<f64> = (0..2 * d).map(|i| if i < d { 0.0 } else { 4.0 }).collect();
    let x = blobs(2000, &centres, d, 1.0, 17);
    let m = GmmParams::builder(2)
        .covariance_type(CovarianceType::Full)
        .seed(4)
        .build()
        .unwrap()
        .fit(&DataView::from_f64(&x, d).unwrap())
        .unwrap();
    let resident = GpuModel::with_precision(&c.ctx, &m, GpuPrecision::Fast).unwrap();
    let n = 129;
    let xs: Vec<f32> = x[..n * d].iter().map(|&v| v as f32).collect();
    let view = DataView::from_f32(&xs, d).unwrap();
    let input = c.buffer(&xs, wgpu::BufferUsages::STORAGE);
    let (labels, log_p) = (c.output(4 * n as u64), c.output(4 * n as u64));
    let inference = resident
        .bind(
            DeviceSamples::new(&input, n, d),
            InferOutputs::new()
                .labels(OutputBuffer::new(&labels))
                .log_density(OutputBuffer::new(&log_p)),
        )
        .unwrap();
    let mut encoder = c.device.create_command_encoder(&Default::default());
    inference.encode(&mut encoder).unwrap();
    c.queue.submit([encoder.finish()]);
    let got: Vec<f64> = c.read::<f32>(&log_p, 0, n).into_iter().map(f64::from).collect();
    // Fast f32 over 20 features (seen 8.4e-8 relative; bound as at awkward sizes).
    assert_close("log-density", &got, &m.score_samples(&view).unwrap(), 1e-6, 1e-30);
    let cpu_proba = m.predict_proba(&view).unwrap();
    assert_labels(
        "labels",
        &c.read(&labels, 0, n),
        &m.predict(&view).unwrap(),
        &cpu_proba,
        2,
        1e-5,
    );
    c.assert_no_wgpu_errors();
}

/// The host conveniences run the same path in exact arithmetic and read log p back as two
/// floats: against the CPU on the same f32 image of the data, within the 1e-10.
#[test]
fn host_conveniences_run_exact_on_the_same_path() {
    let Some(ctx) = gpu() else { return };
    let x = blobs(3001, &[100.0, 0.0, 105.0, 1.0, 98.0, 6.0], 2, 1.0, 5);
    let view = DataView::from_f64(&x, 2).unwrap();
    let image = gmm_gpu::gpu::f32_image(&view).unwrap();
    let image_view = DataView::from_f64(&image, 2).unwrap();
    for cov in CovarianceType::ALL {
        let m = GmmParams::builder(3)
            .covariance_type(cov)
            .seed(2)
            .build()
            .unwrap()
            .fit(&image_view)
            .unwrap();
        // log p comes back as a two-float: native f64 kernels agree to 5e-15 relative (seen; the
        // issue asks 1e-10), two-float ones carry their own exp and log's ~5e-10.
        let bound = if common::exact_name(ctx) == "exact (f64)" {
            1e-13
        } else {
            1e-9
        };
        assert_close(
            &format!("{cov} log-density"),
            &m.score_samples_on(ctx, &view).unwrap(),
            &m.score_samples(&image_view).unwrap(),
            bound,
            1e-30,
        );
        let (labels, cpu_labels) = (m.predict_on(ctx, &view).unwrap(), m.predict(&image_view).unwrap());
        assert_eq!(labels, cpu_labels, "{cov}: exact labels");
        // Responsibilities come back as one f32 each: half an ulp below 1 is 2.98e-8 (seen).
        assert_close(
            &format!("{cov} responsibilities"),
            &m.predict_proba_on(ctx, &view).unwrap(),
            &m.predict_proba(&image_view).unwrap(),
            0.0,
            3.0e-8,
        );
    }
}

/// `update` rewrites the parameters under a bound inference, which then gives the new model's
/// outputs; a model of another shape is refused.
#[test]
fn update_changes_what_a_bound_inference_computes() {
    let Some(c) = callers(None) else { return };
    let (m, other) = (model(CovarianceType::Full), model(CovarianceType::Diag));
    let moved = GmmModel::from_parameters(
        CovarianceType::Full,
        2,
        m.weights().to_vec(),
        m.means().iter().map(|v| v + 3.0).collect(),
        m.covariances().to_vec(),
        m.precisions_cholesky().to_vec(),
        f64::NEG_INFINITY,
    )
    .unwrap();
    let resident = GpuModel::with_precision(&c.ctx, &m, GpuPrecision::Fast).unwrap();
    let n = 500;
    let (x, packed) = records(n, 2, 2, 0, 41);
    let view = DataView::from_f32(&x, 2).unwrap();
    let input = c.buffer(&packed, wgpu::BufferUsages::STORAGE);
    let log_p = c.output(4 * n as u64);
    let inference = resident
        .bind(
            DeviceSamples::new(&input, n, 2),
            InferOutputs::new().log_density(OutputBuffer::new(&log_p)),
        )
        .unwrap();
    let run = || {
        let mut encoder = c.device.create_command_encoder(&Default::default());
        inference.encode(&mut encoder).unwrap();
        c.queue.submit([encoder.finish()]);
        c.read::<f32>(&log_p, 0, n)
            .into_iter()
            .map(f64::from)
            .collect::<Vec<_>>()
    };
    let before = run();
    // Fast, as at awkward sizes (seen 1.9e-7 relative).
    assert_close("before", &before, &m.score_samples(&view).unwrap(), 1e-6, 1e-30);
    resident.update(&moved).unwrap();
    let after = run();
    assert_close(
        "after update",
        &after,
        &moved.score_samples(&view).unwrap(),
        1e-6,
        1e-30,
    );
    assert!(
        after.iter().zip(&before).all(|(a, b)| (a - b).abs() > 1e-3),
        "update left some outputs as they were"
    );
    assert!(matches!(
        resident.update(&other),
        Err(GmmError::ResidentModelShape {
            expected_covariance: CovarianceType::Full,
            found_covariance: CovarianceType::Diag,
            ..
        })
    ));
    c.assert_no_wgpu_errors();
}

/// A count below the bound capacity per encode: only those samples are written.
#[test]
fn a_smaller_count_per_encode_writes_only_those_samples() {
    let Some(c) = callers(None) else { return };
    let m = model(CovarianceType::Tied);
    let resident = GpuModel::new(&c.ctx, &m).unwrap();
    let n = 300;
    let (x, packed) = records(n, 2, 2, 0, 8);
    let input = c.buffer(&packed, wgpu::BufferUsages::STORAGE);
    let labels = c.buffer(
        &vec![u32::MAX; n],
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    );
    let inference = resident
        .bind(
            DeviceSamples::new(&input, n, 2),
            InferOutputs::new().labels(OutputBuffer::new(&labels)),
        )
        .unwrap();
    let mut encoder = c.device.create_command_encoder(&Default::default());
    inference.encode_count(&mut encoder, 70).unwrap();
    c.queue.submit([encoder.finish()]);
    let got: Vec<u32> = c.read(&labels, 0, n);
    let cpu = m.predict(&DataView::from_f32(&x[..140], 2).unwrap()).unwrap();
    assert_eq!(
        got[..70].iter().map(|&l| l as usize).collect::<Vec<_>>(),
        cpu,
        "the first 70 labels"
    );
    assert!(
        got[70..].iter().all(|&l| l == u32::MAX),
        "a label past the count was written"
    );
    assert!(matches!(
        inference.encode_count(&mut c.device.create_command_encoder(&Default::default()), n + 1),
        Err(GmmError::InferenceCount {
            count: 301,
            capacity: 300
        })
    ));
    c.assert_no_wgpu_errors();
}

/// Every misuse of `bind` is a typed error, and none reaches wgpu's uncaptured-error handler.
#[test]
fn each_misuse_of_bind_is_a_typed_error() {
    let Some(c) = callers(None) else { return };
    let resident = GpuModel::new(&c.ctx, &model(CovarianceType::Diag)).unwrap();
    let n = 100;
    let x = vec![0.5f32; 2 * n + 8];
    let input = c.buffer(&x, wgpu::BufferUsages::STORAGE);
    let out = c.output(4 * n as u64 + 64);
    let labels = || InferOutputs::new().labels(OutputBuffer::new(&out));
    let bind = |samples: DeviceSamples, outputs: InferOutputs| resident.bind(samples, outputs).map(|_| ()).unwrap_err();

    // A missing usage flag: input and output.
    let no_storage = c.buffer(&x, wgpu::BufferUsages::COPY_SRC);
    assert!(matches!(
        bind(DeviceSamples::new(&no_storage, n, 2), labels()),
        GmmError::GpuBufferUsage {
            buffer: "input",
            usage: "STORAGE"
        }
    ));
    assert!(matches!(
        bind(
            DeviceSamples::new(&input, n, 2),
            InferOutputs::new().labels(OutputBuffer::new(&no_storage))
        ),
        GmmError::GpuBufferUsage { buffer: "labels", .. }
    ));
    // Buffers too small for n, stride and K.
    assert!(matches!(
        bind(DeviceSamples::new(&input, n, 2).stride(3), labels()),
        GmmError::GpuBufferTooSmall { buffer: "input", needed, .. } if needed == (99 * 3 + 2) * 4
    ));
    assert!(matches!(
        bind(DeviceSamples::new(&input, n, 2), InferOutputs::new().responsibilities(OutputBuffer::new(&out))),
        GmmError::GpuBufferTooSmall { buffer: "responsibilities", needed, .. } if needed == 4 * 3 * 100
    ));
    // Misaligned offsets.
    assert!(matches!(
        bind(DeviceSamples::new(&input, n, 2).offset(6), labels()),
        GmmError::GpuBufferMisaligned {
            buffer: "input",
            offset: 6,
            alignment: 4
        }
    ));
    assert!(matches!(
        bind(
            DeviceSamples::new(&input, n, 2),
            InferOutputs::new().log_density(OutputBuffer::new(&out).offset(2))
        ),
        GmmError::GpuBufferMisaligned {
            buffer: "log-density",
            offset: 2,
            ..
        }
    ));
    // A stride below d.
    assert!(matches!(
        bind(DeviceSamples::new(&input, n, 2).stride(1), labels()),
        GmmError::StrideTooSmall {
            stride: 1,
            n_features: 2
        }
    ));
    // Samples of another shape than the model's.
    assert!(matches!(
        bind(DeviceSamples::new(&input, n, 3), labels()),
        GmmError::FeatureMismatch {
            expected: 2,
            got: 3,
            ..
        }
    ));
    // No outputs, and the input bound as an output.
    assert!(matches!(
        bind(DeviceSamples::new(&input, n, 2), InferOutputs::new()),
        GmmError::NoInferenceOutputs
    ));
    assert!(matches!(
        bind(
            DeviceSamples::new(&input, n, 2),
            InferOutputs::new().labels(OutputBuffer::new(&input))
        ),
        GmmError::GpuBufferAliased { buffer: "labels" }
    ));
    // A buffer of another device of the same adapter (wgpu tells devices apart within one
    // instance; a buffer of another instance's device is beyond what it can check).
    let (other, other_queue) =
        pollster::block_on(c.adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let other_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = other_errors.clone();
    other.on_uncaptured_error(Arc::new(move |e: wgpu::Error| sink.lock().unwrap().push(e.to_string())));
    let foreign = other.create_buffer(&wgpu::BufferDescriptor {
        label: Some("another device's buffer"),
        size: (x.len() * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    other_queue.write_buffer(&foreign, 0, bytemuck::cast_slice(&x));
    let e = bind(DeviceSamples::new(&foreign, n, 2), labels());
    assert!(
        matches!(e, GmmError::GpuBufferOtherDevice { .. }),
        "a foreign input: {e:?}"
    );
    c.assert_no_wgpu_errors();
    assert!(
        other_errors.lock().unwrap().is_empty(),
        "{:?}",
        other_errors.lock().unwrap()
    );
}

/// WebGPU's default limits and no optional features: every output, on both paths (the two-pass
/// one for responsibilities), in fast arithmetic.
#[test]
fn inference_runs_on_a_device_with_webgpus_default_limits() {
    let Some(c) = callers(Some(wgpu::Limits::default())) else {
        return;
    };
    for cov in CovarianceType::ALL {
        let m = model(cov);
        let resident = GpuModel::new(&c.ctx, &m).unwrap();
        assert_eq!(
            resident.arithmetic(),
            "fast",
            "{cov}: well-conditioned blobs stay fast under Auto"
        );
        let n = 777;
        let (x, packed) = records(n, 2, 5, 5, 12);
        let view = DataView::from_f32(&x, 2).unwrap();
        let got = infer_all(&c, &resident, &packed, n, 2, true);
        let cpu_proba = m.predict_proba(&view).unwrap();
        assert_close(
            &format!("{cov} log-density"),
            &got.log_p,
            &m.score_samples(&view).unwrap(),
            1e-6,
            1e-30,
        );
        assert_close(&format!("{cov} responsibilities"), &got.proba, &cpu_proba, 0.0, 1e-6);
        assert_labels(
            &format!("{cov}"),
            &got.labels,
            &m.predict(&view).unwrap(),
            &cpu_proba,
            3,
            1e-5,
        );
    }
    c.assert_no_wgpu_errors();
}

/// Under Auto the conditioning guard runs on the resident model: components far from the origin
/// relative to their spread (f32 rounds x − μ to u·|μ|, which the factor magnifies) send it to the
/// exact kernels, named; the outputs then carry only their own f32 rounding.
#[test]
fn auto_sends_an_ill_conditioned_resident_model_to_the_exact_kernels() {
    let Some(c) = callers(None) else { return };
    // Two diagonal components at 1e4 with unit spread: √(d + 2)·2⁻²⁴·1e4 = 1.2e-3, past 1e-5.
    let m = GmmModel::from_parameters(
        CovarianceType::Diag,
        2,
        vec![0.5, 0.5],
        vec![1e4, 1e4, 1e4 + 5.0, 1e4],
        vec![1.0; 4],
        vec![1.0; 4],
        f64::NEG_INFINITY,
    )
    .unwrap();
    let resident = GpuModel::new(&c.ctx, &m).unwrap();
    assert_ne!(resident.arithmetic(), "fast");
    assert_eq!(resident.exact_components(), [0, 1]);
    let n = 200;
    let x: Vec<f32> = blobs(n, &[1e4, 1e4, 1e4 + 5.0, 1e4], 2, 1.0, 3)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let got = infer_all(&c, &resident, &pack_records(&x, 2, 5, 5), n, 2, false);
    let view = DataView::from_f32(&x, 2).unwrap();
    // As exact at awkward sizes: the f32 output's rounding (bound 2⁻²³).
    assert_close(
        "log-density",
        &got.log_p,
        &m.score_samples(&view).unwrap(),
        1.2e-7,
        1e-30,
    );
    c.assert_no_wgpu_errors();
}
