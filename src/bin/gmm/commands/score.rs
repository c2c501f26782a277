//! `gmm score`: the mean log-likelihood of the data, or every sample's with `--per-sample`.

use super::common::{apply_error, gpu_context, model_data_for};
use super::output::say;
use crate::args::{ApplyBackend, Cli, ScoreArgs};
use crate::error::CliError;
use crate::io::{self, Cells, Table};

pub(super) fn score(cli: &Cli, a: &ScoreArgs) -> Result<(), CliError> {
    #[cfg(feature = "mpi")]
    if let Some(done) = super::cluster::on_world(|world| super::cluster::score(a, world)) {
        return done;
    }
    let (model, data) = model_data_for(&a.model, &a.data, a.output.as_deref())?;
    let view = data.view()?;
    let err = apply_error(&data.path);
    let per_sample = a.per_sample || a.output.is_some();
    let on_gpu = a.backend == ApplyBackend::Gpu;
    if !per_sample && !on_gpu {
        let mean = model.score(&view).map_err(&err)?;
        return say!("{mean}");
    }
    let samples = if on_gpu {
        model.score_samples_on(&gpu_context()?, &view)
    } else {
        model.score_samples(&view)
    }
    .map_err(&err)?;
    // The mean as the library's score computes it (a pairwise sum), without scoring twice.
    let mean = gmm_gpu::pairwise_sum(&samples) / samples.len() as f64;
    if !per_sample {
        return say!("{mean}");
    }
    let table = Table {
        header: vec!["log_likelihood".into()],
        n_cols: 1,
        values: Cells::F64(&samples),
    };
    io::write_table(a.output.as_deref(), &table)?;
    if a.output.is_some() {
        say!("{mean}")
    } else {
        if !cli.quiet {
            eprintln!("mean log-likelihood {mean}");
        }
        Ok(())
    }
}
