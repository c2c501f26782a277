//! `--missing marginalise` and `gmm impute` end to end: CSV with empty, NA and NaN fields and .npy
//! with NaN fitted, predicted, scored and imputed by the binary exactly as the library does, and
//! an error for each misuse that leaves no output behind.

mod common;

use std::fs;
use std::path::Path;

use common::cli::{gmm, gmm_err, gmm_ok};
use gmm_gpu::{BackendKind, CovarianceType, DataView, GmmModel, GmmParams, Missing, Samples};

/// 300 rows of 3 features around three centres, with about a fifth of the entries missing
/// (xorshift, so the test needs no RNG crate); the first row keeps all its values.
fn data() -> Vec<f64> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let centres = [[0.0, 0.0, 0.0], [5.0, -3.0, 2.0], [-4.0, 4.0, -5.0]];
    let mut x = Vec::new();
    for i in 0..300 {
        let c = centres[i % 3];
        let mut row: Vec<f64> = (0..3).map(|j| c[j] + 2.0 * uniform() - 1.0 + 0.3 * uniform()).collect();
        if i > 0 {
            for v in &mut row {
                if uniform() < 0.2 {
                    *v = f64::NAN;
                }
            }
            if row.iter().all(|v| v.is_nan()) {
                row[1] = c[1];
            }
        }
        x.extend(row);
    }
    x
}

/// The data as CSV with a header, each missing value written as an empty field, NA or NaN in turn.
fn write_csv(path: &Path, x: &[f64]) {
    let mut text = String::from("a,b,c\n");
    let mut n = 0;
    for row in x.chunks_exact(3) {
        let cells: Vec<String> = row
            .iter()
            .map(|v| {
                if v.is_nan() {
                    n += 1;
                    ["", "NA", "NaN"][n % 3].to_string()
                } else {
                    format!("{v:?}")
                }
            })
            .collect();
        text += &cells.join(",");
        text += "\n";
    }
    fs::write(path, text).unwrap();
}

fn library_model(x: &[f64], cov: CovarianceType) -> GmmModel {
    GmmParams::builder(3)
        .covariance_type(cov)
        .missing(Missing::Marginalise)
        .backend(BackendKind::Cpu)
        .build()
        .unwrap()
        .fit(&DataView::with_missing(Samples::F64(x), 3).unwrap())
        .unwrap()
}

