//! Helpers shared by the integration tests: tolerance checks that name the worst entry, and seeded data.
#![allow(dead_code)]

pub mod cli;
pub mod ranks;
pub mod stress;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// The worst entry of `actual` against `expected` under |a − e| <= atol + rtol·|e|, as
/// (index, actual, expected, the ratio of the error to its allowance).
pub fn worst(actual: &[f64], expected: &[f64], rtol: f64, atol: f64) -> (usize, f64, f64, f64) {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    let mut w = (0, 0.0, 0.0, -1.0);
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let ratio = if a == e {
            0.0
        } else {
            (a - e).abs() / (atol + rtol * e.abs())
        };
        let ratio = if ratio.is_nan() { f64::INFINITY } else { ratio };
        if ratio > w.3 {
            w = (i, a, e, ratio);
        }
    }
    w
}

/// Asserts |a − e| <= atol + rtol·|e| everywhere, naming the worst entry on failure.
#[track_caller]
pub fn assert_close(what: &str, actual: &[f64], expected: &[f64], rtol: f64, atol: f64) {
    let (i, a, e, ratio) = worst(actual, expected, rtol, atol);
    assert!(
        ratio <= 1.0,
        "{what}: worst entry [{i}] is {a:e}, expected {e:e} (|diff| = {:e}, allowed {:e} = {atol:e} + {rtol:e}·|e|)",
        (a - e).abs(),
        atol + rtol * e.abs()
    );
}

/// The largest relative error max |a − e| / max(|e|, floor); a NaN on either side counts as ∞
/// (`f64::max` would drop it, so a NaN model would pass).
pub fn max_rel(actual: &[f64], expected: &[f64], floor: f64) -> f64 {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs() / e.abs().max(floor))
        .map(|r| if r.is_nan() { f64::INFINITY } else { r })
        .fold(0.0, f64::max)
}

/// The heights example of source document 002: 600 draws of N(176, 8²) then 400 of N(164, 6²).
pub fn heights(seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let male = Normal::new(176.0, 8.0).unwrap();
    let female = Normal::new(164.0, 6.0).unwrap();
    let mut x: Vec<f64> = (0..600).map(|_| male.sample(&mut rng)).collect();
    x.extend((0..400).map(|_| female.sample(&mut rng)));
    x
}

/// `n` samples of isotropic Gaussian blobs around `centres` (row-major K x d), cycling through them.
pub fn blobs(n: usize, centres: &[f64], d: usize, spread: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let k = centres.len() / d;
    let noise = Normal::new(0.0, spread).unwrap();
    let mut x = Vec::with_capacity(n * d);
    for i in 0..n {
        let c = &centres[(i % k) * d..(i % k + 1) * d];
        x.extend(c.iter().map(|m| m + noise.sample(&mut rng)));
    }
    x
}

/// Fisher's iris: the 4 measurements (row-major 150 x 4) and the species (0, 1, 2).
pub fn iris() -> (Vec<f64>, Vec<usize>) {
    let text = include_str!("../data/iris.csv");
    let mut x = Vec::new();
    let mut species = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        x.extend(fields[..4].iter().map(|f| f.trim().parse::<f64>().unwrap()));
        species.push(fields[4].trim().parse::<usize>().unwrap());
    }
    (x, species)
}

/// Whether a GPU is required: with CI=true (or 1) or GMM_REQUIRE_GPU=1 a missing adapter or device
/// fails the test instead of skipping it.
pub fn gpu_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("GMM_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// What a test does when the GPU it needs cannot be had: panics with `why` when a GPU is required
/// (see [`gpu_required`]), else says loudly that the test did not run and returns `None`.
#[track_caller]
pub fn gpu_unavailable<T>(why: &str) -> Option<T> {
    if gpu_required() {
        panic!("a GPU is required here (CI=true or GMM_REQUIRE_GPU=1): {why}");
    }
    eprintln!("NOT RUN: {why}; set GMM_REQUIRE_GPU=1 to make this a failure");
    None
}

/// The GPU context shared by a test binary, or `None` (with a loud note) when there is no adapter
/// and none is required. With CI=true or GMM_REQUIRE_GPU=1 a missing adapter fails the test.
pub fn gpu() -> Option<&'static gmm_gpu::GpuContext> {
    use std::sync::OnceLock;
    static CTX: OnceLock<Result<gmm_gpu::GpuContext, String>> = OnceLock::new();
    match CTX.get_or_init(|| gmm_gpu::GpuContext::new().map_err(|e| e.to_string())) {
        Ok(ctx) => Some(ctx),
        Err(e) => gpu_unavailable(&format!("no GPU adapter ({e})")),
    }
}

