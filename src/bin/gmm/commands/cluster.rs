//! `gmm fit`, `gmm predict` and `gmm score` under mpirun (feature `mpi`): each rank maps only its
//! contiguous rows of the file and works on them on the CPU; a fit combines the ranks' statistics
//! by a fixed tree over MPI (`gmm_gpu::distributed`). Rank 0 alone reports and writes the model
//! (atomically); predictions are written by every rank at its rows' offset in one preallocated
//! .npy, which rank 0 renames into place once all are done.

use gmm_gpu::Progress;
use gmm_gpu::distributed::{Communicator, RankData, agree_with, tree_allreduce};
use gmm_gpu::{BackendKind, GpuContext};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, Destination, Source};

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use gmm_gpu::{DataView, GmmModel};

use super::common::{self, apply_error, check_model_features, fit_error};
use super::output::{objective_lines, precision_line, say};
use super::weights;
use crate::args::{Cli, DataArgs, FitArgs, PredictArgs, ScoreArgs};
use crate::error::CliError;
use crate::io::{self, Cells, Data, Table, Values};

// MPI_COMM_WORLD, when built with feature `mpi` (size 1 outside mpirun). Thread-local: an MPI
// handle is neither Send nor Sync, and MPI is used from the main thread only.
thread_local! {
    static WORLD: std::cell::OnceCell<World> = const { std::cell::OnceCell::new() };
}

/// Initialises MPI and keeps MPI_COMM_WORLD for [`on_world`]; first thing in `main` (MPI may
/// rewrite the arguments, and every rank must initialise it). MPI is finalised when the universe
/// returned is dropped, so `main` holds it to the end.
pub fn initialize() -> Option<mpi::environment::Universe> {
    mpi::initialize().inspect(|u| {
        WORLD.with(|w| {
            let _ = w.set(World(u.world()));
        });
    })
}

/// Whether this process is a rank other than 0 of a distributed run (those do not log).
pub fn other_rank() -> bool {
    WORLD.with(|w| w.get().is_some_and(|w| w.rank() > 0))
}

/// Runs `f` on MPI_COMM_WORLD when this process is one of several ranks (under mpirun), else None.
pub fn on_world<T>(f: impl FnOnce(&World) -> T) -> Option<T> {
    WORLD.with(|w| w.get().filter(|w| w.size() > 1).map(f))
}

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

/// Shares whether every rank got here without an error, so that none waits in a later collective
/// for a rank that has stopped: when some failed, the lowest failing rank returns its own error and
/// every other rank `OtherRank` (so that one message is printed); else `local` goes through.
fn shared<T>(world: &World, local: Result<T, CliError>) -> Result<T, CliError> {
    agree_with(world, local, |_| CliError::OtherRank)
}

/// This rank's part of the data, as `spec` names it.
fn read_part(data: &DataArgs, world: &World) -> Result<Data, CliError> {
    io::read_part(&data.spec(), world.rank(), world.size())
}

/// The model and this rank's rows, checked against each other.
fn model_and_part(model: &Path, data: &DataArgs, world: &World) -> Result<(GmmModel, Data), CliError> {
    let local = (|| {
        let m = io::read_model(model)?;
        let d = read_part(data, world)?;
        check_model_features(model, &m, &d)?;
        Ok((m, d))
    })();
    shared(world, local)
}

/// The validated view of this rank's rows (read once): a NaN on any rank is one error naming its
/// global row.
fn view_of<'d>(data: &'d Data, world: &World) -> Result<DataView<'d>, CliError> {
    let view = data.view().map_err(|e| match e {
        CliError::NonFinite {
            path,
            row,
            column,
            value,
        } => CliError::NonFinite {
            path,
            row: row + data.first_row(),
            column,
            value,
        },
        e => e,
    });
    shared(world, view)
}

