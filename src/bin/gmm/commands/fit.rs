//! `gmm fit`: fits a mixture to the data, shows progress, and writes the model as JSON.

use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

use std::path::Path;

use std::ops::ControlFlow;

use gmm_gpu::{
    BackendKind, DataView, FitEvent, GaussianMixture, GmmError, GmmModel, GmmParams, Online, Progress, SampleWeights,
    Samples,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::common::{build, builder, fit_error, prepare, prior_or_variational_asked, with_init};
use super::output::{backend_line, objective_lines, precision_line, seconds};
use super::weights;
use crate::args::{Cli, FitArgs};
use crate::error::CliError;
use crate::io::{self, DataFormat};

pub(super) fn fit(cli: &Cli, a: &FitArgs) -> Result<(), CliError> {
    #[cfg(feature = "mpi")]
    if let Some(done) = super::cluster::on_world(|world| super::cluster::fit(cli, a, world)) {
        return done;
    }
    if let Some(out) = &a.output {
        io::out_dir(out)?;
    }
    let schedule = a.online.schedule();
    if let Some(online) = a.online.asked() {
        check_online(a, online)?;
    }
    if a.spec.data.data == Path::new("-") {
        return fit_stdin(cli, a, schedule);
    }
    let (data, params) = prepare(&a.spec, |b| match schedule {
        Some(o) => b.online(o),
        None => b,
    })?;
    let view = data.view()?;
    let weights = a
        .sample_weight
        .as_deref()
        .map(|w| weights::read(w, &data))
        .transpose()?;
    // Checked whole, so that a bad weight is named by its row of the file (an online fit's
    // batches would name its row in the batch).
    if let Some(w) = &weights {
        SampleWeights::new(w, data.n_samples()).map_err(|e| fit_error(&data.path, e))?;
    }
    if let Some(schedule) = schedule {
        let started = Instant::now();
        let model =
            online_fit(cli, params, &view, weights.as_deref(), schedule).map_err(|e| fit_error(&data.path, e))?;
        let elapsed = started.elapsed();
        if let Some(out) = &a.output {
            io::write_model(out, &model)?;
        }
        if !cli.quiet {
            let source = format!(
                "{} samples x {} features from {}",
                data.n_samples(),
                data.n_features,
                data.path.display()
            );
            online_summary(&model, &source, &schedule, elapsed, a.output.as_deref());
        }
        return Ok(());
    }

    let show_bar = !cli.quiet && !cli.verbose && std::io::stderr().is_terminal();
    let bar = show_bar.then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message("initialising");
        bar
    });
    let (n_init, max_iter, verbose) = (a.spec.fit.n_init, a.spec.fit.max_iter, cli.verbose);
    let observe = |p: &Progress| {
        let line = format!(
            "init {}/{n_init}, iteration {}/{max_iter}: lower bound {:.10}, change {:.3e}",
            p.init + 1,
            p.iteration,
            p.lower_bound,
            p.change
        );
        if verbose {
            eprintln!("{line}");
        }
        if let Some(bar) = &bar {
            bar.set_message(line);
        }
    };
    let started = Instant::now();
    let mut monitor = |event: &FitEvent| {
        if let FitEvent::Iteration(p) = event {
            observe(p);
        }
        ControlFlow::Continue(())
    };
    let mut gm = GaussianMixture::new(params);
    let result = gm.fit_monitored(&view, weights.as_deref(), &mut monitor).cloned();
    let elapsed = started.elapsed();
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let model = result.map_err(|e| fit_error(&data.path, e))?;
    if let Some(out) = &a.output {
        io::write_model(out, &model)?;
    }
    if !cli.quiet {
        let auto_note = if a.spec.fit.backend == BackendKind::Auto && model.backend() == "cpu" {
            " (auto: no usable GPU adapter)"
        } else {
            ""
        };
        let converged = if model.converged() {
            "converged".to_string()
        } else if max_iter == 0 {
            "no EM iterations (--max-iter 0)".to_string()
        } else {
            format!(
                "NOT converged (change still >= --tol {}; raise --max-iter)",
                a.spec.fit.tol
            )
        };
        eprintln!(
            "gmm fit: {} samples x {} features from {}",
            data.n_samples(),
            data.n_features,
            data.path.display()
        );
        eprintln!("  backend      {}{auto_note}", backend_line(&model));
        if let Some(p) = model.gpu_precision() {
            eprintln!("  precision    {}", precision_line(p));
            for why in &p.switches {
                eprintln!("  switched     to exact: {why}");
            }
        }
        eprintln!(
            "  components   {}, {} covariance",
            model.n_components(),
            model.covariance_type()
        );
        eprintln!("  iterations   {}, {converged}", model.n_iter());
        for line in objective_lines(&model) {
            eprintln!("{line}");
        }
        eprintln!("  time         {}", seconds(elapsed));
        match &a.output {
            Some(out) => eprintln!("  model        {}", out.display()),
            None => eprintln!("  model        not written (give -o MODEL.json)"),
        }
    }
    Ok(())
}