fn csv_numbers(text: &str) -> Vec<f64> {
    text.lines()
        .skip(1)
        .flat_map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn fit_predict_score_and_impute_match_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let x = data();
    write_csv(&dir.path().join("x.csv"), &x);
    let view = DataView::with_missing(Samples::F64(&x), 3).unwrap();
    for cov in ["full", "diag"] {
        let expected = library_model(&x, cov.parse().unwrap());
        gmm_ok(
            dir.path(),
            &[
                "fit",
                "x.csv",
                "-k",
                "3",
                "--covariance",
                cov,
                "--missing",
                "marginalise",
                "-o",
                "m.json",
                "-q",
            ],
        );
        let model = GmmModel::from_json(&fs::read_to_string(dir.path().join("m.json")).unwrap()).unwrap();
        // The same parse of the same text, the same fit: bitwise.
        assert_eq!(model.means(), expected.means(), "{cov}");
        assert_eq!(model.covariances(), expected.covariances(), "{cov}");
        assert_eq!(model.backend(), "cpu");

        let proba = gmm_ok(
            dir.path(),
            &["predict", "m.json", "x.csv", "--missing", "marginalise", "--proba"],
        );
        // Shortest round-trip floats: exact.
        assert_eq!(csv_numbers(&proba), expected.predict_proba(&view).unwrap(), "{cov}");
        let score = gmm_ok(dir.path(), &["score", "m.json", "x.csv", "--missing", "marginalise"]);
        assert_eq!(
            score.trim().parse::<f64>().unwrap(),
            expected.score(&view).unwrap(),
            "{cov}"
        );

        let filled = gmm_ok(dir.path(), &["impute", "m.json", "x.csv"]);
        let imputed = expected.impute(&view).unwrap();
        assert_eq!(csv_numbers(&filled), imputed, "{cov}");
        assert!(imputed.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn npy_with_nan_is_read_and_imputed_to_npy() {
    let dir = tempfile::tempdir().unwrap();
    let x = data();
    common::write_npy_f64(&dir.path().join("x.npy"), &x, 3);
    gmm_ok(
        dir.path(),
        &[
            "fit",
            "x.npy",
            "-k",
            "3",
            "--covariance",
            "spherical",
            "--missing",
            "marginalise",
            "-o",
            "m.json",
            "-q",
        ],
    );
    let model = GmmModel::from_json(&fs::read_to_string(dir.path().join("m.json")).unwrap()).unwrap();
    assert_eq!(model.means(), library_model(&x, CovarianceType::Spherical).means());
    gmm_ok(dir.path(), &["impute", "m.json", "x.npy", "-o", "filled.npy"]);
    let bytes = fs::read(dir.path().join("filled.npy")).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let got: Vec<f64> = bytes[10 + header_len..]
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let view = DataView::with_missing(Samples::F64(&x), 3).unwrap();
    assert_eq!(got, model.impute(&view).unwrap());
}

#[test]
fn misuse_fails_with_one_line_naming_the_cause_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let x = data();
    write_csv(&dir.path().join("x.csv"), &x);
    let first = x.iter().position(|v| v.is_nan()).unwrap();
    // Without the option, a NaN or an empty field is today's error, which now names the option.
    let e = gmm_err(dir.path(), &["fit", "x.csv", "-k", "3", "-o", "m.json"]);
    assert!(e.contains("--missing marginalise"), "{e}");
    let e = gmm_err(
        dir.path(),
        &["fit", "x.csv", "-k", "3", "--missing", "bogus", "-o", "m.json"],
    );
    assert!(e.contains("reject, marginalise"), "{e}");
    let e = gmm_err(
        dir.path(),
        &[
            "fit",
            "x.csv",
            "-k",
            "3",
            "--missing",
            "marginalise",
            "--backend",
            "gpu",
            "-o",
            "m.json",
        ],
    );
    let (row, column) = (first / 3, first % 3);
    assert!(
        e.contains(&format!("row {row}, column {column}")) && e.contains("a fit on the GPU"),
        "{e}"
    );
    let e = gmm_err(
        dir.path(),
        &[
            "fit",
            "x.csv",
            "-k",
            "3",
            "--missing",
            "marginalise",
            "--bayesian",
            "dirichlet-process",
            "-o",
            "m.json",
        ],
    );
    assert!(e.contains("variational"), "{e}");
    // A row with every feature missing names the row.
    fs::write(dir.path().join("empty_row.csv"), "a,b\n1,2\n,NA\n3,4\n").unwrap();
    let e = gmm_err(
        dir.path(),
        &[
            "fit",
            "empty_row.csv",
            "-k",
            "1",
            "--missing",
            "marginalise",
            "-o",
            "m.json",
        ],
    );
    assert!(e.contains("row 1 has every feature missing"), "{e}");
    assert!(!dir.path().join("m.json").exists());
    // Predicting NaN rows without the option fails; impute refuses a variational model's NaN.
    gmm_ok(
        dir.path(),
        &[
            "fit",
            "x.csv",
            "-k",
            "3",
            "--missing",
            "marginalise",
            "-o",
            "m.json",
            "-q",
        ],
    );
    let e = gmm_err(dir.path(), &["predict", "m.json", "x.csv", "-o", "labels.csv"]);
    assert!(e.contains("--missing marginalise"), "{e}");
    assert!(!dir.path().join("labels.csv").exists());
    let out = gmm(dir.path(), &["impute", "m.json", "empty_row.csv", "-o", "filled.csv"]);
    assert!(!out.status.success());
    assert!(!dir.path().join("filled.csv").exists());
}

#[test]
fn select_ranks_marginalised_fits_by_their_observed_data_bic() {
    let dir = tempfile::tempdir().unwrap();
    let x = data();
    write_csv(&dir.path().join("x.csv"), &x);
    gmm_ok(
        dir.path(),
        &[
            "select",
            "x.csv",
            "--k",
            "1..4",
            "--missing",
            "marginalise",
            "-o",
            "best.json",
            "-q",
        ],
    );
    let best = GmmModel::from_json(&fs::read_to_string(dir.path().join("best.json")).unwrap()).unwrap();
    // Three well-separated centres: BIC of the observed-data likelihood picks K = 3, the fit the
    // library makes for K = 3 (full covariances, seed 0, on the CPU).
    assert_eq!(best.n_components(), 3);
    assert_eq!(best.means(), library_model(&x, CovarianceType::Full).means());
}

#[test]
fn plot_and_compare_refuse_the_option_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let x = data();
    write_csv(&dir.path().join("x.csv"), &x);
    gmm_ok(
        dir.path(),
        &[
            "fit",
            "x.csv",
            "-k",
            "3",
            "--missing",
            "marginalise",
            "-o",
            "m.json",
            "-q",
        ],
    );
    let e = gmm_err(
        dir.path(),
        &["plot", "m.json", "x.csv", "--missing", "marginalise", "-o", "p.png"],
    );
    assert!(e.contains("gmm plot") && e.contains("gmm impute"), "{e}");
    assert!(!dir.path().join("p.png").exists());
    let e = gmm_err(dir.path(), &["compare", "x.csv", "-k", "3", "--missing", "marginalise"]);
    assert!(
        e.contains("gmm compare") && e.contains("gmm fit --missing marginalise"),
        "{e}"
    );
}