/// Writes this rank's `table` rows (the file's rows from `first_row`, of `total` in all) into one
/// .npy at `out`: rank 0 makes the file at its full size beside `out`, every rank writes its rows at
/// their offset, and rank 0 renames it into place once all have written.
fn write_rows_npy(world: &World, out: &Path, total: usize, first_row: usize, table: &Table) -> Result<(), CliError> {
    let descr = match table.values {
        Cells::F64(_) => "<f8",
        Cells::Labels(_) => "<i8",
    };
    let header = io::npy_header(descr, total, table.n_cols);
    let dir = io::out_dir(out)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let part: PathBuf = dir.join(format!(".{name}.gmm-mpi-partial"));
    let write_err = |source| CliError::Write {
        path: out.to_path_buf(),
        source,
    };
    // Rank 0 makes the file; the others open it once it exists.
    let made = if world.rank() == 0 {
        (|| -> std::io::Result<()> {
            let f = File::create(&part)?;
            f.write_all_at(&header, 0)?;
            f.set_len((header.len() + total * table.n_cols * 8) as u64)
        })()
        .map_err(write_err)
    } else {
        Ok(())
    };
    shared(world, made)?;
    let mut body = Vec::new();
    io::write_npy_values(&mut body, table).map_err(write_err)?;
    let written = (|| -> std::io::Result<()> {
        let f = OpenOptions::new().write(true).open(&part)?;
        f.write_all_at(&body, (header.len() + first_row * table.n_cols * 8) as u64)?;
        f.sync_all()
    })()
    .map_err(write_err);
    let written = shared(world, written);
    if world.rank() == 0 {
        match written {
            Ok(()) => std::fs::rename(&part, out).map_err(write_err)?,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
        }
    }
    written
}

/// Under mpirun, outputs go to a .npy file, written in place by every rank.
fn npy_out(out: Option<&Path>) -> Result<Option<&Path>, CliError> {
    match out {
        Some(p) if io::out_kind(p)? == io::OutKind::Npy => Ok(Some(p)),
        Some(p) => Err(CliError::NpyOutUnderMpi { path: p.to_path_buf() }),
        None => Ok(None),
    }
}

/// `gmm predict` on this rank's rows, into one .npy.
pub fn predict(a: &PredictArgs, world: &World) -> Result<(), CliError> {
    let out = shared(world, npy_out(a.output.as_deref()).map(|o| o.map(Path::to_path_buf)))?;
    let Some(out) = out else {
        // Labels on stdout from several ranks would interleave.
        return shared(world, Err(CliError::NpyOutUnderMpi { path: "stdout".into() }));
    };
    let (model, data) = model_and_part(&a.model, &a.data, world)?;
    let view = view_of(&data, world)?;
    let err = apply_error(&data.path);
    let k = model.n_components();
    let (total, first) = (data.total_rows(), data.first_row());
    if a.proba {
        let p = shared(world, model.predict_proba(&view).map_err(&err))?;
        let table = Table {
            header: Vec::new(),
            n_cols: k,
            values: Cells::F64(&p),
        };
        write_rows_npy(world, &out, total, first, &table)
    } else {
        let labels = shared(world, model.predict(&view).map_err(&err))?;
        let table = Table {
            header: Vec::new(),
            n_cols: 1,
            values: Cells::Labels(&labels),
        };
        write_rows_npy(world, &out, total, first, &table)
    }
}

/// `gmm score` on this rank's rows: the mean over all ranks (rank 0 prints it), and with `-o` every
/// sample's log-likelihood in one .npy.
pub fn score(a: &ScoreArgs, world: &World) -> Result<(), CliError> {
    let out = shared(world, npy_out(a.output.as_deref()).map(|o| o.map(Path::to_path_buf)))?;
    if a.per_sample && out.is_none() {
        return shared(world, Err(CliError::NpyOutUnderMpi { path: "stdout".into() }));
    }
    let (model, data) = model_and_part(&a.model, &a.data, world)?;
    let view = view_of(&data, world)?;
    let err = apply_error(&data.path);
    let samples = shared(world, model.score_samples(&view).map_err(&err))?;
    // Σ log p over all ranks by the fixed tree, then the mean.
    let mut sum = [gmm_gpu::pairwise_sum(&samples)];
    tree_allreduce(world, &mut sum, &mut [0.0], gmm_gpu::distributed::add);
    if let Some(out) = &out {
        let table = Table {
            header: Vec::new(),
            n_cols: 1,
            values: Cells::F64(&samples),
        };
        write_rows_npy(world, out, data.total_rows(), data.first_row(), &table)?;
    }
    if world.rank() == 0 {
        say!("{}", sum[0] / data.total_rows() as f64)?;
    }
    Ok(())
}

