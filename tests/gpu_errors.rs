//! The GPU's typed errors and the CI switch. Each test that changes the environment runs alone in a
//! child process (this same test binary), so that no other test sees it.

mod common;

use std::process::Command;

use common::gpu;
use gmm_gpu::{BackendKind, DataView, GmmError, GmmParams, GpuContext};

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
    assert!(stderr.contains("a GPU adapter is required"), "{stderr}");
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
fn auto_uses_the_gpu_when_there_is_one() {
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
    assert_eq!(m.backend(), "gpu");
    assert_eq!(m.adapter(), Some(ctx.adapter_name().as_str()));
}

#[test]
fn too_many_features_for_the_gpu() {
    let Some(ctx) = gpu() else { return };
    let d = gmm_gpu::gpu::MAX_GPU_FEATURES + 1;
    let x = vec![0.25; 4 * d];
    let data = DataView::from_f64(&x, d).unwrap();
    let err = GmmParams::builder(1).build().unwrap().fit_on(ctx, &data).unwrap_err();
    assert!(
        matches!(err, GmmError::TooManyFeaturesForGpu { n_features, max: 128 } if n_features == d),
        "{err}"
    );
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