/// A device of the caller's own, made with wgpu directly (not through the crate), with `limits`
/// (the adapter's own where None) and no optional features (no f64, no subgroups, no timestamps),
/// as an engine (Bevy, a browser) requests one; with its adapter. When none can be had, the test
/// fails if a GPU is required and is otherwise reported as NOT RUN (`None`).
pub fn callers_device(limits: Option<wgpu::Limits>) -> Option<(wgpu::Adapter, wgpu::Device, wgpu::Queue)> {
    gpu()?;
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = wgpu::Backends::PRIMARY;
    let instance = wgpu::Instance::new(desc);
    let adapter = match pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())) {
        Ok(adapter) => adapter,
        Err(e) => return gpu_unavailable(&format!("wgpu found no adapter for the caller's own device ({e})")),
    };
    let device = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("the caller's device"),
        required_features: wgpu::Features::empty(),
        required_limits: limits.unwrap_or_else(|| adapter.limits()),
        ..Default::default()
    }));
    match device {
        Ok((device, queue)) => Some((adapter, device, queue)),
        Err(e) => gpu_unavailable(&format!(
            "the adapter '{}' gave no device ({e})",
            adapter.get_info().name
        )),
    }
}

/// The same device with its exact kernels in two-float even where it has f64
/// (`GpuContext::without_f64`). One per test binary, so its pipelines are built once.
pub fn gpu_two_float() -> Option<&'static gmm_gpu::GpuContext> {
    use std::sync::OnceLock;
    static CTX: OnceLock<gmm_gpu::GpuContext> = OnceLock::new();
    gpu().map(|ctx| CTX.get_or_init(|| ctx.without_f64()))
}

/// The name a fit's record gives `GpuPrecision::Exact` on `ctx`: the rate probe's choice
/// (`GpuContext::exact_kernels_name`), not merely whether the device has f64.
pub fn exact_name(ctx: &gmm_gpu::GpuContext) -> &'static str {
    ctx.exact_kernels_name().expect("the rate probe runs")
}

/// A starting point the GPU and CPU paths share: the CPU's k-means initialisation (seed 3), given
/// to both as user parameters, so that nothing but the E-step and statistics differ.
pub fn shared_start(data: &gmm_gpu::DataView, k: usize, cov: gmm_gpu::CovarianceType) -> gmm_gpu::GmmParamsBuilder {
    let init = gmm_gpu::GmmParams::builder(k)
        .covariance_type(cov)
        .max_iter(0)
        .seed(3)
        .build()
        .unwrap()
        .fit(data)
        .unwrap();
    gmm_gpu::GmmParams::builder(k)
        .covariance_type(cov)
        .weights_init(init.weights().to_vec())
        .means_init(init.means().to_vec())
        .precisions_init(init.precisions())
}

/// Writes a .npy (format 1.0, C order) of `shape` with raw little-endian `values` of `descr`.
pub fn write_npy_bytes(path: &std::path::Path, descr: &str, shape: &str, fortran: bool, values: &[u8]) {
    let mut dict = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((dict.len() as u16).to_le_bytes());
    bytes.extend(dict.as_bytes());
    bytes.extend(values);
    std::fs::write(path, bytes).unwrap();
}

pub fn write_npy_f32(path: &std::path::Path, x: &[f32], d: usize) {
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy_bytes(path, "<f4", &format!("({}, {d})", x.len() / d), false, &bytes);
}

pub fn write_npy_f64(path: &std::path::Path, x: &[f64], d: usize) {
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy_bytes(path, "<f8", &format!("({}, {d})", x.len() / d), false, &bytes);
}

/// Runs `f` on a thread of its own and waits at most `secs` for it: ranks of a distributed fit
/// that wait for each other forever fail the test instead of stalling the suite.
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("not finished within {secs} s: a rank waits for another that has moved on")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("a rank panicked (see above)"),
    }
}

/// Every number of a fixture's nested JSON arrays, in order (row-major).
pub fn flat(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(a) => a.iter().flat_map(flat).collect(),
        serde_json::Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("unexpected fixture value {other}"),
    }
}

/// Fits `params` and returns the model with every initialisation's final lower bound, as the
/// monitor reports them (`FitEvent::InitEnd`).
pub fn fit_with_init_ends(params: gmm_gpu::GmmParams, data: &gmm_gpu::DataView) -> (gmm_gpu::GmmModel, Vec<f64>) {
    let mut ends = Vec::new();
    let mut gm = gmm_gpu::GaussianMixture::new(params);
    let m = gm
        .fit_monitored(data, None, &mut |e| {
            if let gmm_gpu::FitEvent::InitEnd { lower_bound, .. } = e {
                ends.push(*lower_bound);
            }
            std::ops::ControlFlow::Continue(())
        })
        .unwrap()
        .clone();
    (m, ends)
}
