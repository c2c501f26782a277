//! Memory-mapped data files (`gmm_gpu::MappedData`): the same fit as from memory, a typed error
//! for each file it cannot map, and `gmm fit` on a file larger than its anonymous memory.

mod common;

use std::fs;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::{blobs, write_npy_bytes};
use gmm_gpu::{CovarianceType, DataFileProblem, DataView, GmmError, GmmParams, MappedData, Precision};

fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f64_bytes(x: &[f64]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn a_mapped_file_fits_bitwise_the_same_as_the_same_values_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = 3;
    let x = blobs(3000, &[0.0, 0.0, 0.0, 5.0, 5.0, -2.0], d, 1.0, 11);
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    write_npy_bytes(&dir.path().join("x32.npy"), "<f4", "(3000, 3)", false, &f32_bytes(&x32));
    write_npy_bytes(&dir.path().join("x64.npy"), "<f8", "(3000, 3)", false, &f64_bytes(&x));
    fs::write(dir.path().join("x.raw"), f32_bytes(&x32)).unwrap();
    let params = GmmParams::builder(2)
        .covariance_type(CovarianceType::Full)
        .seed(3)
        .build()
        .unwrap();
    let in_memory_32 = params.fit(&DataView::from_f32(&x32, d).unwrap()).unwrap();
    let in_memory_64 = params.fit(&DataView::from_f64(&x, d).unwrap()).unwrap();
    for (file, precision, want) in [
        ("x32.npy", Precision::F32, &in_memory_32),
        ("x64.npy", Precision::F64, &in_memory_64),
        ("x.raw", Precision::F32, &in_memory_32),
    ] {
        let path = dir.path().join(file);
        let m = if file.ends_with(".raw") {
            MappedData::open_raw_f32(&path, d).unwrap()
        } else {
            MappedData::open_npy(&path).unwrap()
        };
        assert_eq!(
            (m.n_samples(), m.n_features(), m.precision()),
            (3000, d, precision),
            "{file}"
        );
        let got = params.fit(&m.view().unwrap()).unwrap();
        // The same values in the same order through the same code: bitwise the same model.
        assert_eq!(got.means(), want.means(), "{file}");
        assert_eq!(got.covariances(), want.covariances(), "{file}");
        assert_eq!(got.lower_bound(), want.lower_bound(), "{file}");
    }
}

#[test]
fn part_of_a_file_maps_just_those_rows() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 rows of 3 float32 (12 bytes): row 1,111 starts at byte 128 + 13,332, mid-page.
    let x: Vec<f32> = (0..9000).map(|i| i as f32 * 0.5).collect();
    write_npy_bytes(&dir.path().join("x.npy"), "<f4", "(3000, 3)", false, &f32_bytes(&x));
    fs::write(dir.path().join("x.raw"), f32_bytes(&x)).unwrap();
    let parts = [
        MappedData::open_npy_rows(dir.path().join("x.npy"), |n| 1111..n - 7).unwrap(),
        MappedData::open_raw_f32_rows(dir.path().join("x.raw"), 3, |n| 1111..n - 7).unwrap(),
    ];
    for m in parts {
        assert_eq!(
            (m.first_row(), m.n_samples(), m.total_rows()),
            (1111, 3000 - 7 - 1111, 3000)
        );
        let view = m.view().unwrap();
        let mut row = [0.0; 3];
        for i in [0, 1, view.n_samples() - 1] {
            view.row_into(i, &mut row);
            let want: Vec<f64> = x[(1111 + i) * 3..(1112 + i) * 3]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            assert_eq!(row[..], want[..], "row {i}");
        }
    }
    // Rows past the end are clamped to the file: an empty part.
    let empty = MappedData::open_npy_rows(dir.path().join("x.npy"), |n| n + 5..n + 9).unwrap();
    assert_eq!(empty.n_samples(), 0);
}

#[test]
fn one_dimensional_and_one_column_fortran_files_map_as_one_feature() {
    let dir = tempfile::tempdir().unwrap();
    let x = [1.0f64, 2.0, 4.0, 8.0];
    write_npy_bytes(&dir.path().join("v.npy"), "<f8", "(4,)", false, &f64_bytes(&x));
    write_npy_bytes(&dir.path().join("c.npy"), "<f8", "(4, 1)", true, &f64_bytes(&x));
    for file in ["v.npy", "c.npy"] {
        let m = MappedData::open_npy(dir.path().join(file)).unwrap();
        let view = m.view().unwrap();
        assert_eq!((view.n_samples(), view.n_features()), (4, 1), "{file}");
        let mut row = [0.0];
        view.row_into(3, &mut row);
        assert_eq!(row, [8.0], "{file}");
    }
}

/// The problem inside a `DataFile` error, checking that the error names the file.
#[track_caller]
fn problem(result: Result<MappedData, GmmError>, file: &str) -> DataFileProblem {
    match result {
        Err(e @ GmmError::DataFile { .. }) => {
            assert!(e.to_string().contains(file), "{e} does not name {file}");
            let GmmError::DataFile { path, problem } = e else {
                unreachable!()
            };
            assert!(path.ends_with(file));
            problem
        }
        other => panic!("{file}: expected a DataFile error, got {other:?}"),
    }
}

