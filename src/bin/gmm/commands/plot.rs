//! `gmm plot`: the command's side of a plot (checking the options, writing the file atomically);
//! the drawing is `crate::plot`'s.

use super::common::model_and_data;
use crate::args::PlotArgs;
use crate::error::CliError;
use crate::io;

pub(super) fn plot(a: &PlotArgs) -> Result<(), CliError> {
    let format = crate::plot::Format::from_path(&a.output).ok_or_else(|| CliError::OutputFormat {
        path: a.output.clone(),
        expected: ".png or .svg",
    })?;
    if a.data.missing == gmm_gpu::Missing::Marginalise {
        return Err(CliError::MissingNotHere {
            command: "plot",
            why: "draws each sample at its two features, which a missing value does not have",
            fix: "fill them first with gmm impute MODEL DATA -o filled.csv, then plot filled.csv",
        });
    }
    let dir = io::out_dir(&a.output)?;
    let (model, data) = model_and_data(&a.model, &a.data)?;
    let view = data.view()?;
    let d = data.n_features;
    for (option, index) in [("--x", a.x), ("--y", a.y)] {
        // 1-D data has no vertical feature: the plot is a histogram.
        if index >= d && !(option == "--y" && d == 1) {
            return Err(CliError::FeatureIndex {
                option,
                index,
                path: data.path.clone(),
                n_features: d,
            });
        }
    }
    let suffix = a
        .output
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let write_err = |source| CliError::Write {
        path: a.output.clone(),
        source,
    };
    let tmp = io::temp_file_in(&dir, &suffix).map_err(write_err)?;
    crate::plot::draw(&model, &view, a.x, a.y, format, tmp.path()).map_err(|source| CliError::Plot {
        path: a.output.clone(),
        source,
    })?;
    tmp.persist(&a.output).map_err(|e| write_err(e.error))?;
    Ok(())
}
