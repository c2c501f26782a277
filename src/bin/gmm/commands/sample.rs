//! `gmm sample`: draws samples (and optionally their components) from a model.

use crate::args::SampleArgs;
use crate::error::CliError;
use crate::io::{self, Cells, Table};

pub(super) fn sample(a: &SampleArgs) -> Result<(), CliError> {
    let kind = io::out_kind(&a.output)?;
    io::out_dir(&a.output)?;
    if let Some(l) = &a.labels {
        io::out_kind(l)?;
        io::out_dir(l)?;
    }
    let model = io::read_model(&a.model)?;
    let (x, labels) = model
        .sample(a.n, a.seed)
        .map_err(|source| CliError::Option { option: "-n", source })?;
    let d = model.n_features();
    let table = Table {
        header: (0..d).map(|j| format!("x{j}")).collect(),
        n_cols: d,
        values: Cells::F64(&x),
    };
    io::write_atomic(&a.output, |w| match kind {
        io::OutKind::Csv => io::write_csv(w, &table),
        io::OutKind::Npy => io::write_npy(w, &table),
    })?;
    if let Some(l) = &a.labels {
        let t = Table {
            header: vec!["label".into()],
            n_cols: 1,
            values: Cells::Labels(&labels),
        };
        io::write_table(Some(l), &t)?;
    }
    Ok(())
}
