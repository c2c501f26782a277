//! The subcommands, a file each. They share `common` (data, parameters, checks and their errors,
//! over `start`: the files a fit can start from), `weights` (the file of `gmm fit --sample-weight`)
//! and `output` (stdout and the words for a model's
//! backend, arithmetic and objective), which use no subcommand file; `cluster` (feature `mpi`) is fit, predict and score under mpirun, which those
//! three hand over to.

mod bench;
#[cfg(feature = "mpi")]
pub mod cluster;
mod common;
mod compare;
mod demo;
mod fit;
mod impute;
mod info;
mod output;
mod plot;
mod predict;
mod sample;
mod score;
mod select;
mod start;
mod weights;

use crate::args::{Cli, Command};
use crate::error::CliError;

/// Runs the command line's subcommand.
pub fn run(cli: &Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Fit(a) => fit::fit(cli, a),
        Command::Predict(a) => predict::predict(a),
        Command::Score(a) => score::score(cli, a),
        Command::Sample(a) => sample::sample(a),
        Command::Impute(a) => impute::impute(a),
        Command::Compare(a) => compare::compare(a),
        Command::Select(a) => select::select(cli, a),
        Command::Plot(a) => plot::plot(a),
        Command::Demo(a) => demo::demo(a),
        Command::Info => info::info(),
        Command::Bench(a) => bench::bench(a),
    }
}