/// What an online fit (asked for by the option `online`) cannot take: a prior, a start with a
/// row per sample (which the first batch does not hold), or batches below K (under mpirun too,
/// where a rank's batch is part of the step's).
pub(super) fn check_online(a: &FitArgs, online: &'static str) -> Result<(), CliError> {
    if let Some(prior) = prior_or_variational_asked(&a.spec.fit) {
        return Err(CliError::OnlineWithPrior {
            online,
            prior,
            source: GmmError::OnlineWithPrior,
        });
    }
    let start = match (&a.spec.init_resp, &a.spec.init_labels) {
        (Some(_), _) => Some("--init-resp"),
        (None, Some(_)) => Some("--init-labels"),
        (None, None) => None,
    };
    if let Some(start) = start {
        return Err(CliError::OnlineStart { online, start });
    }
    if let Some(o) = a
        .online
        .schedule()
        .filter(|o| (1..a.spec.k).contains(&o.get_batch_size()))
    {
        return Err(CliError::BatchBelowK {
            batch: o.get_batch_size(),
            k: a.spec.k,
        });
    }
    Ok(())
}

/// The rows `first..first + n` of `view`.
pub(super) fn rows<'a>(view: &DataView<'a>, first: usize, n: usize) -> Result<DataView<'a>, GmmError> {
    let d = view.n_features();
    let samples = match view.samples() {
        Samples::F32(x) => Samples::F32(&x[first * d..(first + n) * d]),
        Samples::F64(x) => Samples::F64(&x[first * d..(first + n) * d]),
    };
    DataView::new(samples, d)
}

/// Stepwise EM over `view` as the library's `GaussianMixture::fit` runs it (`passes` passes of
/// consecutive batches, the last of each shorter), one `partial_fit` per batch so that progress
/// can be shown: a line per pass (a line per batch with -v) unless -q.
fn online_fit(
    cli: &Cli,
    params: GmmParams,
    view: &DataView,
    weights: Option<&[f64]>,
    schedule: Online,
) -> Result<GmmModel, GmmError> {
    let (n, b, passes) = (view.n_samples(), schedule.get_batch_size(), schedule.get_passes());
    let mut gm = GaussianMixture::new(params);
    let mut meter = Meter::new(cli);
    for pass in 1..=passes {
        for first in (0..n).step_by(b) {
            let m = b.min(n - first);
            let batch = rows(view, first, m)?;
            let fitted = match weights {
                Some(w) => gm.partial_fit_weighted(&batch, &w[first..first + m])?,
                None => gm.partial_fit(&batch)?,
            };
            let lower_bound = fitted.lower_bound();
            meter.batch(m, lower_bound, || format!("pass {pass}/{passes}"));
        }
        meter.pass(&format!("pass {pass}/{passes}"));
    }
    gm.into_model().ok_or(GmmError::TooFewSamples { n_samples: 0 })
}

/// Progress of an online fit on stderr: samples seen, samples per second, the last batch's mean
/// log-likelihood.
pub(super) struct Meter {
    quiet: bool,
    verbose: bool,
    started: Instant,
    seen: u64,
    batches: u64,
    lower_bound: f64,
}

impl Meter {
    pub(super) fn new(cli: &Cli) -> Self {
        Self {
            quiet: cli.quiet,
            verbose: cli.verbose,
            started: Instant::now(),
            seen: 0,
            batches: 0,
            lower_bound: f64::NAN,
        }
    }

    fn line(&self, what: &str) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { self.seen as f64 / secs } else { 0.0 };
        format!(
            "{what}: {} batches, {} samples seen, {rate:.0} samples/s, last batch's mean log-likelihood {:.10}",
            self.batches, self.seen, self.lower_bound
        )
    }

    /// A batch of `m` samples done; with -v, a line.
    pub(super) fn batch(&mut self, m: usize, lower_bound: f64, what: impl Fn() -> String) {
        self.seen += m as u64;
        self.batches += 1;
        self.lower_bound = lower_bound;
        if self.verbose {
            eprintln!(
                "gmm fit --online: {}",
                self.line(&format!("{}, batch {}", what(), self.batches))
            );
        }
    }

    /// A pass (or the input) done: a line unless -q.
    pub(super) fn pass(&self, what: &str) {
        if !self.quiet {
            eprintln!("gmm fit --online: {}", self.line(what));
        }
    }
}

