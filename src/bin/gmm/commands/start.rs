//! A fit's start from the user's responsibilities (`--init-resp`) or labels (`--init-labels`):
//! reading the file, its shape against K and its rows against the data, each error naming the
//! option and the file; the values themselves are the library's to check.

use std::path::{Path, PathBuf};

use gmm_gpu::{GmmParamsBuilder, Samples};

use crate::args::ModelSpec;
use crate::error::CliError;
use crate::io::{self, Data, DataFormat, DataSpec};
use crate::labels;

/// The start a file gives.
enum Given {
    Responsibilities(Vec<f64>),
    Labels(Vec<usize>),
}

/// A start read from its file.
pub(super) struct Start {
    option: &'static str,
    path: PathBuf,
    rows: usize,
    given: Given,
}

impl Start {
    /// Reads `--init-resp` or `--init-labels`, if either was given (clap lets through one at most).
    pub(super) fn read(spec: &ModelSpec) -> Result<Option<Start>, CliError> {
        if let Some(path) = &spec.init_resp {
            let resp = responsibilities(path, spec.k)?;
            return Ok(Some(Start {
                option: "--init-resp",
                path: path.clone(),
                rows: resp.len() / spec.k.max(1),
                given: Given::Responsibilities(resp),
            }));
        }
        if let Some(path) = &spec.init_labels {
            let l = labels::read_labels(path)?;
            return Ok(Some(Start {
                option: "--init-labels",
                path: path.clone(),
                rows: l.len(),
                given: Given::Labels(l),
            }));
        }
        Ok(None)
    }

    /// The builder starting from these responsibilities or labels.
    pub(super) fn apply(&self, b: GmmParamsBuilder) -> GmmParamsBuilder {
        match &self.given {
            Given::Responsibilities(r) => b.init_responsibilities(r.clone()),
            Given::Labels(l) => b.init_labels(l.clone()),
        }
    }

    /// One row per sample of the whole file `data` is (part of), checked before a fit starts so
    /// that the message can name both files.
    pub(super) fn check_rows(&self, data: &Data) -> Result<(), CliError> {
        if self.rows != data.total_rows() {
            return Err(CliError::InitRows {
                option: self.option,
                path: self.path.clone(),
                got: self.rows,
                data: data.path.clone(),
                expected: data.total_rows(),
            });
        }
        Ok(())
    }
}

/// An N x K array of responsibilities, read as data is (.npy float32/float64, or .csv) and widened
/// to f64; its reader's errors name the file and come back under the option.
fn responsibilities(path: &Path, k: usize) -> Result<Vec<f64>, CliError> {
    let boxed = |e: CliError| CliError::StartFile {
        option: "--init-resp",
        source: Box::new(e),
    };
    let csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    // Anything but .csv is read as .npy: raw float32 would need its column count, which is K.
    let spec = DataSpec {
        path,
        columns: None,
        features: None,
        format: if csv { DataFormat::Csv } else { DataFormat::Npy },
        missing: false,
    };
    let data = io::read_data(&spec).map_err(boxed)?;
    if data.n_features != k {
        return Err(CliError::InitRespColumns {
            path: path.to_path_buf(),
            columns: data.n_features,
            k,
        });
    }
    // The view rejects NaN and infinity, naming the row and column.
    let view = data.view().map_err(boxed)?;
    Ok(match view.samples() {
        Samples::F64(v) => v.to_vec(),
        Samples::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
    })
}