/// This rank's index among the ranks on its node, from the launcher's environment (Open MPI,
/// MPICH/Intel MPI, Slurm), else its world rank.
fn local_rank(world: &World) -> usize {
    ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(world.rank())
}

/// The GPU this rank fits on, if any: `--backend gpu` needs one on every rank; `auto` uses them only
/// if every rank has a hardware one, else every rank fits on the CPU.
fn rank_gpu(world: &World, backend: BackendKind) -> Result<Option<GpuContext>, CliError> {
    match backend {
        BackendKind::Cpu => Ok(None),
        BackendKind::Gpu => {
            let ctx = GpuContext::for_local_rank(local_rank(world)).map_err(|source| CliError::Gpu { source });
            shared(world, ctx).map(Some)
        }
        BackendKind::Auto => {
            let ctx = GpuContext::for_local_rank(local_rank(world))
                .ok()
                .filter(|c| c.adapter_info().device_type != wgpu::DeviceType::Cpu);
            let mut all = [if ctx.is_some() { 1.0 } else { 0.0 }];
            tree_allreduce(world, &mut all, &mut [0.0], |a, b| a[0] = a[0].min(b[0]));
            Ok(ctx.filter(|_| all[0] == 1.0))
        }
    }
}

/// `gmm fit` on rank `world.rank()` of `world.size()`.
pub fn fit(cli: &Cli, a: &FitArgs, world: &World) -> Result<(), CliError> {
    let (rank, size) = (world.rank(), world.size());
    let spec = &a.spec;
    // Every failure before the fit is shared: the failing rank reports, the others stop quietly.
    let schedule = a.online.schedule();
    let prepared = (|| {
        if let Some(online) = a.online.asked() {
            super::fit::check_online(a, online)?;
            if spec.fit.backend == BackendKind::Gpu {
                return Err(CliError::OnlineDistributed { online });
            }
        }
        if let Some(out) = &a.output {
            io::out_dir(out)?;
        }
        let data = read_part(&spec.data, world)?;
        let params = common::fit_params(spec, &data, |b| match schedule {
            Some(o) => b.online(o),
            None => b,
        })?;
        // This rank's rows' weights, mapped as its rows of the data are.
        let weights = a
            .sample_weight
            .as_deref()
            .map(|w| weights::read_part(w, &data, rank, size))
            .transpose()?;
        Ok((data, params, weights))
    })();
    let (data, params, weights) = shared(world, prepared)?;
    if let Some(schedule) = schedule {
        return online_fit(cli, a, world, &data, params, weights.as_deref(), schedule);
    }
    let gpu = rank_gpu(world, params.backend())?;
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
    if rank == 0 && !cli.quiet {
        // Before the fit, so that a long one shows it has started.
        eprintln!(
            "gmm fit: {} samples x {} features from {} on {size} MPI ranks, K = {}, {} covariance ...",
            m.total_rows(),
            m.n_features(),
            data.path.display(),
            params.n_components(),
            params.covariance_type()
        );
    }
    // After the data check inside, every rank meets the same errors at the same point.
    let part = RankData {
        samples: m.samples(),
        n_features: m.n_features(),
        first_row: m.first_row(),
        n_total: m.total_rows(),
        sample_weight: weights.as_deref(),
    };
    let model = params
        .fit_distributed(part, world, gpu.as_ref(), None, &mut observe)
        .map_err(|e| fit_error(&data.path, e));
    let model = model.map_err(|e| one_message(world, e))?;
    if rank != 0 {
        return Ok(());
    }
    if let Some(out) = &a.output {
        io::write_model(out, &model)?;
    }
    if !cli.quiet {
        eprintln!(
            "gmm fit: done on {size} MPI ranks ({})",
            if gpu.is_some() { "GPU" } else { "CPU, f64" }
        );
        if let Some(p) = model.gpu_precision() {
            eprintln!("  precision    {}", precision_line(p));
            for why in &p.switches {
                eprintln!("  switched     to exact: {why}");
            }
        }
        eprintln!("  iterations   {}, converged {}", model.n_iter(), model.converged());
        for line in objective_lines(&model) {
            eprintln!("{line}");
        }
        eprintln!("  time         {:.2} s", started.elapsed().as_secs_f64());
        match &a.output {
            Some(out) => eprintln!("  model        {}", out.display()),
            None => eprintln!("  model        not written (give -o MODEL.json)"),
        }
    }
    Ok(())
}

