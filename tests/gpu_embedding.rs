//! Embedding: the caller owns the wgpu device, the queue and the buffer that holds the data; the
//! crate fits from that buffer in place.

mod common;

use common::{assert_close, blobs};
use gmm_gpu::{CovarianceType, DataView, DeviceSamples, GmmError, GmmParams, GpuContext, InitMethod};

/// The caller's own device, made with wgpu directly (not through the crate), with the adapter's
/// limits. When no adapter or device can be had, the test fails if a GPU is required (CI=true or
/// GMM_REQUIRE_GPU=1) and is otherwise reported as NOT RUN and skipped (`None`).
fn own_device() -> Option<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo)> {
    device_with(None)
}

/// A device with `limits` (the adapter's own where None) and no optional features.
fn device_with(limits: Option<wgpu::Limits>) -> Option<(wgpu::Device, wgpu::Queue, wgpu::AdapterInfo)> {
    let (adapter, device, queue) = common::callers_device(limits)?;
    Some((device, queue, adapter.get_info()))
}

/// Uploads f32 samples into a buffer of the caller's, with the given usages.
fn callers_buffer(device: &wgpu::Device, queue: &wgpu::Queue, x: &[f32], usage: wgpu::BufferUsages) -> wgpu::Buffer {
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("the caller's samples"),
        size: (x.len() * 4) as u64,
        usage: usage | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(&buffer, 0, bytemuck::cast_slice(x));
    queue.submit([]);
    buffer
}

#[test]
fn fits_from_the_callers_buffer_without_reading_it_back() {
    let Some((device, queue, info)) = own_device() else {
        return;
    };
    let x: Vec<f32> = blobs(4099, &[0.0, 0.0, 6.0, 1.0, -2.0, 5.0], 2, 1.0, 21)
        .iter()
        .map(|&v| v as f32)
        .collect();
    // STORAGE only, no COPY_SRC: the crate could not copy this buffer back if it tried.
    let buffer = callers_buffer(&device, &queue, &x, wgpu::BufferUsages::STORAGE);
    let ctx = GpuContext::from_device(device, queue, info).unwrap();
    for cov in CovarianceType::ALL {
        // The 'random' initialisation runs on the GPU and reads no rows.
        let params = GmmParams::builder(3)
            .covariance_type(cov)
            .init_method(InitMethod::Random)
            .seed(5)
            .tol(0.0)
            .max_iter(30)
            .chunk_size(1000)
            .build()
            .unwrap();
        let embedded = params.fit_buffer(&ctx, &buffer, 4099, 2).unwrap();
        let traffic = embedded.traffic().unwrap();
        // Five chunks of K·(1 + d + S2) + 1 two-float sums (8 bytes) per iteration, and nothing else.
        let s2 = if matches!(cov, CovarianceType::Full | CovarianceType::Tied) {
            3
        } else {
            2
        };
        assert_eq!(traffic.bytes_read_back, 5 * 8 * (3 * (1 + 2 + s2) + 1) as u64, "{cov}");
        // The same fit from host memory, on the CPU, from the same (hashed) random start.
        let data = DataView::from_f32(&x, 2).unwrap();
        let cpu = params.fit(&data).unwrap();
        let scale = cpu.means().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert_close(&format!("{cov} weights"), embedded.weights(), cpu.weights(), 1e-4, 0.0);
        assert_close(
            &format!("{cov} means"),
            embedded.means(),
            cpu.means(),
            1e-4,
            1e-4 * scale,
        );
        assert_close(
            &format!("{cov} lower bound"),
            &[embedded.lower_bound()],
            &[cpu.lower_bound()],
            0.0,
            1e-5,
        );
        assert_eq!(embedded.adapter(), Some(ctx.adapter_name().as_str()));
    }
}

