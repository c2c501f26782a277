//! `gmm fit` under `mpirun -n P` (feature `mpi`): the same model as one process, bitwise the same on
//! a rerun with the same P, and one message naming the global row for a bad value on any rank.
//! Run by `.ci/run` as `cargo test --release --features mpi --test mpi`; needs `mpirun` (Open MPI).
#![cfg(feature = "mpi")]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{blobs, write_npy_f64};
use gmm_gpu::{CovarianceType, DataView, GmmModel, GmmParams};

fn mpirun(p: usize, dir: &Path, args: &[&str]) -> Output {
    Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-n", &p.to_string()])
        .arg(env!("CARGO_BIN_EXE_gmm"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("mpirun runs (install openmpi-bin)")
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    common::max_rel(a, b, 1.0)
}

/// A start (k-means with no EM) written as `init.json`, and the library's CPU fit from it with tol 0.
fn start_and_cpu_fit(dir: &Path, view: &DataView, cov: CovarianceType, iters: usize) -> GmmModel {
    let start = GmmParams::builder(3)
        .covariance_type(cov)
        .max_iter(0)
        .seed(1)
        .build()
        .unwrap()
        .fit(view)
        .unwrap();
    let init = serde_json::json!({
        "weights": start.weights(),
        "means": start.means().chunks(3).collect::<Vec<_>>(),
    });
    std::fs::write(dir.join("init.json"), init.to_string()).unwrap();
    GmmParams::builder(3)
        .covariance_type(cov)
        .weights_init(start.weights().to_vec())
        .means_init(start.means().to_vec())
        .tol(0.0)
        .max_iter(iters)
        .build()
        .unwrap()
        .fit(view)
        .unwrap()
}

fn model(dir: &Path, name: &str) -> GmmModel {
    GmmModel::from_json(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

#[test]
fn fits_on_one_two_and_three_ranks_equal_the_library_fit() {
    let dir = tempfile::tempdir().unwrap();
    let x = blobs(6001, &[0.0, 0.0, 0.0, 6.0, -6.0, 6.0, 12.0, -12.0, 12.0], 3, 1.0, 21);
    write_npy_f64(&dir.path().join("x.npy"), &x, 3);
    let view = DataView::from_f64(&x, 3).unwrap();
    for cov in [CovarianceType::Full, CovarianceType::Diag] {
        // From a given start (an init file) every sum differs from one process's only in order:
        // 1e-12 relative. With k-means init (global k-means++ and Lloyd) 1e-10.
        let given = start_and_cpu_fit(dir.path(), &view, cov, 15);
        let cov_name = cov.to_string();
        let kmeans = GmmParams::builder(3)
            .covariance_type(cov)
            .seed(7)
            .build()
            .unwrap()
            .fit(&view)
            .unwrap();
        for p in 1..=3 {
            let run = |extra: &[&str], out: &str| {
                let mut args = vec![
                    "-q",
                    "fit",
                    "x.npy",
                    "-k",
                    "3",
                    "--covariance",
                    &cov_name,
                    "--backend",
                    "cpu",
                    "-o",
                    out,
                ];
                args.extend_from_slice(extra);
                let o = mpirun(p, dir.path(), &args);
                assert!(
                    o.status.success(),
                    "P={p} {cov}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                model(dir.path(), out)
            };
            let m = run(
                &["--init-file", "init.json", "--tol", "0", "--max-iter", "15"],
                "given.json",
            );
            for (what, a, b) in [
                ("means", m.means(), given.means()),
                ("covariances", m.covariances(), given.covariances()),
                ("lower bounds", m.lower_bounds(), given.lower_bounds()),
            ] {
                let e = max_rel(a, b);
                assert!(e <= 1e-12, "P={p} {cov} given start: {what} differ by {e:e}");
            }
            let again = run(
                &["--init-file", "init.json", "--tol", "0", "--max-iter", "15"],
                "again.json",
            );
            assert_eq!(again.means(), m.means(), "P={p} {cov}: a rerun differs");
            let k = run(&["--seed", "7"], "kmeans.json");
            assert_eq!(k.n_iter(), kmeans.n_iter(), "P={p} {cov} k-means");
            let e = max_rel(k.means(), kmeans.means()).max(max_rel(k.covariances(), kmeans.covariances()));
            assert!(e <= 1e-10, "P={p} {cov} k-means init: differ by {e:e}");
        }
    }
}

#[test]
fn a_bad_value_on_one_rank_stops_every_rank_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = blobs(3000, &[0.0, 0.0, 0.0, 6.0, -6.0, 6.0], 3, 1.0, 4);
    x[2500 * 3 + 1] = f64::INFINITY; // global row 2500: rank 2's rows are 2000..3000
    write_npy_f64(&dir.path().join("x.npy"), &x, 3);
    let o = mpirun(
        3,
        dir.path(),
        &["fit", "x.npy", "-k", "2", "--backend", "cpu", "-o", "m.json"],
    );
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let ours: Vec<&str> = stderr.lines().filter(|l| l.starts_with("gmm:")).collect();
    assert_eq!(ours.len(), 1, "{stderr}");
    assert!(ours[0].contains("row 2500, column 1"), "{}", ours[0]);
    assert!(!dir.path().join("m.json").exists(), "a failed fit left a model");
}

/// `gmm fit --online` under mpirun: each rank steps through its own rows (`rows_of`) in batches
/// of --batch-size, so the model equals the library's stepwise EM in one process over batches that
/// concatenate every rank's t-th batch (ranks of unequal length included), weighted or not;
/// `--backend gpu` is refused with one message and no model.
#[test]
fn an_online_fit_under_mpirun_equals_one_process_over_the_concatenated_batches() {
    let dir = tempfile::tempdir().unwrap();
    let n = 1001;
    let x = blobs(n, &[0.0, 0.0, 0.0, 6.0, -6.0, 6.0], 3, 1.0, 4);
    write_npy_f64(&dir.path().join("x.npy"), &x, 3);
    let w: Vec<f64> = (0..n).map(|i| ((i * 37) % 20) as f64 / 10.0 + 0.05).collect();
    let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
    common::write_npy_bytes(&dir.path().join("w.npy"), "<f8", &format!("({n},)"), false, &bytes);
    let b = 60;
    let params = GmmParams::builder(2)
        .seed(5)
        .online(gmm_gpu::Online::default().batch_size(b).passes(2))
        .build()
        .unwrap();
    for p in [2, 3] {
        for weighted in [false, true] {
            let ranks: Vec<_> = (0..p).map(|r| gmm_gpu::distributed::rows_of(r, p, n)).collect();
            let steps = ranks.iter().map(|r| r.len().div_ceil(b)).max().unwrap();
            let mut gm = gmm_gpu::GaussianMixture::new(params.clone());
            for _ in 0..2 {
                for s in 0..steps {
                    let rows: Vec<usize> = ranks
                        .iter()
                        .flat_map(|r| r.start + (s * b).min(r.len())..r.start + ((s + 1) * b).min(r.len()))
                        .collect();
                    let batch: Vec<f64> = rows.iter().flat_map(|&i| x[i * 3..i * 3 + 3].to_vec()).collect();
                    let batch = DataView::from_f64(&batch, 3).unwrap();
                    if weighted {
                        let bw: Vec<f64> = rows.iter().map(|&i| w[i]).collect();
                        gm.partial_fit_weighted(&batch, &bw).unwrap();
                    } else {
                        gm.partial_fit(&batch).unwrap();
                    }
                }
            }
            let one = gm.into_model().unwrap();
            let mut args = vec![
                "-q",
                "fit",
                "x.npy",
                "-k",
                "2",
                "--backend",
                "cpu",
                "--seed",
                "5",
                "--batch-size",
                "60",
                "--passes",
                "2",
                "-o",
                "online.json",
            ];
            if weighted {
                args.extend_from_slice(&["--sample-weight", "w.npy"]);
            }
            let o = mpirun(p, dir.path(), &args);
            assert!(o.status.success(), "P={p}: {}", String::from_utf8_lossy(&o.stderr));
            let m = model(dir.path(), "online.json");
            assert_eq!(m.n_iter(), one.n_iter(), "P={p}");
            // Each step's sums in another order, over 34 steps: 1e-13 (the library's thread-rank
            // test sees 2e-14 at most).
            let e = max_rel(m.means(), one.means())
                .max(max_rel(m.covariances(), one.covariances()))
                .max(max_rel(m.weights(), one.weights()))
                .max(max_rel(m.lower_bounds(), one.lower_bounds()));
            assert!(e <= 1e-13, "P={p} weighted {weighted}: differ by {e:e}");
        }
    }
    // One message, and no model: the GPU refused; a bad weight named by its row of the file
    // (rank 1's of 2, in its fourth batch); batches below K, refused as in one process.
    let mut bad = w.clone();
    bad[700] = f64::NAN;
    let bytes: Vec<u8> = bad.iter().flat_map(|v| v.to_le_bytes()).collect();
    common::write_npy_bytes(&dir.path().join("bad.npy"), "<f8", &format!("({n},)"), false, &bytes);
    for (extra, want) in [
        (
            &["-k", "2", "--backend", "gpu", "--online"][..],
            "gmm: --online with --backend gpu",
        ),
        (
            &["-k", "2", "--online", "--sample-weight", "bad.npy"][..],
            "sample_weight[700] is NaN",
        ),
        (&["-k", "3", "--batch-size", "1"][..], "--batch-size 1 is below -k 3"),
    ] {
        let mut args = vec!["fit", "x.npy", "-o", "m.json"];
        args.extend_from_slice(extra);
        let o = mpirun(2, dir.path(), &args);
        assert!(!o.status.success(), "{extra:?}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        let ours: Vec<&str> = stderr.lines().filter(|l| l.starts_with("gmm:")).collect();
        assert_eq!(ours.len(), 1, "{extra:?}: {stderr}");
        assert!(ours[0].contains(want), "{extra:?}: {}", ours[0]);
        assert!(!dir.path().join("m.json").exists(), "a refused fit left a model");
    }
}

#[test]
fn predict_and_score_under_mpirun_write_the_same_files_as_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let x = blobs(5003, &[0.0, 0.0, 0.0, 6.0, -6.0, 6.0], 3, 1.0, 8);
    write_npy_f64(&dir.path().join("x.npy"), &x, 3);
    let view = DataView::from_f64(&x, 3).unwrap();
    let m = GmmParams::builder(2).build().unwrap().fit(&view).unwrap();
    std::fs::write(dir.path().join("m.json"), m.to_json()).unwrap();
    let one = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_gmm"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    for (cmd, extra) in [("predict", "--proba"), ("predict", ""), ("score", "")] {
        let mut args = vec![cmd, "m.json", "x.npy"];
        if !extra.is_empty() {
            args.push(extra);
        }
        one(&[&args[..], &["-o", "one.npy"]].concat());
        let o = mpirun(3, dir.path(), &[&args[..], &["-o", "three.npy"]].concat());
        assert!(
            o.status.success(),
            "{cmd} {extra}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        // Each rank wrote its rows in place: the same bytes as one process's file.
        let (a, b) = (
            std::fs::read(dir.path().join("one.npy")).unwrap(),
            std::fs::read(dir.path().join("three.npy")).unwrap(),
        );
        assert!(a == b, "{cmd} {extra}: the files differ");
        if cmd == "score" {
            // The mean, summed in another order: to 1e-14 relative.
            let (p, q): (f64, f64) = (
                String::from_utf8_lossy(&o.stdout).trim().parse().unwrap(),
                one(&["score", "m.json", "x.npy"]).trim().parse().unwrap(),
            );
            assert!((p - q).abs() <= 1e-14 * q.abs(), "{p} vs {q}");
        }
    }
    // Labels to stdout would interleave between ranks: one message says to write a .npy.
    let o = mpirun(3, dir.path(), &["predict", "m.json", "x.npy"]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.matches("gmm: ").count(), 1, "{stderr}");
    assert!(stderr.contains("needs a .npy output"), "{stderr}");
    assert!(
        !std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains("gmm-mpi")),
        "a partial file was left behind"
    );
}

#[test]
fn each_rank_can_fit_on_its_own_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let x = blobs(20_000, &[0.0, 0.0, 0.0, 6.0, -6.0, 6.0, 12.0, -12.0, 12.0], 3, 1.0, 5);
    write_npy_f64(&dir.path().join("x.npy"), &x, 3);
    let view = DataView::from_f64(&x, 3).unwrap();
    let cpu = start_and_cpu_fit(dir.path(), &view, CovarianceType::Full, 10);
    let args = [
        "-q",
        "fit",
        "x.npy",
        "-k",
        "3",
        "--backend",
        "gpu",
        "--init-file",
        "init.json",
        "--tol",
        "0",
        "--max-iter",
        "10",
        "-o",
        "g.json",
    ];
    let o = mpirun(2, dir.path(), &args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let g = model(dir.path(), "g.json");
    assert_eq!(g.backend(), "gpu");
    // Each rank's GPU runs Auto on f32 data: the model agreed with the f64 CPU fit to ~5e-9 here
    // (within the f32 rounding of the data, averaged); 5e-8 leaves a margin of ten.
    let e = max_rel(g.means(), cpu.means()).max(max_rel(g.covariances(), cpu.covariances()));
    assert!(e <= 5e-8, "GPU ranks differ from the CPU fit by {e:e}");
}

/// `mpirun` as [`mpirun`] with `envs` set, killed and failed after `secs`: ranks that wait for
/// each other forever fail the test instead of stalling CI.
fn mpirun_within(p: usize, dir: &Path, args: &[&str], envs: &[(&str, &str)], secs: u64) -> Output {
    let mut child = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-n", &p.to_string()])
        .arg(env!("CARGO_BIN_EXE_gmm"))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mpirun runs (install openmpi-bin)");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed().as_secs() > secs {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "mpirun -n {p} did not finish within {secs} s (a rank waits for another):\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Issue 25 under mpirun: the data of tests/distributed_gpu.rs puts the first blob past Auto's
/// guard in the last rank's frame only. Every rank switches, at the same point and for the same
/// reason (each logs its switch: P identical lines), none waits for another, and the model
/// equals the f64 fit of the data as the ranks hold it within the exact kernels' tolerance.
#[test]
fn auto_runs_one_arithmetic_on_every_rank_under_mpirun() {
    use common::ranks::{TWO_FLOAT, cpu_fit_of_ranks_image, data, params};
    use gmm_gpu::{GpuKernels, GpuPrecision};
    let dir = tempfile::tempdir().unwrap();
    for p in [2, 3] {
        let x = data(p);
        write_npy_f64(&dir.path().join("x.npy"), &x, 2);
        let start = params(p, GpuKernels::Auto, GpuPrecision::Auto, 0.0);
        let init = serde_json::json!({
            "weights": start.weights_init().unwrap(),
            "means": start.means_init().unwrap().chunks(2).collect::<Vec<_>>(),
            "precisions": [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]],
        });
        std::fs::write(dir.path().join("init.json"), init.to_string()).unwrap();
        let args = [
            "-q",
            "fit",
            "x.npy",
            "-k",
            "2",
            "--backend",
            "gpu",
            "--init-file",
            "init.json",
            "--tol",
            "0",
            "--max-iter",
            "10",
            "-o",
            "g.json",
        ];
        let o = mpirun_within(p, dir.path(), &args, &[("RUST_LOG", "gmm_gpu=info")], 300);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "P={p}: {stderr}");
        let switches: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("GPU fit switches from fast"))
            .collect();
        assert_eq!(switches.len(), p, "P={p}: one switch a rank:\n{stderr}");
        assert!(
            switches.iter().all(|l| *l == switches[0]),
            "P={p}: the ranks switched differently:\n{}",
            switches.join("\n")
        );
        assert!(
            switches[0].contains("component 0 is too ill-conditioned"),
            "{}",
            switches[0]
        );
        let g = model(dir.path(), "g.json");
        let record = g.gpu_precision().unwrap();
        assert!(record.used.starts_with("exact ("), "P={p}: {record:?}");
        assert_eq!(record.switches.len(), 1, "P={p}: {record:?}");
        // As the thread ranks of tests/distributed_gpu.rs: 2.3e-15 seen in f64 (3e-14), two-float
        // to its own tolerance.
        let want = cpu_fit_of_ranks_image(&x, p);
        let tolerance = if record.used == "exact (f64)" { 3e-14 } else { TWO_FLOAT };
        let scale = |v: &[f64]| v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        for (what, a, b) in [
            ("means", g.means(), want.means()),
            ("covariances", g.covariances(), want.covariances()),
            ("lower bounds", g.lower_bounds(), want.lower_bounds()),
        ] {
            let e = common::max_rel(a, b, scale(b));
            println!("P={p}: {what} within {e:.1e} of their largest");
            assert!(e <= tolerance, "P={p}: {what} differ by {e:e} of their largest");
        }
    }
}

/// `gmm fit --prior default` under mpirun: the prior's defaults come from every rank's data, so
/// the model (and its recorded prior) equals the library's one-process MAP fit.
#[test]
fn a_map_fit_takes_its_prior_from_every_rank() {
    let dir = tempfile::tempdir().unwrap();
    let x = blobs(3001, &[0.0, 0.0, 0.0, 6.0, -6.0, 6.0, 12.0, -12.0, 12.0], 3, 1.0, 22);
    write_npy_f64(&dir.path().join("x.npy"), &x, 3);
    let view = DataView::from_f64(&x, 3).unwrap();
    let one = GmmParams::builder(3)
        .prior(gmm_gpu::Prior::mclust())
        .seed(7)
        .build()
        .unwrap()
        .fit(&view)
        .unwrap();
    for p in [2, 3] {
        let args = [
            "-q",
            "fit",
            "x.npy",
            "-k",
            "3",
            "--backend",
            "cpu",
            "--prior",
            "default",
            "--seed",
            "7",
            "-o",
            "map.json",
        ];
        let o = mpirun(p, dir.path(), &args);
        assert!(o.status.success(), "P={p}: {}", String::from_utf8_lossy(&o.stderr));
        let m = model(dir.path(), "map.json");
        let (pm, po) = (m.prior().unwrap(), one.prior().unwrap());
        // The moments' sums in another order: 1e-13; a whole k-means + EM fit: 1e-10.
        assert!(
            max_rel(pm.get_scale().unwrap(), po.get_scale().unwrap()) <= 1e-13,
            "P={p}"
        );
        assert!(
            max_rel(pm.get_mean().unwrap(), po.get_mean().unwrap()) <= 1e-13,
            "P={p}"
        );
        let e = max_rel(m.means(), one.means()).max(max_rel(m.covariances(), one.covariances()));
        assert!(e <= 1e-10, "P={p}: differ by {e:e}");
        assert!(max_rel(&[m.lower_bound()], &[one.lower_bound()]) <= 1e-10, "P={p}");
    }
}

/// `gmm fit --bayesian` from `--init-labels` under mpirun: every rank reads the labels and sums
/// its own rows, so the variational model equals the library's one-process fit.
#[test]
fn a_variational_fit_from_labels_equals_the_library_fit() {
    let dir = tempfile::tempdir().unwrap();
    let x = blobs(2001, &[0.0, 0.0, 0.0, 6.0, -6.0, 6.0, 12.0, -12.0, 12.0], 3, 1.0, 23);
    write_npy_f64(&dir.path().join("x.npy"), &x, 3);
    let labels: Vec<usize> = (0..2001).map(|i| (i % 3 + i % 5) % 4).collect();
    let bytes: Vec<u8> = labels.iter().flat_map(|&l| (l as i64).to_le_bytes()).collect();
    common::write_npy_bytes(&dir.path().join("labels.npy"), "<i8", "(2001,)", false, &bytes);
    let view = DataView::from_f64(&x, 3).unwrap();
    let one = GmmParams::builder(4)
        .variational(gmm_gpu::Variational::dirichlet_process())
        .init_labels(labels)
        .tol(0.0)
        .max_iter(12)
        .build()
        .unwrap()
        .fit(&view)
        .unwrap();
    for p in [2, 3] {
        let args = [
            "-q",
            "fit",
            "x.npy",
            "-k",
            "4",
            "--backend",
            "cpu",
            "--bayesian",
            "dirichlet-process",
            "--init-labels",
            "labels.npy",
            "--tol",
            "0",
            "--max-iter",
            "12",
            "-o",
            "vb.json",
        ];
        let o = mpirun(p, dir.path(), &args);
        assert!(o.status.success(), "P={p}: {}", String::from_utf8_lossy(&o.stderr));
        let m = model(dir.path(), "vb.json");
        // The same sums in another order over 12 iterations: 1e-11.
        let e = max_rel(m.means(), one.means())
            .max(max_rel(m.covariances(), one.covariances()))
            .max(max_rel(m.mean_precision().unwrap(), one.mean_precision().unwrap()))
            .max(max_rel(m.lower_bounds(), one.lower_bounds()));
        assert!(e <= 1e-11, "P={p}: differ by {e:e}");
    }
}

/// `gmm fit --sample-weight` under mpirun: each rank maps its rows of the weights file beside its
/// rows of the data, so the model equals the one-process command's weighted fit; a bad weight on
/// one rank is one message naming its global row.
#[test]
fn a_weighted_fit_under_mpirun_equals_the_one_process_weighted_fit() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3001;
    let x = blobs(n, &[0.0, 0.0, 0.0, 6.0, -6.0, 6.0, 12.0, -12.0, 12.0], 3, 1.0, 24);
    write_npy_f64(&dir.path().join("x.npy"), &x, 3);
    // Fractional weights with zeros (Σw² ≠ Σw for the prior; rows k-means++ must skip).
    let w: Vec<f64> = (0..n)
        .map(|i| {
            if i % 7 == 3 {
                0.0
            } else {
                ((i * 37) % 20) as f64 / 10.0 + 0.05
            }
        })
        .collect();
    let write_weights = |name: &str, w: &[f64]| {
        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        common::write_npy_bytes(&dir.path().join(name), "<f8", &format!("({},)", w.len()), false, &bytes);
    };
    write_weights("w.npy", &w);
    let view = DataView::from_f64(&x, 3).unwrap();
    start_and_cpu_fit(dir.path(), &view, CovarianceType::Full, 0);
    let base = [
        "-q",
        "fit",
        "x.npy",
        "-k",
        "3",
        "--backend",
        "cpu",
        "--sample-weight",
        "w.npy",
    ];
    let cases: [(&str, &[&str], f64); 3] = [
        // From a given start the sums differ only in order: 1e-12, as the unweighted test.
        (
            "given",
            &["--init-file", "init.json", "--tol", "0", "--max-iter", "15"],
            1e-12,
        ),
        // k-means init (weighted k-means++ over global rows, then Lloyd): 1e-10, as there.
        ("kmeans", &["--seed", "7"], 1e-10),
        // The MAP prior's defaults from every rank's Σw and Σw²: 1e-10 after a whole fit.
        ("map", &["--seed", "7", "--prior", "default"], 1e-10),
    ];
    for (name, extra, tol) in cases {
        let out = format!("{name}-one.json");
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-o", &out]);
        let o = Command::new(env!("CARGO_BIN_EXE_gmm"))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        let one = model(dir.path(), &out);
        for p in 1..=3 {
            let out = format!("{name}-{p}.json");
            let mut args = base.to_vec();
            args.extend_from_slice(extra);
            args.extend_from_slice(&["-o", &out]);
            let o = mpirun(p, dir.path(), &args);
            assert!(
                o.status.success(),
                "P={p} {name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let m = model(dir.path(), &out);
            assert_eq!(m.n_iter(), one.n_iter(), "P={p} {name}");
            let e = max_rel(m.means(), one.means())
                .max(max_rel(m.covariances(), one.covariances()))
                .max(max_rel(m.weights(), one.weights()))
                .max(max_rel(m.lower_bounds(), one.lower_bounds()));
            assert!(e <= tol, "P={p} {name}: differ by {e:e}");
        }
    }
    // Global row 2500 lies on rank 2 of 3 (rows 2001..3001).
    let mut bad = w.clone();
    bad[2500] = -1.0;
    write_weights("bad.npy", &bad);
    let o = mpirun(
        3,
        dir.path(),
        &[
            "fit",
            "x.npy",
            "-k",
            "3",
            "--backend",
            "cpu",
            "--sample-weight",
            "bad.npy",
            "-o",
            "bad.json",
        ],
    );
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let ours: Vec<&str> = stderr.lines().filter(|l| l.starts_with("gmm:")).collect();
    assert_eq!(ours.len(), 1, "{stderr}");
    assert!(ours[0].contains("sample_weight[2500] is -1"), "{stderr}");
    assert!(!dir.path().join("bad.json").exists());
}

/// `gmm fit --missing marginalise` under mpirun: NaN entries marginalised over the ranks' rows give
/// the model of one process (the initialisation's column means are global).
#[test]
fn missing_values_under_mpirun_give_the_library_fit() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = blobs(1500, &[0.0, 0.0, 0.0, 6.0, -6.0, 6.0, 12.0, -12.0, 12.0], 3, 1.0, 31);
    // Every seventh entry missing, each row keeping two of its three features.
    for (i, v) in x.iter_mut().enumerate() {
        if i % 7 == 3 {
            *v = f64::NAN;
        }
    }
    write_npy_f64(&dir.path().join("x.npy"), &x, 3);
    let one = GmmParams::builder(3)
        .covariance_type(CovarianceType::Full)
        .missing(gmm_gpu::Missing::Marginalise)
        .seed(2)
        .build()
        .unwrap()
        .fit(&DataView::with_missing(gmm_gpu::Samples::F64(&x), 3).unwrap())
        .unwrap();
    for p in 1..=3 {
        let args = [
            "-q",
            "fit",
            "x.npy",
            "-k",
            "3",
            "--backend",
            "cpu",
            "--missing",
            "marginalise",
            "--seed",
            "2",
            "-o",
            "m.json",
        ];
        let o = mpirun(p, dir.path(), &args);
        assert!(o.status.success(), "P={p}: {}", String::from_utf8_lossy(&o.stderr));
        let m = model(dir.path(), "m.json");
        assert_eq!(m.n_iter(), one.n_iter(), "P={p}");
        // The same sums combined over ranks instead of tasks (k-means start): 1e-10 as above.
        let e = max_rel(m.means(), one.means()).max(max_rel(m.covariances(), one.covariances()));
        assert!(e <= 1e-10, "P={p}: differ by {e:e}");
    }
}
