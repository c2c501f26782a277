//! `gmm predict`: each sample's label, or its responsibilities with `--proba`, as CSV or .npy.

use super::common::{apply_error, gpu_context, model_data_for};
use crate::args::{ApplyBackend, PredictArgs};
use crate::error::CliError;
use crate::io::{self, Cells, Table};

pub(super) fn predict(a: &PredictArgs) -> Result<(), CliError> {
    #[cfg(feature = "mpi")]
    if let Some(done) = super::cluster::on_world(|world| super::cluster::predict(a, world)) {
        return done;
    }
    let (model, data) = model_data_for(&a.model, &a.data, a.output.as_deref())?;
    let view = data.view()?;
    let ctx = match a.backend {
        ApplyBackend::Gpu => Some(gpu_context()?),
        ApplyBackend::Cpu => None,
    };
    let k = model.n_components();
    let err = apply_error(&data.path);
    if a.proba {
        let p = match &ctx {
            Some(ctx) => model.predict_proba_on(ctx, &view),
            None => model.predict_proba(&view),
        }
        .map_err(&err)?;
        let table = Table {
            header: (0..k).map(|c| format!("component_{c}")).collect(),
            n_cols: k,
            values: Cells::F64(&p),
        };
        io::write_table(a.output.as_deref(), &table)
    } else {
        let labels = match &ctx {
            Some(ctx) => model.predict_on(ctx, &view),
            None => model.predict(&view),
        }
        .map_err(&err)?;
        let table = Table {
            header: vec!["label".into()],
            n_cols: 1,
            values: Cells::Labels(&labels),
        };
        io::write_table(a.output.as_deref(), &table)
    }
}