#[test]
fn k_means_init_reads_a_few_rows_when_allowed() {
    let Some((device, queue, info)) = own_device() else {
        return;
    };
    let x: Vec<f32> = blobs(3000, &[0.0, 0.0, 8.0, 0.0, 0.0, 8.0], 2, 1.0, 22)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let readable = callers_buffer(
        &device,
        &queue,
        &x,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    );
    let sealed = callers_buffer(&device, &queue, &x, wgpu::BufferUsages::STORAGE);
    let ctx = GpuContext::from_device(device, queue, info).unwrap();
    let params = GmmParams::builder(3).seed(1).build().unwrap();
    let embedded = params.fit_buffer(&ctx, &readable, 3000, 2).unwrap();
    let from_host = params.fit_on(&ctx, &DataView::from_f32(&x, 2).unwrap()).unwrap();
    // The same seed rows and the same kernels; only the host data's centring differs (f32 rounding).
    assert_close("k-means init means", embedded.means(), from_host.means(), 1e-4, 1e-4);
    let err = params.fit_buffer(&ctx, &sealed, 3000, 2).unwrap_err();
    assert!(
        matches!(&err, GmmError::GpuBuffer { problem } if problem.contains("COPY_SRC")),
        "{err}"
    );
}

#[test]
fn a_buffer_too_small_or_without_storage_is_a_typed_error() {
    let Some((device, queue, info)) = own_device() else {
        return;
    };
    let x = vec![0.5f32; 200];
    let storage = callers_buffer(&device, &queue, &x, wgpu::BufferUsages::STORAGE);
    let no_storage = callers_buffer(&device, &queue, &x, wgpu::BufferUsages::COPY_SRC);
    let ctx = GpuContext::from_device(device, queue, info).unwrap();
    let params = GmmParams::builder(2).init_method(InitMethod::Random).build().unwrap();
    let err = params.fit_buffer(&ctx, &storage, 101, 2).unwrap_err();
    assert!(
        matches!(
            err,
            GmmError::GpuBufferTooSmall {
                buffer: "input",
                size: 800,
                needed: 808
            }
        ),
        "{err}"
    );
    let err = params.fit_buffer(&ctx, &no_storage, 100, 2).unwrap_err();
    assert!(
        matches!(
            err,
            GmmError::GpuBufferUsage {
                buffer: "input",
                usage: "STORAGE"
            }
        ),
        "{err}"
    );
    // Rows inside records: the last row ends at (offset + (n − 1)·stride + d)·4 bytes.
    let samples = DeviceSamples::new(&storage, 41, 2).offset(8).stride(5);
    let err = params.fit_device(&ctx, samples).unwrap_err();
    assert!(
        matches!(err, GmmError::GpuBufferTooSmall { needed, .. } if needed == 8 + (40 * 5 + 2) * 4),
        "{err}"
    );
    let err = params.fit_device(&ctx, samples.offset(6)).unwrap_err();
    assert!(matches!(err, GmmError::GpuBufferMisaligned { offset: 6, .. }), "{err}");
    let err = params.fit_device(&ctx, samples.stride(1)).unwrap_err();
    assert!(
        matches!(
            err,
            GmmError::StrideTooSmall {
                stride: 1,
                n_features: 2
            }
        ),
        "{err}"
    );
}

