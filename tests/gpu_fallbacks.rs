//! The kernels with the device's subgroups and fma against their portable fallbacks
//! (`GpuContext::fallback_kernels`): the tree sums' subgroup levels (shaders/tree_subgroup.wgsl)
//! pair as the workgroup-memory tree (shaders/tree.wgsl) does, and fma's error-free products equal
//! Dekker's, so the results are bitwise the same. Runs on any wgpu adapter; with CI=true or
//! GMM_REQUIRE_GPU=1 a missing adapter fails, and so does one without subgroups (CI's lavapipe has
//! 8-wide ones; its fma rounds twice, which the probe finds, so there both builds use Dekker's
//! products; on an NVIDIA GPU both differences are exercised: benches/device/run.sh runs this test
//! there).

mod common;

use common::{blobs, gpu, shared_start};
use gmm_gpu::{CovarianceType, DataView, GpuKernels, GpuPrecision};

/// Every covariance type, fused and split, in every arithmetic (fast, exact in f64 where the device
/// has it, exact two-float), weighted samples over several chunks with a partial last workgroup: the log-likelihood (summed per workgroup by the tree: `normalise` in the split
/// kernels, the block's score in the fused one) and so every iteration's lower bound, and the model
/// (every statistic a sum of error-free products), are bitwise the same with the device's subgroups
/// and fma and without. A k-means start also runs `assign`'s tree.
#[test]
fn subgroups_and_fma_give_bitwise_the_fallbacks_results() {
    let Some(ctx) = gpu() else { return };
    let plain = ctx.fallback_kernels();
    assert_eq!(plain.subgroup_width(), None);
    assert!(!plain.exact_fma().unwrap());
    let (width, fma) = (ctx.subgroup_width(), ctx.exact_fma().unwrap());
    println!("{}: subgroup width {width:?}, exact fma {fma}", ctx.adapter_name());
    // Where a GPU is required (CI=true or GMM_REQUIRE_GPU=1, as for every GPU test), so are its
    // subgroups: CI's lavapipe has them, and without them half of this comparison is vacuous.
    assert!(
        !common::gpu_required() || width.is_some(),
        "{}: no subgroups, while CI's lavapipe has them",
        ctx.adapter_name()
    );
    if width.is_none() {
        eprintln!(
            "NOT RUN: {} has no subgroups, so only fma against Dekker's products is compared",
            ctx.adapter_name()
        );
    }
    let (n, d, k) = (5_003, 3, 4);
    let centres: Vec<f64> = (0..k * d).map(|i| 2.0 * ((i / d + i % d) % k) as f64).collect();
    let x = blobs(n, &centres, d, 1.0, 21);
    let w: Vec<f64> = (0..n).map(|i| 0.25 + (i % 5) as f64 * 0.5).collect();
    let view = DataView::from_f64(&x, d).unwrap();
    // Each arithmetic: fast, exact on the device (f64 where it has it) and exact two-float.
    let (two_float, two_float_plain) = (ctx.without_f64(), plain.without_f64());
    let arithmetics = [
        (ctx, &plain, GpuPrecision::Fast),
        (ctx, &plain, GpuPrecision::Exact),
        (&two_float, &two_float_plain, GpuPrecision::Exact),
    ];
    for cov in CovarianceType::ALL {
        for ((with, without, precision), kernels) in arithmetics
            .iter()
            .flat_map(|a| [GpuKernels::Auto, GpuKernels::Split].map(|k| (*a, k)))
        {
            let what = format!("{cov} {kernels:?} {precision} (f64 {})", with.has_f64());
            let params = shared_start(&view, k, cov)
                .tol(0.0)
                .max_iter(4)
                .chunk_size(2_000)
                .gpu_kernels(kernels)
                .gpu_precision(precision)
                .build()
                .unwrap();
            let fit = |c: &gmm_gpu::GpuContext| {
                gmm_gpu::GaussianMixture::on_gpu(params.clone(), c.clone())
                    .fit_weighted(&view, &w)
                    .unwrap()
                    .clone()
            };
            let (a, b) = (fit(with), fit(without));
            assert_eq!(
                a.lower_bound().to_bits(),
                b.lower_bound().to_bits(),
                "{what}: lower bound {} with subgroups and fma, {} without",
                a.lower_bound(),
                b.lower_bound()
            );
            for (name, x, y) in [
                ("weights", a.weights(), b.weights()),
                ("means", a.means(), b.means()),
                ("covariances", a.covariances(), b.covariances()),
            ] {
                if let Some(i) = x.iter().zip(y).position(|(p, q)| p.to_bits() != q.to_bits()) {
                    panic!(
                        "{what}: {name}[{i}] is {} with subgroups and fma, {} without",
                        x[i], y[i]
                    );
                }
            }
        }
        // The k-means start (`assign`'s inertia through the tree) picks the same initial model.
        let kmeans = |c: &gmm_gpu::GpuContext| {
            gmm_gpu::GmmParams::builder(k)
                .covariance_type(cov)
                .max_iter(0)
                .seed(5)
                .build()
                .unwrap()
                .fit_on(c, &view)
                .unwrap()
        };
        let (a, b) = (kmeans(ctx), kmeans(&plain));
        assert_eq!(a.means(), b.means(), "{cov}: k-means means");
        assert_eq!(
            a.lower_bound().to_bits(),
            b.lower_bound().to_bits(),
            "{cov}: k-means lower bound"
        );
    }
}
