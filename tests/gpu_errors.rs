//! The GPU's typed errors and the CI switch. Each test that changes the environment runs alone in a
//! child process (this same test binary), so that no other test sees it.

mod common;

use std::process::Command;

use common::gpu;
use gmm_gpu::{BackendKind, CovarianceType, DataView, GmmError, GmmParams, GpuContext};

/// Runs one test of this binary in a child process with extra environment variables.
fn run_alone(test: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--include-ignored"])
        .env("GMM_CHILD", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn in_child() -> bool {
    std::env::var("GMM_CHILD").is_ok()
}

#[test]
fn an_unknown_adapter_name_is_no_adapter() {
    if !in_child() {
        let out = run_alone(
            "an_unknown_adapter_name_is_no_adapter",
            &[("WGPU_ADAPTER_NAME", "no-such-gpu-anywhere")],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        return;
    }
    let err = GpuContext::new().unwrap_err();
    assert!(
        matches!(&err, GmmError::NoAdapter { detail } if detail.contains("no-such-gpu-anywhere")),
        "{err}"
    );
    assert!(err.to_string().contains("mesa-vulkan-drivers"), "{err}");
    // The explicit GPU backend reports it; Auto falls back to the CPU and says so in the model.
    let x: Vec<f64> = (0..40).map(|i| (i as f64 * 0.7).sin()).collect();
    let data = DataView::from_f64(&x, 2).unwrap();
    let gpu_err = GmmParams::builder(2)
        .backend(BackendKind::Gpu)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap_err();
    assert!(matches!(gpu_err, GmmError::NoAdapter { .. }), "{gpu_err}");
    let auto = GmmParams::builder(2)
        .backend(BackendKind::Auto)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    assert_eq!(auto.backend(), "cpu");
}

#[test]
fn ci_makes_a_missing_adapter_a_failure() {
    if in_child() {
        // In the child: the shared helper must fail (not skip) when CI=true and there is no adapter.
        gpu();
        return;
    }
    let out = run_alone(
        "ci_makes_a_missing_adapter_a_failure",
        &[("WGPU_ADAPTER_NAME", "no-such-gpu-anywhere"), ("CI", "true")],
    );
    assert!(
        !out.status.success(),
        "a missing adapter under CI=true must fail the test"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a GPU is required here"), "{stderr}");
    let out = run_alone(
        "ci_makes_a_missing_adapter_a_failure",
        &[
            ("WGPU_ADAPTER_NAME", "no-such-gpu-anywhere"),
            ("CI", "false"),
            ("GMM_REQUIRE_GPU", "1"),
        ],
    );
    assert!(!out.status.success(), "GMM_REQUIRE_GPU=1 must fail the test too");
}

#[test]
fn auto_uses_a_hardware_gpu_and_never_a_software_one() {
    let Some(ctx) = gpu() else { return };
    let x: Vec<f64> = (0..400)
        .map(|i| (i as f64 * 0.37).sin() * 3.0 + (i % 2) as f64 * 5.0)
        .collect();
    let data = DataView::from_f64(&x, 2).unwrap();
    let m = GmmParams::builder(2)
        .backend(BackendKind::Auto)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    // The tests' context is the best adapter of any kind; Auto takes it only if it is hardware.
    if ctx.adapter_info().device_type == wgpu::DeviceType::Cpu {
        assert_eq!(
            m.backend(),
            "cpu",
            "Auto ran on the software adapter {}",
            ctx.adapter_name()
        );
        assert_eq!(m.adapter(), None);
        assert!(
            matches!(GpuContext::auto(), Err(GmmError::SoftwareAdapterOnly { .. })),
            "Auto's context"
        );
        let why = m.fallback_reason().expect("the model records why Auto used the CPU");
        assert!(why.contains("software"), "{why}");
    } else {
        assert_eq!(m.backend(), "gpu");
        assert_eq!(m.adapter(), Some(ctx.adapter_name().as_str()));
    }
    // BackendKind::Gpu takes whatever adapter there is, software too.
    let g = GmmParams::builder(2)
        .backend(BackendKind::Gpu)
        .build()
        .unwrap()
        .fit(&data)
        .unwrap();
    assert_eq!(g.backend(), "gpu");
}

#[test]
fn auto_falls_back_to_the_cpu_when_the_gpu_cannot_run_the_fit() {
    let Some(_) = gpu() else { return };
    // More features than the kernels take (full covariances, the default): Gpu refuses, Auto fits
    // on the CPU.
    let d = gmm_gpu::gpu::MAX_GPU_FEATURES_TRIANGULAR + 1;
    let x: Vec<f64> = (0..6 * d).map(|i| ((i * 7) % 13) as f64).collect();
    let data = DataView::from_f64(&x, d).unwrap();
    let params = |b| {
        GmmParams::builder(1)
            .backend(b)
            .reg_covar(1e-3)
            .max_iter(2)
            .build()
            .unwrap()
    };
    assert!(matches!(
        params(BackendKind::Gpu).fit(&data),
        Err(GmmError::TooManyFeaturesForGpu { .. })
    ));
    let m = params(BackendKind::Auto).fit(&data).unwrap();
    assert_eq!(m.backend(), "cpu");
    assert!(
        m.fallback_reason().is_some_and(|w| w.contains("features")),
        "{:?}",
        m.fallback_reason()
    );
    // Sample weights beyond f32's range relative to each other: Gpu refuses with the index, Auto
    // falls back.
    let x: Vec<f64> = (0..200).map(|i| (i % 17) as f64).collect();
    let data = DataView::from_f64(&x, 1).unwrap();
    let mut w = vec![1.0; 200];
    w[7] = 1e-50;
    let err = params(BackendKind::Gpu).fit_weighted(&data, &w).unwrap_err();
    assert!(
        matches!(err, GmmError::SampleWeightOutsideF32Range { index: 7, .. }),
        "{err}"
    );
    let m = params(BackendKind::Auto).fit_weighted(&data, &w).unwrap();
    assert_eq!(m.backend(), "cpu");
}

/// A value that f32 cannot hold even after its feature is centred and scaled is a typed error
/// naming its row and column.
#[test]
fn data_beyond_f32_after_scaling_is_a_typed_error() {
    let Some(ctx) = gpu() else { return };
    // Column 1 holds ±1e30 (mean exactly 0, so it is scaled by 2^100) and ±1e-20, which then falls
    // below f32's smallest normal.
    let x: Vec<f64> = (0..100)
        .flat_map(|i| {
            let v = match i {
                98 => 1e-20,
                99 => -1e-20,
                _ if i % 2 == 0 => 1e30,
                _ => -1e30,
            };
            [(i % 9) as f64, v]
        })
        .collect();
    let data = DataView::from_f64(&x, 2).unwrap();
    let params = GmmParams::builder(1).max_iter(2).build().unwrap();
    let err = params.fit_on(ctx, &data).unwrap_err();
    assert!(
        matches!(err, GmmError::DataOutsideF32Range { row: 98, column: 1, .. }),
        "{err}"
    );
    // The CPU fits it.
    assert!(params.fit(&data).is_ok());
}

#[test]
fn too_many_features_for_the_gpu() {
    let Some(ctx) = gpu() else { return };
    // Each type's own limit: 1,024 for full and tied, 4,096 for diag and spherical.
    for (cov, max_d) in [
        (CovarianceType::Full, gmm_gpu::gpu::MAX_GPU_FEATURES_TRIANGULAR),
        (CovarianceType::Tied, gmm_gpu::gpu::MAX_GPU_FEATURES_TRIANGULAR),
        (CovarianceType::Diag, gmm_gpu::gpu::MAX_GPU_FEATURES),
        (CovarianceType::Spherical, gmm_gpu::gpu::MAX_GPU_FEATURES),
    ] {
        let d = max_d + 1;
        let x = vec![0.25; 4 * d];
        let data = DataView::from_f64(&x, d).unwrap();
        let params = GmmParams::builder(1).covariance_type(cov).build().unwrap();
        let err = params.fit_on(ctx, &data).unwrap_err();
        assert!(
            matches!(err, GmmError::TooManyFeaturesForGpu { n_features, max } if n_features == d && max == max_d),
            "{cov}: {err}"
        );
    }
}

#[test]
fn zero_chunk_size() {
    let err = GmmParams::builder(2).chunk_size(0).build().unwrap_err();
    assert!(matches!(err, GmmError::ZeroChunkSize), "{err}");
}

#[test]
fn too_many_components_for_the_gpu() {
    let Some(ctx) = gpu() else { return };
    let k = gmm_gpu::gpu::MAX_GPU_COMPONENTS + 1;
    let x: Vec<f64> = (0..k + 1).map(|i| i as f64).collect();
    let data = DataView::from_f64(&x, 1).unwrap();
    let err = GmmParams::builder(k).build().unwrap().fit_on(ctx, &data).unwrap_err();
    assert!(
        matches!(err, GmmError::TooManyComponentsForGpu { n_components, max: 16_384 } if n_components == k),
        "{err}"
    );
}
