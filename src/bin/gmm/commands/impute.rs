//! `gmm impute`: the data with each missing value replaced by its conditional expectation under a
//! model, E[x_m | x_o], as CSV or .npy.

use gmm_gpu::Missing;

use super::common::{apply_error, model_data_for};
use crate::args::{DataArgs, ImputeArgs};
use crate::error::CliError;
use crate::io::{self, Cells, Table};

pub(super) fn impute(a: &ImputeArgs) -> Result<(), CliError> {
    let spec = DataArgs {
        data: a.data.clone(),
        columns: a.columns.clone(),
        features: a.features,
        format: a.format,
        missing: Missing::Marginalise,
    };
    let (model, data) = model_data_for(&a.model, &spec, a.output.as_deref())?;
    let view = data.view()?;
    let filled = model.impute(&view).map_err(apply_error(&data.path))?;
    let d = model.n_features();
    let table = Table {
        header: (0..d).map(|j| format!("feature_{j}")).collect(),
        n_cols: d,
        values: Cells::F64(&filled),
    };
    io::write_table(a.output.as_deref(), &table)
}
