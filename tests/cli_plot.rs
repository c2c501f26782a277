//! `gmm plot` end to end: a model written by the library and a CSV written by the test are drawn
//! by the binary, and the picture is checked (PNG signature and size, SVG elements, errors).

use std::f64::consts::PI;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use gmm_gpu::{DataView, GmmParams};

/// Runs `gmm` with `args` in `dir`.
fn gmm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmm"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the gmm binary runs")
}

#[track_caller]
fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "gmm {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three 2-D blobs of 150 points, from a fixed xorshift generator and Box-Muller (row-major).
fn blobs() -> Vec<f64> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let mut x = Vec::new();
    for (cx, cy) in [(-4.0, 0.0), (0.0, 4.0), (4.0, -1.0)] {
        for _ in 0..150 {
            let r = (-2.0 * uniform().ln()).sqrt();
            let t = 2.0 * PI * uniform();
            x.push(cx + r * t.cos());
            x.push(cy + r * t.sin());
        }
    }
    x
}

/// Writes `model.json` (K = 3, fitted by the library on `x` restricted to `d` columns) and
/// `data.csv` (header `a,b`) into `dir`.
fn write_inputs(dir: &Path, d: usize) -> Vec<f64> {
    let x = blobs();
    let fit_data: Vec<f64> = x.chunks(2).flat_map(|r| r[..d].to_vec()).collect();
    let model = GmmParams::builder(3)
        .seed(5)
        .build()
        .expect("valid parameters")
        .fit(&DataView::from_f64(&fit_data, d).expect("finite data"))
        .expect("the fit succeeds");
    fs::write(dir.join("model.json"), model.to_json()).expect("model.json is written");
    let mut csv = String::from("a,b\n");
    for r in x.chunks(2) {
        writeln!(csv, "{},{}", r[0], r[1]).unwrap();
    }
    fs::write(dir.join("data.csv"), csv).expect("data.csv is written");
    x
}

/// Checks the PNG signature and returns (width, height) from the IHDR chunk.
#[track_caller]
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "too short for a PNG: {} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "the first chunk is not IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// The names of the files in `dir`, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn plot_png_of_2d_data() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), 2);
    let args = ["plot", "model.json", "data.csv", "-o", "fit.png"];
    assert_success(&gmm(dir.path(), &args), &args);
    let png = fs::read(dir.path().join("fit.png")).expect("fit.png exists");
    assert_eq!(png_size(&png), (1024, 768));
    assert!(png.len() > 20_000, "suspiciously small PNG: {} bytes", png.len());
    // The temporary file was renamed into place: nothing else is left behind.
    assert_eq!(files(dir.path()), ["data.csv", "fit.png", "model.json"]);

    // The same command gives the same bytes.
    let args = [
        "plot",
        "model.json",
        "data.csv",
        "-o",
        "again.png",
        "--x",
        "0",
        "--y",
        "1",
    ];
    assert_success(&gmm(dir.path(), &args), &args);
    assert_eq!(
        fs::read(dir.path().join("again.png")).unwrap(),
        png,
        "the plot is not deterministic"
    );
}

#[test]
fn plot_svg_has_two_ellipses_per_component() {
    let dir = tempfile::tempdir().unwrap();
    let x = write_inputs(dir.path(), 2);
    let args = [
        "plot",
        "model.json",
        "data.csv",
        "-o",
        "fit.svg",
        "--x",
        "1",
        "--y",
        "0",
    ];
    assert_success(&gmm(dir.path(), &args), &args);
    let svg = fs::read_to_string(dir.path().join("fit.svg")).expect("fit.svg exists");
    assert!(svg.contains("<svg") && svg.contains("width=\"1024\"") && svg.contains("height=\"768\""));
    // The ellipses are the coloured polylines (axes and ticks are black).
    let ellipses = svg
        .match_indices("<polyline")
        .filter(|(i, _)| {
            let tag = &svg[*i..];
            !tag[..tag.find('>').unwrap()].contains("stroke=\"#000000\"")
        })
        .count();
    assert_eq!(ellipses, 2 * 3, "1σ and 2σ ellipses of 3 components");
    assert_eq!(
        svg.matches("<circle").count(),
        x.len() / 2 + 3,
        "the samples and 3 legend markers"
    );
    assert!(svg.contains("feature 1") && svg.contains("feature 0") && svg.contains("K = 3"));
}

#[test]
fn plot_histogram_of_1d_data() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), 1);
    // --y is unused for 1-D data.
    let args = ["plot", "model.json", "data.csv", "--columns", "a", "-o", "hist.png"];
    assert_success(&gmm(dir.path(), &args), &args);
    let png = fs::read(dir.path().join("hist.png")).expect("hist.png exists");
    assert_eq!(png_size(&png), (1024, 768));
}

#[test]
fn plot_rejects_a_feature_out_of_range_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path(), 2);
    let args = ["plot", "model.json", "data.csv", "-o", "fit.png", "--x", "2"];
    let out = gmm(dir.path(), &args);
    assert!(!out.status.success(), "gmm {args:?} succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--x 2"), "the error does not name the option: {stderr}");
    assert_eq!(
        files(dir.path()),
        ["data.csv", "model.json"],
        "a failed plot left a file"
    );
}
