//! `gmm fit` under mpirun (feature `mpi`): each rank maps only its contiguous rows of the file, fits
//! its share on the CPU, and the ranks combine their statistics by a fixed tree over MPI
//! (`gmm_gpu::distributed`). Rank 0 alone reports and writes the model, atomically.

use gmm_gpu::Progress;
use gmm_gpu::distributed::{Communicator, tree_allreduce};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, Destination, Source};

use crate::error::CliError;
use crate::io::{self, DataSpec, Values};
use crate::{Cli, FitArgs, commands};

/// MPI_COMM_WORLD as the library's communicator.
pub struct World(pub SimpleCommunicator);

impl Communicator for World {
    fn rank(&self) -> usize {
        self.0.rank() as usize
    }
    fn size(&self) -> usize {
        self.0.size() as usize
    }
    fn send(&self, to: usize, values: &[f64]) {
        self.0.process_at_rank(to as i32).send(values);
    }
    fn receive(&self, from: usize, values: &mut [f64]) {
        self.0.process_at_rank(from as i32).receive_into(values);
    }
}

/// Whether every rank got here without an error: all ranks learn the same answer, so that none
/// waits in a later collective for a rank that has stopped.
fn all_ok<T>(world: &World, local: &Result<T, CliError>) -> bool {
    let mut v = [if local.is_ok() { 1.0 } else { 0.0 }];
    tree_allreduce(world, &mut v, &mut [0.0], |a, b| a[0] = a[0].min(b[0]));
    v[0] == 1.0
}

/// `gmm fit` on rank `world.rank()` of `world.size()`.
pub fn fit(cli: &Cli, a: &FitArgs, world: &World) -> Result<(), CliError> {
    let (rank, size) = (world.rank(), world.size());
    let spec = &a.spec;
    // Every failure before the fit is shared: the failing rank reports, the others stop quietly.
    let prepared = (|| {
        if let Some(out) = &a.output {
            io::out_dir(out)?;
        }
        let data = io::read_part(
            &DataSpec {
                path: &spec.data.data,
                columns: spec.data.columns.as_deref(),
                features: spec.data.features,
                format: spec.data.format,
            },
            rank,
            size,
        )?;
        let params = commands::fit_params(spec, data.n_features)?;
        Ok((data, params))
    })();
    if !all_ok(world, &prepared) {
        return Err(prepared.err().unwrap_or(CliError::OtherRank));
    }
    let (data, params) = prepared?;
    let Values::Mapped(m) = &data.values else {
        unreachable!("read_part maps")
    };
    let verbose = cli.verbose && rank == 0;
    let mut observe = |p: &Progress| {
        if verbose {
            eprintln!(
                "init {}, iteration {}: lower bound {:.10}, change {:.3e}",
                p.init + 1,
                p.iteration,
                p.lower_bound,
                p.change
            );
        }
    };
    let started = std::time::Instant::now();
    // After the data check inside, every rank meets the same errors at the same point.
    let model = params
        .fit_distributed(
            m.samples(),
            m.n_features(),
            m.first_row(),
            m.total_rows(),
            world,
            &mut observe,
        )
        .map_err(|e| commands::fit_error(&data.path, e));
    let model = match model {
        Ok(m) => m,
        Err(e) if rank == 0 => return Err(e),
        Err(_) => return Err(CliError::OtherRank),
    };
    if rank != 0 {
        return Ok(());
    }
    if let Some(out) = &a.output {
        io::write_model(out, &model)?;
    }
    if !cli.quiet {
        eprintln!(
            "gmm fit: {} samples x {} features from {} on {size} MPI ranks (CPU, f64)",
            m.total_rows(),
            m.n_features(),
            data.path.display()
        );
        eprintln!("  iterations   {}, converged {}", model.n_iter(), model.converged());
        eprintln!("  lower bound  {}", model.lower_bound());
        eprintln!("  time         {:.2} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}
