//! Running the `gmm` binary from the CLI tests.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `gmm` with `args` in `dir`.
pub fn gmm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmm"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the gmm binary runs")
}

/// Runs `gmm` and asserts success, returning stdout.
#[track_caller]
pub fn gmm_ok(dir: &Path, args: &[&str]) -> String {
    let out = gmm(dir, args);
    assert!(
        out.status.success(),
        "gmm {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Runs `gmm`, asserts that it fails, and returns stderr.
#[track_caller]
pub fn gmm_err(dir: &Path, args: &[&str]) -> String {
    let out = gmm(dir, args);
    assert!(!out.status.success(), "gmm {args:?} succeeded");
    String::from_utf8(out.stderr).expect("stderr is UTF-8")
}