#[test]
fn a_device_with_webgpus_default_limits_fits_and_infers() {
    let Some((device, queue, info)) = device_with(Some(wgpu::Limits::default())) else {
        return;
    };
    let ctx = GpuContext::from_device(device, queue, info).unwrap();
    let x = blobs(3001, &[0.0, 0.0, 0.0, 5.0, 1.0, -1.0, -4.0, 3.0, 2.0], 3, 1.0, 8);
    let data = DataView::from_f64(&x, 3).unwrap();
    for cov in CovarianceType::ALL {
        let params = GmmParams::builder(3)
            .covariance_type(cov)
            .init_method(InitMethod::Random)
            .seed(2)
            .tol(0.0)
            .max_iter(20)
            .build()
            .unwrap();
        let gpu = params.fit_on(&ctx, &data).unwrap();
        let cpu = params.fit(&data).unwrap();
        // Auto (fast, two-float where it escalates: this device has no f64) against the f64 CPU
        // from the same start. Seen: means 1.3e-6 of their scale (full),
        // the lower bound 7e-8 nats; bounds about 10 times that.
        let scale = cpu.means().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert_close(&format!("{cov} means"), gpu.means(), cpu.means(), 0.0, 1e-5 * scale);
        assert_close(
            &format!("{cov} lower bound"),
            &[gpu.lower_bound()],
            &[cpu.lower_bound()],
            0.0,
            1e-6,
        );
        // Every inference output on this device (fast f32), against the CPU's from the same model.
        // Seen: log-density 1.1e-7 relative, responsibilities 1.9e-7; bounds 10 times that.
        let log_p = cpu.score_samples_on(&ctx, &data).unwrap();
        assert_close(
            &format!("{cov} log-density"),
            &log_p,
            &cpu.score_samples(&data).unwrap(),
            1e-6,
            1e-6,
        );
        let (proba, cpu_proba) = (
            cpu.predict_proba_on(&ctx, &data).unwrap(),
            cpu.predict_proba(&data).unwrap(),
        );
        assert_close(&format!("{cov} responsibilities"), &proba, &cpu_proba, 0.0, 2e-6);
        // Labels identical except at near ties (two responsibilities within f32's reach of each
        // other): none seen here.
        let labels = cpu.predict_on(&ctx, &data).unwrap();
        for (i, (&a, &b)) in labels.iter().zip(&cpu.predict(&data).unwrap()).enumerate() {
            let gap = (cpu_proba[i * 3 + a] - cpu_proba[i * 3 + b]).abs();
            assert!(
                a == b || gap < 2e-6,
                "{cov}: sample {i} labelled {a}, the CPU says {b} (gap {gap:e})"
            );
        }
    }
}

#[test]
fn a_device_with_downlevel_limits_works_or_names_the_limit() {
    // WebGL2-class limits: 4 storage buffers per stage where the kernels bind 8, so this refuses
    // today; if the kernels ever fit, the fit must then work.
    let limits = wgpu::Limits::downlevel_defaults();
    let Some((device, queue, info)) = device_with(Some(limits.clone())) else {
        return;
    };
    match GpuContext::from_device(device, queue, info) {
        Err(GmmError::LimitsTooSmall { limit, needed, granted }) => {
            // The kernels bind 8 storage buffers at once.
            let want = (
                "max_storage_buffers_per_shader_stage",
                8,
                u64::from(limits.max_storage_buffers_per_shader_stage),
            );
            assert_eq!((limit, needed, granted), want);
        }
        Err(e) => panic!("expected LimitsTooSmall, got {e}"),
        Ok(ctx) => {
            let x = blobs(500, &[0.0, 0.0, 5.0, 5.0], 2, 1.0, 3);
            let data = DataView::from_f64(&x, 2).unwrap();
            GmmParams::builder(2).build().unwrap().fit_on(&ctx, &data).unwrap();
        }
    }
}

#[test]
fn a_destroyed_device_is_device_lost() {
    let Some((device, queue, info)) = own_device() else {
        return;
    };
    let ctx = GpuContext::from_device(device.clone(), queue, info).unwrap();
    device.destroy();
    let x: Vec<f64> = (0..200).map(|i| (i as f64 * 0.37).sin()).collect();
    let data = DataView::from_f64(&x, 2).unwrap();
    let err = GmmParams::builder(2).build().unwrap().fit_on(&ctx, &data).unwrap_err();
    assert!(matches!(err, GmmError::DeviceLost { .. }), "{err:?}");
}

/// The caller's data is not checked (that would mean reading it back); a NaN in it still never
/// gives a NaN model: the fit fails with a typed error.
#[test]
fn a_nan_in_the_callers_buffer_is_a_typed_error_not_a_nan_model() {
    let Some((device, queue, info)) = own_device() else {
        return;
    };
    let mut x: Vec<f32> = blobs(1000, &[0.0, 0.0, 6.0, 1.0], 2, 1.0, 23)
        .iter()
        .map(|&v| v as f32)
        .collect();
    x[2 * 500 + 1] = f32::NAN;
    let buffer = callers_buffer(&device, &queue, &x, wgpu::BufferUsages::STORAGE);
    let ctx = GpuContext::from_device(device, queue, info).unwrap();
    for cov in CovarianceType::ALL {
        let params = GmmParams::builder(2)
            .covariance_type(cov)
            .init_method(InitMethod::Random)
            .seed(3)
            .max_iter(5)
            .build()
            .unwrap();
        let err = params.fit_buffer(&ctx, &buffer, 1000, 2).unwrap_err();
        assert!(
            matches!(
                err,
                GmmError::IllDefinedCovariance { .. }
                    | GmmError::NonFiniteLikelihood { .. }
                    | GmmError::GpuNonFiniteParameter { .. }
            ),
            "{cov}: {err}"
        );
    }
}

