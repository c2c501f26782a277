//! `gmm fit`: fits a mixture to the data, shows progress, and writes the model as JSON.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use gmm_gpu::{BackendKind, Progress};
use indicatif::{ProgressBar, ProgressStyle};

use super::common::{fit_error, prepare};
use super::output::{backend_line, objective_lines, precision_line, seconds};
use crate::args::{Cli, FitArgs};
use crate::error::CliError;
use crate::io;

pub(super) fn fit(cli: &Cli, a: &FitArgs) -> Result<(), CliError> {
    #[cfg(feature = "mpi")]
    if let Some(done) = super::cluster::on_world(|world| super::cluster::fit(cli, a, world)) {
        return done;
    }
    if let Some(out) = &a.output {
        io::out_dir(out)?;
    }
    let (data, params) = prepare(&a.spec, |b| b)?;
    let view = data.view()?;

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
    let mut observe = |p: &Progress| {
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
    let result = params.fit_observed(&view, &mut observe);
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
