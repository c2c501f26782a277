//! `gmm`: Gaussian mixture models from the command line — fit, predict, score, sample, compare the
//! GPU and CPU backends, select K and the covariance type, plot, and a demo.
//!
//! Every error is one line on stderr, `gmm: <message>`, naming the file and the row, column or field,
//! with exit status 2. Outputs are written to a temporary file and renamed into place, so a failed
//! command leaves no partial file.
//!
//! Modules, each using only those listed after it: `commands` (one file per subcommand, over
//! `commands::common` and `commands::output`), `args` (the grammar), `labels` (the integer .npy
//! of `--init-labels`), `io`, `error`, `plot`.

mod args;
mod commands;
mod error;
mod io;
mod labels;
mod plot;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;

fn main() -> ExitCode {
    // MPI first: it may rewrite the arguments, and every rank must initialise it.
    #[cfg(feature = "mpi")]
    let _universe = commands::cluster::initialize();
    let cli = Cli::parse();
    // Under mpirun only rank 0 logs: P copies of each warning help no one.
    #[cfg(feature = "mpi")]
    let other_rank = commands::cluster::other_rank();
    #[cfg(not(feature = "mpi"))]
    let other_rank = false;
    let filter = if cli.quiet || other_rank {
        "off"
    } else if cli.verbose {
        "gmm_gpu=debug"
    } else {
        "gmm_gpu=warn"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter))
        .format_timestamp(None)
        .init();
    match commands::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of stdout went away (`gmm predict ... | head`): stop quietly, as Unix tools do.
        Err(error::CliError::Stdout { source }) if source.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        // Another rank of a distributed fit failed and reported it: one message, not P.
        #[cfg(feature = "mpi")]
        Err(error::CliError::OtherRank) => ExitCode::from(2),
        Err(e) => {
            eprintln!("gmm: {e}");
            ExitCode::from(2)
        }
    }
}
