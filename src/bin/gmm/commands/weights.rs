//! `gmm fit --sample-weight`: one weight per sample from a file, read as data is (.npy float32 or
//! float64, 1-D or N x 1, or a one-column .csv), its rows checked against the data's; the values
//! themselves (finite, >= 0, not all 0) are the library's to check, over every rank under mpirun.

use std::path::Path;

use gmm_gpu::Samples;

use crate::error::CliError;
use crate::io::{self, Data, DataFormat, DataSpec, Values};

/// The weights of every row of `data`.
pub(super) fn read(path: &Path, data: &Data) -> Result<Vec<f64>, CliError> {
    let weights = io::read_data(&spec(path)).map_err(boxed)?;
    values(path, &weights, data)
}

/// The weights of this rank's rows of `data` (rank `rank` of `size`), mapped as its rows of the
/// data are: .npy only.
#[cfg(feature = "mpi")]
pub(super) fn read_part(path: &Path, data: &Data, rank: usize, size: usize) -> Result<Vec<f64>, CliError> {
    let weights = io::read_part(&spec(path), rank, size).map_err(boxed)?;
    values(path, &weights, data)
}

fn spec(path: &Path) -> DataSpec<'_> {
    let csv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    // Anything but .csv is read as .npy: a raw float32 file of one column would look like any other.
    DataSpec {
        path,
        columns: None,
        features: None,
        format: if csv { DataFormat::Csv } else { DataFormat::Npy },
        missing: false,
    }
}

/// A reader's error, under the option.
fn boxed(e: CliError) -> CliError {
    CliError::StartFile {
        option: "--sample-weight",
        source: Box::new(e),
    }
}

/// The weights widened to f64, once their shape matches the data's rows. Not validated here: a
/// NaN or negative weight is the library's error, naming its (global) row.
fn values(path: &Path, weights: &Data, data: &Data) -> Result<Vec<f64>, CliError> {
    if weights.n_features != 1 {
        return Err(CliError::SampleWeightColumns {
            path: path.to_path_buf(),
            columns: weights.n_features,
        });
    }
    if weights.total_rows() != data.total_rows() {
        return Err(CliError::InitRows {
            option: "--sample-weight",
            path: path.to_path_buf(),
            got: weights.total_rows(),
            data: data.path.clone(),
            expected: data.total_rows(),
        });
    }
    Ok(match &weights.values {
        Values::Mapped(m) => match m.samples() {
            Samples::F64(v) => v.to_vec(),
            Samples::F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
        },
        Values::F64(v) => v.clone(),
    })
}