/// The error of a fit that every rank stopped at the same point, to print once: a rank's own
/// failure from that rank (the others hold PeerFailed, and stand aside here), an error every rank
/// met alike from the lowest rank, rank 0.
fn one_message(world: &World, e: CliError) -> CliError {
    let peer = matches!(
        e,
        CliError::Fit {
            source: gmm_gpu::GmmError::PeerFailed { .. },
            ..
        }
    );
    let own = if peer { Ok(()) } else { Err(e) };
    shared(world, own).err().unwrap_or(CliError::OtherRank)
}

/// `gmm fit --online` on rank `world.rank()`: each rank steps through its own rows in batches of
/// --batch-size, and step t's batch is the concatenation of every rank's t-th batch (a rank whose
/// rows have run out adds none), so the model is one process's stepwise EM over those batches.
/// A pass is as many steps as the longest rank has batches (ranks differ by a row at most).
fn online_fit(
    cli: &Cli,
    a: &FitArgs,
    world: &World,
    data: &Data,
    params: gmm_gpu::GmmParams,
    weights: Option<&[f64]>,
    schedule: gmm_gpu::Online,
) -> Result<(), CliError> {
    let view = view_of(data, world)?;
    // A bad weight is named by its row of the file, as in a batch fit (the steps would name its
    // row in the global batch): the first over the ranks, before the first step.
    let bad = weights.and_then(|w| {
        let i = w.iter().position(|v| !(v.is_finite() && *v >= 0.0))?;
        Some((data.first_row() + i, 0, w[i]))
    });
    if let Some((index, _, value)) = gmm_gpu::distributed::first_bad_value(world, bad) {
        let e = gmm_gpu::GmmError::InvalidSampleWeight { index, value };
        return Err(one_message(world, fit_error(&data.path, e)));
    }
    let (n, b, passes) = (view.n_samples(), schedule.get_batch_size(), schedule.get_passes());
    let mut steps = [n.div_ceil(b) as f64];
    tree_allreduce(world, &mut steps, &mut [0.0], gmm_gpu::distributed::max);
    // Every rank's rows, as read_part split them, for rank 0's count of the samples seen.
    let sizes: Vec<usize> = (0..world.size())
        .map(|r| gmm_gpu::distributed::rows_of(r, world.size(), data.total_rows()).len())
        .collect();
    let lead = world.rank() == 0;
    let mut meter = lead.then(|| super::fit::Meter::new(cli));
    let started = std::time::Instant::now();
    let mut gm = gmm_gpu::GaussianMixture::new(params);
    // Every rank fails at the same step (each step's errors are agreed over the ranks).
    let mut steps_all = || {
        for pass in 1..=passes {
            for s in 0..steps[0] as usize {
                let rows = (s * b).min(n)..((s + 1) * b).min(n);
                let batch = super::fit::rows(&view, rows.start, rows.len())?;
                let lower_bound = gm
                    .partial_fit_distributed(&batch, weights.map(|w| &w[rows]), world)?
                    .lower_bound();
                if let Some(m) = &mut meter {
                    let global: usize = sizes.iter().map(|&q| ((s + 1) * b).min(q) - (s * b).min(q)).sum();
                    m.batch(global, lower_bound, || format!("pass {pass}/{passes}"));
                }
            }
            if let Some(m) = &meter {
                m.pass(&format!("pass {pass}/{passes}"));
            }
        }
        Ok::<_, gmm_gpu::GmmError>(())
    };
    steps_all().map_err(|e| one_message(world, fit_error(&data.path, e)))?;
    let model = gm.into_model().expect("a pass takes at least one step");
    if !lead {
        return Ok(());
    }
    if let Some(out) = &a.output {
        io::write_model(out, &model)?;
    }
    if !cli.quiet {
        let source = format!(
            "{} samples x {} features from {} on {} MPI ranks",
            data.total_rows(),
            data.n_features,
            data.path.display(),
            world.size()
        );
        super::fit::online_summary(&model, &source, &schedule, started.elapsed(), a.output.as_deref());
    }
    Ok(())
}
