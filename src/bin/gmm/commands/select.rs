//! `gmm select`: fits every K and covariance type asked for and picks the best by BIC or AIC.

use std::io::IsTerminal;

use gmm_gpu::{BackendKind, CovarianceType, GmmError, GmmModel, GpuContext};
use indicatif::{ProgressBar, ProgressStyle};

use super::common::{build, builder, check_k, fit_error, gpu_context, prior_option, read, variational_asked};
use super::output::say;
use crate::args::{Cli, Criterion, SelectArgs};
use crate::error::CliError;
use crate::io;

struct Candidate {
    k: usize,
    covariance: CovarianceType,
    outcome: Result<(GmmModel, f64, f64), GmmError>,
}

pub(super) fn select(cli: &Cli, a: &SelectArgs) -> Result<(), CliError> {
    // BIC and AIC need the likelihood's parameter count and maximum; a variational fit has
    // neither (scikit-learn's BayesianGaussianMixture has no bic), and its ELBO, less constants
    // that depend on K, cannot rank K either.
    if let Some(option) = variational_asked(&a.fit.variational) {
        return Err(CliError::SelectVariational { option });
    }
    let ks = &a.k.0;
    let covs = &a.covariance.0;
    for &k in ks {
        build(builder(k, CovarianceType::Full, &a.fit)?, None)?;
    }
    if let Some(out) = &a.output {
        io::out_dir(out)?;
    }
    let data = read(&a.data)?;
    let view = data.view()?;
    if let Some(&k) = ks.iter().max() {
        check_k(&data, k)?;
    }
    // One GPU context for every candidate (building one per fit would recompile the pipelines).
    // Missing values are marginalised on the CPU (with --backend gpu each fit says so).
    let ctx = match a.fit.backend {
        BackendKind::Cpu => None,
        BackendKind::Auto if view.has_missing() => None,
        BackendKind::Gpu => Some(gpu_context()?),
        // Auto's own choice: a hardware adapter only (never a software rasteriser).
        BackendKind::Auto => GpuContext::auto()
            .ok()
            .filter(|_| data.n_features <= gmm_gpu::gpu::MAX_GPU_FEATURES)
            .cloned(),
    };
    let total = ks.len() * covs.len();
    let bar = (!cli.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let mut candidates = Vec::with_capacity(total);
    for &covariance in covs {
        for &k in ks {
            if let Some(bar) = &bar {
                bar.set_message(format!("K = {k}, {covariance}"));
            }
            let params = build(builder(k, covariance, &a.fit)?.missing(a.data.missing), None)?;
            let fitted = match &ctx {
                Some(ctx)
                    if (k <= gmm_gpu::gpu::MAX_GPU_COMPONENTS
                        && data.n_features <= gmm_gpu::gpu::max_gpu_features(covariance))
                        || a.fit.backend == BackendKind::Gpu =>
                {
                    params.fit_on(ctx, &view)
                }
                _ => build(
                    builder(k, covariance, &a.fit)?
                        .backend(BackendKind::Cpu)
                        .missing(a.data.missing),
                    None,
                )?
                .fit(&view),
            };
            // A --prior-* value that does not fit the data or this covariance type is the
            // options' fault, not this candidate's: stop, naming the option.
            let fitted = match fitted {
                Err(e) if prior_option(&e).is_some() => {
                    if let Some(bar) = &bar {
                        bar.finish_and_clear();
                    }
                    return Err(fit_error(&data.path, e));
                }
                other => other,
            };
            let outcome = fitted.and_then(|m| {
                let (bic, aic) = (m.bic(&view)?, m.aic(&view)?);
                Ok((m, bic, aic))
            });
            if cli.verbose {
                match &outcome {
                    Ok((m, bic, aic)) => {
                        eprintln!("K = {k}, {covariance}: BIC {bic}, AIC {aic}, {} iterations", m.n_iter())
                    }
                    Err(e) => eprintln!("K = {k}, {covariance}: failed: {e}"),
                }
            }
            candidates.push(Candidate { k, covariance, outcome });
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let key = |c: &Candidate| match (&c.outcome, a.criterion) {
        (Ok((_, bic, _)), Criterion::Bic) => Some(*bic),
        (Ok((_, _, aic)), Criterion::Aic) => Some(*aic),
        _ => None,
    };
    let best = candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| key(c).map(|v| (i, v)))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(i, _)| i);
    let Some(best) = best else {
        let last = candidates
            .into_iter()
            .rev()
            .find_map(|c| c.outcome.err())
            .unwrap_or(GmmError::ZeroComponents);
        return Err(CliError::NoCandidate {
            path: data.path.clone(),
            last,
        });
    };
    if let (Some(out), Ok((model, ..))) = (&a.output, &candidates[best].outcome) {
        io::write_model(out, model)?;
    }
    let backend = match &ctx {
        Some(ctx) => format!("gpu on {}", ctx.adapter_name()),
        None => "cpu (f64)".to_string(),
    };
    say!(
        "gmm select: {} samples x {} features from {}; backend {backend}",
        data.n_samples(),
        data.n_features,
        data.path.display()
    )?;
    // A MAP fit's lower bound is its mean log-posterior (its BIC and AIC stay the likelihood's).
    let map = matches!(&candidates[best].outcome, Ok((m, ..)) if m.prior().is_some());
    say!(
        "  {:>4}  {:<10} {:>20} {:>20} {:>20} {:>6}  {}",
        "K",
        "covariance",
        "BIC",
        "AIC",
        if map { "log-posterior" } else { "lower bound" },
        "iter",
        "converged"
    )?;
    for (i, c) in candidates.iter().enumerate() {
        let mark = if i == best { "*" } else { " " };
        match &c.outcome {
            Ok((m, bic, aic)) => say!(
                "{mark} {:>4}  {:<10} {bic:>20.6} {aic:>20.6} {:>20.10} {:>6}  {}",
                c.k,
                c.covariance.as_str(),
                m.lower_bound(),
                m.n_iter(),
                if m.converged() { "yes" } else { "no" }
            )?,
            Err(e) => say!("{mark} {:>4}  {:<10} failed: {e}", c.k, c.covariance.as_str())?,
        }
    }
    let c = &candidates[best];
    let name = match a.criterion {
        Criterion::Bic => "BIC",
        Criterion::Aic => "AIC",
    };
    match &a.output {
        Some(out) => say!(
            "best by {name}: K = {}, {} covariance (written to {})",
            c.k,
            c.covariance,
            out.display()
        ),
        None => say!("best by {name}: K = {}, {} covariance", c.k, c.covariance),
    }
}