#[test]
fn each_file_that_cannot_be_mapped_is_a_typed_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let six = f64_bytes(&[0.0; 6]);
    write_npy_bytes(&p("short.npy"), "<f8", "(3, 2)", false, &six[..40]);
    write_npy_bytes(&p("long.npy"), "<f8", "(2, 2)", false, &six);
    write_npy_bytes(&p("big.npy"), ">f8", "(3, 2)", false, &six);
    write_npy_bytes(&p("fortran.npy"), "<f8", "(3, 2)", true, &six);
    write_npy_bytes(&p("cube.npy"), "<f8", "(1, 3, 2)", false, &six);
    write_npy_bytes(&p("int.npy"), "<i8", "(3, 2)", false, &six);
    fs::write(p("junk.npy"), b"not a numpy file at all").unwrap();
    fs::write(p("x.raw"), [0u8; 20]).unwrap();
    let npy = |name: &str| MappedData::open_npy(p(name));
    assert!(matches!(
        problem(npy("short.npy"), "short.npy"),
        DataFileProblem::Truncated {
            expected: 48,
            actual: 40
        }
    ));
    assert!(matches!(
        problem(npy("long.npy"), "long.npy"),
        DataFileProblem::Trailing {
            expected: 32,
            actual: 48
        }
    ));
    assert!(matches!(
        problem(npy("big.npy"), "big.npy"),
        DataFileProblem::BigEndian { .. }
    ));
    assert!(matches!(
        problem(npy("fortran.npy"), "fortran.npy"),
        DataFileProblem::FortranOrder
    ));
    assert!(
        matches!(problem(npy("cube.npy"), "cube.npy"), DataFileProblem::NpyDims { shape } if shape == vec![1, 3, 2])
    );
    assert!(matches!(problem(npy("int.npy"), "int.npy"), DataFileProblem::NpyDtype { dtype } if dtype == "<i8"));
    assert!(matches!(
        problem(npy("junk.npy"), "junk.npy"),
        DataFileProblem::NpyHeader { .. }
    ));
    assert!(matches!(
        problem(npy("missing.npy"), "missing.npy"),
        DataFileProblem::Io { .. }
    ));
    assert!(matches!(
        problem(MappedData::open_raw_f32(p("x.raw"), 2), "x.raw"),
        DataFileProblem::RawSize {
            bytes: 20,
            n_features: 2
        }
    ));
    // A NaN in the file is found when the view is made, with its row and column.
    let mut x = [1.0f32; 6];
    x[5] = f32::NAN;
    write_npy_bytes(&p("nan.npy"), "<f4", "(3, 2)", false, &f32_bytes(&x));
    let m = npy("nan.npy").unwrap();
    assert!(matches!(
        m.view(),
        Err(GmmError::NonFiniteData { row: 2, column: 1, .. })
    ));
}

/// The largest RssAnon (in bytes) of process `pid` until it exits, read from /proc every 2 ms.
fn peak_rss_anon(child: &mut std::process::Child) -> u64 {
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = fs::read_to_string(&status) {
            let kb = text
                .lines()
                .find_map(|l| l.strip_prefix("RssAnon:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak = peak.max(kb.unwrap_or(0) * 1024);
        }
        if child.try_wait().unwrap().is_some() {
            return peak;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `gmm fit --backend cpu` on a 192 MB float32 .npy (k-means init included) keeps its anonymous
/// memory far below the file's size: the data is mapped, not read. Reading it into a vector, as
/// gmm once did, would hold all 192 MB anonymous for the whole fit, which the 2 ms polling cannot
/// miss. (Linux only: RssAnon is read from /proc.)
#[cfg(target_os = "linux")]
#[test]
fn gmm_fit_keeps_its_anonymous_memory_far_below_a_mapped_files_size() {
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (6_000_000usize, 8usize);
    // Four well-separated blobs, written in slices so that the test itself holds little.
    {
        let header_shape = format!("({n}, {d})");
        write_npy_bytes(&dir.path().join("big.npy"), "<f4", &header_shape, false, &[]);
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("big.npy"))
            .unwrap();
        let centres: Vec<f64> = (0..4 * d).map(|i| 10.0 * ((i / d) as f64) + (i % d) as f64).collect();
        for part in 0..60 {
            let x = blobs(n / 60, &centres, d, 1.0, part as u64);
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            f.write_all(&f32_bytes(&x32)).unwrap();
        }
    }
    assert_eq!(
        fs::metadata(dir.path().join("big.npy")).unwrap().len(),
        128 + (n * d * 4) as u64
    );
    for cov in ["full", "diag"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gmm"))
            .args([
                "-q",
                "fit",
                "big.npy",
                "-k",
                "4",
                "--covariance",
                cov,
                "--backend",
                "cpu",
                "--max-iter",
                "3",
                "-o",
                "m.json",
            ])
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        let peak = peak_rss_anon(&mut child);
        assert!(child.wait().unwrap().success(), "gmm fit {cov} failed");
        // The seeding sample (2¹⁸ rows as f64: 16 MiB), the tasks' partials and the runtime: under
        // 64 MiB, a third of the file. The figure on a 2 GB file is in the closing note.
        assert!(
            peak < 64 << 20,
            "{cov}: peak RssAnon {} MiB for a {} MiB file",
            peak >> 20,
            (n * d * 4) >> 20
        );
        assert!(peak > 0, "RssAnon was never read");
    }
}