/// The summary of an online fit, unless -q.
pub(super) fn online_summary(
    model: &GmmModel,
    source: &str,
    schedule: &Online,
    elapsed: Duration,
    output: Option<&Path>,
) {
    eprintln!("gmm fit --online: {source}");
    eprintln!("  backend      {}", backend_line(model));
    eprintln!(
        "  components   {}, {} covariance",
        model.n_components(),
        model.covariance_type()
    );
    eprintln!(
        "  steps        {} (batches of {}, {} pass{})",
        model.n_iter(),
        schedule.get_batch_size(),
        schedule.get_passes(),
        if schedule.get_passes() == 1 { "" } else { "es" }
    );
    eprintln!(
        "  lower bound  {:.10} (the last batch's mean log-likelihood)",
        model.lower_bound()
    );
    eprintln!("  time         {}", seconds(elapsed));
    match output {
        Some(out) => eprintln!("  model        {}", out.display()),
        None => eprintln!("  model        not written (give -o MODEL.json)"),
    }
}

/// `gmm fit - --features D --online`: raw little-endian float32 rows from stdin, a batch of
/// --batch-size rows read and fitted (`partial_fit`) at a time, so that the input is never held
/// whole; the last batch may be shorter, but not end inside a row.
fn fit_stdin(cli: &Cli, a: &FitArgs, schedule: Option<Online>) -> Result<(), CliError> {
    let spec = &a.spec;
    let problem = |problem| Err(CliError::StdinOption { problem });
    let Some(schedule) = schedule else {
        return problem("give --online: only an online fit reads its samples as they come");
    };
    if a.sample_weight.is_some() {
        return problem("--sample-weight needs the data in a file, row for row beside the weights");
    }
    let Some(d) = spec.data.features.filter(|&d| d > 0) else {
        return problem("give --features D (at least 1): raw float32 rows carry no shape");
    };
    if spec.data.columns.is_some() {
        return problem("--columns is for CSV files; stdin is raw float32");
    }
    if matches!(spec.data.format, DataFormat::Npy | DataFormat::Csv) {
        return problem("--format npy and csv need a file; stdin is raw float32 (--format raw)");
    }
    if schedule.get_passes() > 1 {
        return problem("--passes above 1: stdin is read once; save the data to a file for more passes");
    }
    let b = with_init(spec, builder(spec.k, spec.covariance, &spec.fit)?.online(schedule), d)?;
    let params = build(b, spec.init_file.as_deref())?;
    let batch = schedule.get_batch_size();
    let row_bytes = d * 4;
    let Some(batch_bytes) = batch.checked_mul(row_bytes).filter(|&n| n <= isize::MAX as usize) else {
        return Err(CliError::StdinOption {
            problem: "--batch-size times --features float32 values is more than memory can hold",
        });
    };
    let path = Path::new("-");
    let started = Instant::now();
    let mut buffer = vec![0u8; batch_bytes];
    let mut values = Vec::<f32>::with_capacity(batch * d);
    let mut input = std::io::stdin().lock();
    let mut gm = GaussianMixture::new(params);
    let mut meter = Meter::new(cli);
    let mut rows = 0u64;
    loop {
        let filled = fill(&mut input, &mut buffer).map_err(|source| CliError::StdinRead { source })?;
        let whole = filled / row_bytes;
        if filled % row_bytes != 0 {
            return Err(CliError::StdinPartialRow {
                bytes: filled % row_bytes,
                rows: rows + whole as u64,
                features: d,
                row_bytes,
            });
        }
        if whole > 0 {
            values.clear();
            values.extend(
                buffer[..filled]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            let view = DataView::from_f32(&values, d).map_err(|e| fit_error(path, e))?;
            let lower_bound = gm.partial_fit(&view).map_err(|e| fit_error(path, e))?.lower_bound();
            rows += whole as u64;
            meter.batch(whole, lower_bound, || "stdin".to_string());
            if !cli.quiet && !cli.verbose && meter.batches % 16 == 0 {
                meter.pass("stdin");
            }
        }
        if filled < buffer.len() {
            break;
        }
    }
    let Some(model) = gm.into_model() else {
        return Err(CliError::EmptyData {
            path: path.to_path_buf(),
        });
    };
    meter.pass("end of stdin");
    let elapsed = started.elapsed();
    if let Some(out) = &a.output {
        io::write_model(out, &model)?;
    }
    if !cli.quiet {
        let source = format!("{rows} samples x {d} features from stdin");
        online_summary(&model, &source, &schedule, elapsed, a.output.as_deref());
    }
    Ok(())
}

/// Reads into `buffer` until it is full or the input ends; the bytes read.
fn fill(input: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