/// A sample count whose byte count overflows is a typed error, not an overflow.
#[test]
fn a_huge_sample_count_is_a_typed_error() {
    let Some((device, queue, info)) = own_device() else {
        return;
    };
    let buffer = callers_buffer(&device, &queue, &[0.0; 64], wgpu::BufferUsages::STORAGE);
    let ctx = GpuContext::from_device(device, queue, info).unwrap();
    let params = GmmParams::builder(2).init_method(InitMethod::Random).build().unwrap();
    let err = params.fit_buffer(&ctx, &buffer, usize::MAX / 2, 8).unwrap_err();
    assert!(
        matches!(err, GmmError::GpuBufferTooSmall { needed: u64::MAX, .. }),
        "{err}"
    );
}

/// Samples inside the caller's records (a stride, an offset, NaN in between): the fit reads only
/// the samples, over several chunks and with k-means reading seed rows, and equals the packed
/// fit bitwise (the same values through the same arithmetic); `fit_resident` then labels the same
/// buffer without another upload.
#[test]
fn fits_rows_inside_records_and_infers_from_the_same_buffer() {
    let Some((device, queue, info)) = own_device() else {
        return;
    };
    let (n, d, stride, first) = (3001, 2, 7, 3);
    let x: Vec<f32> = blobs(n, &[0.0, 0.0, 6.0, 1.0, -2.0, 5.0], d, 1.0, 23)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let mut records = vec![f32::NAN; first + n * stride];
    for (i, row) in x.chunks_exact(d).enumerate() {
        records[first + i * stride..first + i * stride + d].copy_from_slice(row);
    }
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let packed = callers_buffer(&device, &queue, &x, usage);
    let inside = callers_buffer(&device, &queue, &records, usage);
    let labels = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("labels"),
        size: (n * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let ctx = GpuContext::from_device(device.clone(), queue.clone(), info).unwrap();
    for cov in CovarianceType::ALL {
        let params = GmmParams::builder(3)
            .covariance_type(cov)
            .seed(2)
            .chunk_size(1000)
            .max_iter(20)
            .build()
            .unwrap();
        let want = params.fit_buffer(&ctx, &packed, n, d).unwrap();
        let samples = DeviceSamples::new(&inside, n, d)
            .offset(4 * first as u64)
            .stride(stride);
        let resident = params.fit_resident(&ctx, samples).unwrap();
        let got = resident.model();
        assert_eq!(got.means(), want.means(), "{cov}: means");
        assert_eq!(got.covariances(), want.covariances(), "{cov}: covariances");
        assert_eq!(got.lower_bound(), want.lower_bound(), "{cov}: lower bound");
        let inference = resident
            .bind(
                samples,
                gmm_gpu::InferOutputs::new().labels(gmm_gpu::OutputBuffer::new(&labels)),
            )
            .unwrap();
        let mut encoder = device.create_command_encoder(&Default::default());
        inference.encode(&mut encoder).unwrap();
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("labels readback"),
            size: (n * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(&labels, 0, &staging, 0, (n * 4) as u64);
        queue.submit([encoder.finish()]);
        staging.slice(..).map_async(wgpu::MapMode::Read, |r| r.unwrap());
        device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        let gpu: Vec<u32> = bytemuck::cast_slice(&staging.get_mapped_range(..).unwrap()).to_vec();
        let view = DataView::from_f32(&x, d).unwrap();
        let (cpu, proba) = (got.predict(&view).unwrap(), got.predict_proba(&view).unwrap());
        // Identical but at near ties (responsibilities within fast f32's reach of each other).
        for (i, (&g, &c)) in gpu.iter().zip(&cpu).enumerate() {
            let gap = (proba[i * 3 + g as usize] - proba[i * 3 + c]).abs();
            assert!(g as usize == c || gap < 1e-5, "{cov}: sample {i}: GPU {g}, CPU {c}");
        }
    }
}
