//! The subcommands.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gmm_gpu::{
    BackendKind, CovarianceType, DataView, GmmError, GmmModel, GmmParams, GmmParamsBuilder, GpuContext,
    PrecisionRecord, Progress,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::error::CliError;
use crate::io::{self, Cells, Data, DataSpec, Table};
use crate::{
    ApplyBackend, Cli, Command, CompareArgs, Criterion, DataArgs, DemoArgs, FitArgs, FitOptions, ModelSpec, PlotArgs,
    PredictArgs, SampleArgs, ScoreArgs, SelectArgs,
};

/// Runs the command line's subcommand.
pub fn run(cli: &Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Fit(a) => fit(cli, a),
        Command::Predict(a) => predict(a),
        Command::Score(a) => score(cli, a),
        Command::Sample(a) => sample(a),
        Command::Compare(a) => compare(a),
        Command::Select(a) => select(cli, a),
        Command::Plot(a) => plot(a),
        Command::Demo(a) => demo(a),
        Command::Info => info(),
        Command::Bench(a) => crate::bench::bench(a),
    }
}

fn read(a: &DataArgs) -> Result<Data, CliError> {
    io::read_data(&DataSpec {
        path: &a.data,
        columns: a.columns.as_deref(),
        features: a.features,
        format: a.format,
    })
}

pub(crate) fn stdout_line(line: std::fmt::Arguments) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|source| CliError::Stdout { source })
}

macro_rules! say {
    ($($t:tt)*) => { stdout_line(format_args!($($t)*)) };
}

// ---- parameters -------------------------------------------------------------------------

/// The builder for K components with the shared fit options.
fn builder(k: usize, covariance: CovarianceType, o: &FitOptions) -> GmmParamsBuilder {
    let mut b = GmmParams::builder(k)
        .covariance_type(covariance)
        .init_method(o.init)
        .n_init(o.n_init)
        .max_iter(o.max_iter)
        .tol(o.tol)
        .reg_covar(o.reg_covar)
        .seed(o.seed)
        .backend(o.backend)
        .gpu_precision(o.precision.into());
    if let Some(c) = o.chunk_size {
        b = b.chunk_size(c);
    }
    if let Some(bytes) = o.device_memory {
        b = b.max_device_bytes(bytes);
    }
    b
}

/// Builds the parameters, naming the command-line option (or init-file field) a rejected value came from.
fn build(b: GmmParamsBuilder, init_file: Option<&Path>) -> Result<GmmParams, CliError> {
    b.build().map_err(|e| {
        let option = match e {
            GmmError::ZeroComponents => "-k",
            GmmError::InvalidTol { .. } => "--tol",
            GmmError::InvalidRegCovar { .. } => "--reg-covar",
            GmmError::ZeroNInit => "--n-init",
            GmmError::ZeroChunkSize => "--chunk-size",
            ref other => {
                let field = match other {
                    GmmError::WeightsInitLength { .. }
                    | GmmError::WeightsInitNotPositive { .. }
                    | GmmError::WeightsInitSum { .. } => "weights",
                    GmmError::MeansInitShape { .. } | GmmError::MeansInitNotFinite { .. } => "means",
                    _ => "precisions",
                };
                return match init_file {
                    Some(path) => CliError::InitValue {
                        path: path.to_path_buf(),
                        field,
                        source: e,
                    },
                    None => CliError::Option {
                        option: "--init-file",
                        source: e,
                    },
                };
            }
        };
        CliError::Option { option, source: e }
    })
}

/// The init file's fields, nested as scikit-learn's weights_init, means_init and precisions_init.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InitFile {
    weights: Option<Value>,
    means: Option<Value>,
    precisions: Option<Value>,
}

/// Reads an init file and adds its fields to the builder, checking each field's shape against K,
/// d and the covariance type first.
fn apply_init(
    path: &Path,
    mut b: GmmParamsBuilder,
    k: usize,
    d: usize,
    covariance: CovarianceType,
) -> Result<GmmParamsBuilder, CliError> {
    let init: InitFile = serde_json::from_str(&io::read_text(path)?).map_err(|source| CliError::InitJson {
        path: path.to_path_buf(),
        source,
    })?;
    let field =
        |name: &'static str, value: &Option<Value>, expected: Vec<usize>| -> Result<Option<Vec<f64>>, CliError> {
            let Some(v) = value else { return Ok(None) };
            let shape_error = |found: String| CliError::InitShape {
                path: path.to_path_buf(),
                field: name,
                k,
                d,
                covariance,
                expected: format!("{expected:?}"),
                found,
            };
            let flat = gmm_gpu::flatten_nested(v, &expected).map_err(|e| shape_error(e.found))?;
            Ok(Some(flat))
        };
    if let Some(w) = field("weights", &init.weights, vec![k])? {
        b = b.weights_init(w);
    }
    if let Some(m) = field("means", &init.means, vec![k, d])? {
        b = b.means_init(m);
    }
    if let Some(p) = field("precisions", &init.precisions, covariance.covariance_shape(k, d))? {
        b = b.precisions_init(p);
    }
    Ok(b)
}

/// A fit error, naming the data file (K above N gets its own message).
pub(crate) fn fit_error(path: &Path, e: GmmError) -> CliError {
    match e {
        GmmError::FewerSamplesThanComponents {
            n_samples,
            n_components,
        } => CliError::KAboveN {
            path: path.to_path_buf(),
            k: n_components,
            n: n_samples,
        },
        GmmError::NoAdapter { .. } => CliError::Gpu { source: e },
        source => CliError::Fit {
            path: path.to_path_buf(),
            source,
        },
    }
}

fn check_k(data: &Data, k: usize) -> Result<(), CliError> {
    if k > data.n_samples() {
        return Err(CliError::KAboveN {
            path: data.path.clone(),
            k,
            n: data.n_samples(),
        });
    }
    Ok(())
}

pub(crate) fn check_model_features(model_path: &Path, model: &GmmModel, data: &Data) -> Result<(), CliError> {
    if model.n_features() != data.n_features {
        return Err(CliError::ModelFeatures {
            model: model_path.to_path_buf(),
            data: data.path.clone(),
            model_features: model.n_features(),
            data_features: data.n_features,
        });
    }
    Ok(())
}

fn backend_line(model: &GmmModel) -> String {
    match model.adapter() {
        Some(a) => format!("{} on {a}", model.backend()),
        None if model.backend() == "cpu" => "cpu (f64)".to_string(),
        None => model.backend().to_string(),
    }
}

/// A GPU fit's arithmetic in words: what it asked for and what its last pass ran.
pub(crate) fn precision_line(p: &PrecisionRecord) -> String {
    let mut line = format!("requested {}, used {}", p.requested, p.used);
    if !p.exact_components.is_empty() {
        let list: Vec<String> = p.exact_components.iter().map(|c| c.to_string()).collect();
        line += &format!(" (exact: component {})", list.join(", "));
    }
    line
}

fn seconds(t: Duration) -> String {
    let s = t.as_secs_f64();
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

// ---- fit ----------------------------------------------------------------------------------

/// Checks the options (before a large file loads), reads the data, checks K against it and adds the
/// init file: the builder that fit and compare start from.
fn prepare_builder(
    spec: &ModelSpec,
    adjust: impl Fn(GmmParamsBuilder) -> GmmParamsBuilder,
) -> Result<(Data, GmmParamsBuilder), CliError> {
    let b = adjust(builder(spec.k, spec.covariance, &spec.fit));
    build(b.clone(), None)?;
    let data = read(&spec.data)?;
    check_k(&data, spec.k)?;
    let b = match &spec.init_file {
        Some(p) => apply_init(p, b, spec.k, data.n_features, spec.covariance)?,
        None => b,
    };
    Ok((data, b))
}

/// The parameters of `spec` for data of `n_features` (the options, then the init file): what a
/// distributed fit builds on each rank.
#[cfg(feature = "mpi")]
pub(crate) fn fit_params(spec: &ModelSpec, n_features: usize) -> Result<GmmParams, CliError> {
    let b = builder(spec.k, spec.covariance, &spec.fit);
    build(b.clone(), None)?;
    let b = match &spec.init_file {
        Some(p) => apply_init(p, b, spec.k, n_features, spec.covariance)?,
        None => b,
    };
    build(b, spec.init_file.as_deref())
}

/// As [`prepare_builder`], then builds the parameters.
fn prepare(
    spec: &ModelSpec,
    adjust: impl Fn(GmmParamsBuilder) -> GmmParamsBuilder,
) -> Result<(Data, GmmParams), CliError> {
    let (data, b) = prepare_builder(spec, adjust)?;
    let params = build(b, spec.init_file.as_deref())?;
    Ok((data, params))
}

fn fit(cli: &Cli, a: &FitArgs) -> Result<(), CliError> {
    #[cfg(feature = "mpi")]
    if let Some(done) = crate::cluster::on_world(|world| crate::cluster::fit(cli, a, world)) {
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
        eprintln!("  lower bound  {}", model.lower_bound());
        eprintln!("  time         {}", seconds(elapsed));
        match &a.output {
            Some(out) => eprintln!("  model        {}", out.display()),
            None => eprintln!("  model        not written (give -o MODEL.json)"),
        }
    }
    Ok(())
}

// ---- predict, score, sample -----------------------------------------------------------------

fn gpu_context() -> Result<GpuContext, CliError> {
    GpuContext::new().map_err(|source| CliError::Gpu { source })
}

pub(crate) fn model_and_data(model: &Path, data: &DataArgs) -> Result<(GmmModel, Data), CliError> {
    let m = io::read_model(model)?;
    let d = read(data)?;
    check_model_features(model, &m, &d)?;
    Ok((m, d))
}

pub(crate) fn apply_error(path: &Path) -> impl Fn(GmmError) -> CliError + '_ {
    move |e| match e {
        GmmError::NoAdapter { .. } => CliError::Gpu { source: e },
        source => CliError::Data {
            path: path.to_path_buf(),
            source,
        },
    }
}

fn predict(a: &PredictArgs) -> Result<(), CliError> {
    #[cfg(feature = "mpi")]
    if let Some(done) = crate::cluster::on_world(|world| crate::cluster::predict(a, world)) {
        return done;
    }
    if let Some(out) = &a.output {
        io::out_kind(out)?;
        io::out_dir(out)?;
    }
    let (model, data) = model_and_data(&a.model, &a.data)?;
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

fn score(cli: &Cli, a: &ScoreArgs) -> Result<(), CliError> {
    #[cfg(feature = "mpi")]
    if let Some(done) = crate::cluster::on_world(|world| crate::cluster::score(a, world)) {
        return done;
    }
    if let Some(out) = &a.output {
        io::out_kind(out)?;
        io::out_dir(out)?;
    }
    let (model, data) = model_and_data(&a.model, &a.data)?;
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

fn sample(a: &SampleArgs) -> Result<(), CliError> {
    let kind = io::out_kind(&a.output)?;
    io::out_dir(&a.output)?;
    if let Some(l) = &a.labels {
        io::out_kind(l)?;
        io::out_dir(l)?;
    }
    let model = io::read_model(&a.model)?;
    let (x, labels) = model
        .sample(a.n, a.seed)
        .map_err(|source| CliError::Option { option: "-n", source })?;
    let d = model.n_features();
    let table = Table {
        header: (0..d).map(|j| format!("x{j}")).collect(),
        n_cols: d,
        values: Cells::F64(&x),
    };
    io::write_atomic(&a.output, |w| match kind {
        io::OutKind::Csv => io::write_csv(w, &table),
        io::OutKind::Npy => io::write_npy(w, &table),
    })?;
    if let Some(l) = &a.labels {
        let t = Table {
            header: vec!["label".into()],
            n_cols: 1,
            values: Cells::Labels(&labels),
        };
        io::write_table(Some(l), &t)?;
    }
    Ok(())
}

// ---- compare ------------------------------------------------------------------------------

/// Below this share of an array's largest |cpu| an entry's difference is measured against that
/// share, not against itself.
const REL_FLOOR: f64 = 1e-3;

/// Max absolute and max relative difference of `gpu` against the reference `cpu`. The relative
/// difference divides by |cpu|, floored at REL_FLOOR of the array's largest |cpu|: the GPU holds
/// the data in f32, so every entry carries an absolute error of about 1e-7 of the array's scale,
/// which against a near-zero entry of its own (an off-diagonal covariance at d = 256) would read
/// as a large relative one (tests/gpu.rs measures the same way).
fn diffs(gpu: &[f64], cpu: &[f64]) -> (f64, f64) {
    let scale = cpu.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let floor = (scale * REL_FLOOR).max(f64::MIN_POSITIVE);
    gpu.iter().zip(cpu).fold((0.0f64, 0.0f64), |(a, r), (g, c)| {
        let d = (g - c).abs();
        (a.max(d), r.max(d / c.abs().max(floor)))
    })
}

fn compare(a: &CompareArgs) -> Result<(), CliError> {
    let (data, base) = prepare_builder(&a.spec, |b| b.n_init(1))?;
    let view = data.view()?;
    let ctx = gpu_context()?;
    let json_out = a.json;
    let a = &a.spec;
    // The start, computed once on the CPU: initialisation only (max_iter 0).
    let start = build(
        base.clone().max_iter(0).backend(BackendKind::Cpu),
        a.init_file.as_deref(),
    )?
    .fit(&view)
    .map_err(|e| fit_error(&data.path, e))?;
    let params = build(
        base.weights_init(start.weights().to_vec())
            .means_init(start.means().to_vec())
            .precisions_init(start.precisions())
            .backend(BackendKind::Cpu),
        a.init_file.as_deref(),
    )?;
    let t = Instant::now();
    let cpu = params.fit(&view).map_err(|e| fit_error(&data.path, e))?;
    let cpu_time = t.elapsed();
    let t = Instant::now();
    let gpu = params.fit_on(&ctx, &view).map_err(|e| fit_error(&data.path, e))?;
    let gpu_time = t.elapsed();

    let w = diffs(gpu.weights(), cpu.weights());
    let m = diffs(gpu.means(), cpu.means());
    let c = diffs(gpu.covariances(), cpu.covariances());
    let adapter = ctx.adapter_name();
    let precision = gpu.gpu_precision();
    if json_out {
        let run = |m: &GmmModel, t: Duration| {
            let mut v = json!({
                "lower_bound": m.lower_bound().is_finite().then_some(m.lower_bound()),
                "n_iter": m.n_iter(),
                "converged": m.converged(),
                "seconds": t.as_secs_f64(),
            });
            // The GPU side's arithmetic: requested, used and each switch (none on the CPU side).
            if let Some(p) = m.gpu_precision() {
                v["precision"] = json!(p);
            }
            v
        };
        let report = json!({
            "data": data.path.display().to_string(),
            "n_samples": data.n_samples(),
            "n_features": data.n_features,
            "n_components": a.k,
            "covariance_type": a.covariance.as_str(),
            "adapter": adapter,
            "max_abs_diff": {"weights": w.0, "means": m.0, "covariances": c.0},
                        "max_rel_diff": {"weights": w.1, "means": m.1, "covariances": c.1},
            // Entries below this share of their array's largest are measured against it.
            "rel_floor": REL_FLOOR,
            "cpu": run(&cpu, cpu_time),
            "gpu": run(&gpu, gpu_time),
        });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        return say!("{text}");
    }
    say!(
        "gmm compare: {} samples x {} features from {}, K = {}, {} covariance, the same start on both",
        data.n_samples(),
        data.n_features,
        data.path.display(),
        a.k,
        a.covariance
    )?;
    say!("GPU: {adapter}")?;
    if let Some(p) = precision {
        say!("GPU precision: {}", precision_line(p))?;
        for why in &p.switches {
            say!("  switched to exact: {why}")?;
        }
    }
    say!("")?;
    say!("{:<12} {:>14} {:>14}", "GPU vs CPU", "max abs diff", "max rel diff")?;
    for (name, (abs, rel)) in [("weights", w), ("means", m), ("covariances", c)] {
        say!("{name:<12} {abs:>14.3e} {rel:>14.3e}")?;
    }
    say!("(relative to each entry, or to {REL_FLOOR:e} of its array's largest where that is more)")?;
    say!("")?;
    let gpu_arith = match precision.map(|p| p.used.as_str()) {
        Some("fast") | None => "GPU (f32)".to_string(),
        Some(used) => format!("GPU ({used})"),
    };
    say!("{:<12} {:>24} {:>24}", "", "CPU (f64)", gpu_arith)?;
    say!(
        "{:<12} {:>24} {:>24}",
        "lower bound",
        cpu.lower_bound(),
        gpu.lower_bound()
    )?;
    let it = |m: &GmmModel| format!("{}{}", m.n_iter(), if m.converged() { " (converged)" } else { "" });
    say!("{:<12} {:>24} {:>24}", "iterations", it(&cpu), it(&gpu))?;
    say!(
        "{:<12} {:>24} {:>24}",
        "wall time",
        seconds(cpu_time),
        seconds(gpu_time)
    )
}

// ---- select -------------------------------------------------------------------------------

struct Candidate {
    k: usize,
    covariance: CovarianceType,
    outcome: Result<(GmmModel, f64, f64), GmmError>,
}

fn select(cli: &Cli, a: &SelectArgs) -> Result<(), CliError> {
    let ks = &a.k.0;
    let covs = &a.covariance.0;
    for &k in ks {
        build(builder(k, CovarianceType::Full, &a.fit), None)?;
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
    let ctx = match a.fit.backend {
        BackendKind::Cpu => None,
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
            let params = build(builder(k, covariance, &a.fit), None)?;
            let fitted = match &ctx {
                Some(ctx)
                    if (k <= gmm_gpu::gpu::MAX_GPU_COMPONENTS
                        && data.n_features <= gmm_gpu::gpu::max_gpu_features(covariance))
                        || a.fit.backend == BackendKind::Gpu =>
                {
                    params.fit_on(ctx, &view)
                }
                _ => build(builder(k, covariance, &a.fit).backend(BackendKind::Cpu), None)?.fit(&view),
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
    say!(
        "  {:>4}  {:<10} {:>20} {:>20} {:>20} {:>6}  {}",
        "K",
        "covariance",
        "BIC",
        "AIC",
        "lower bound",
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

// ---- plot ---------------------------------------------------------------------------------

fn plot(a: &PlotArgs) -> Result<(), CliError> {
    let format = crate::plot::Format::from_path(&a.output).ok_or_else(|| CliError::OutputFormat {
        path: a.output.clone(),
        expected: ".png or .svg",
    })?;
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

// ---- demo ---------------------------------------------------------------------------------

/// The heights example: 600 draws of N(176, 8²), then 400 of N(164, 6²), seed 2 (as the tests' common::heights).
fn heights() -> Vec<f64> {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = StdRng::seed_from_u64(2);
    let (Ok(male), Ok(female)) = (Normal::new(176.0, 8.0), Normal::new(164.0, 6.0)) else {
        unreachable!("constant, valid normal parameters")
    };
    let mut x: Vec<f64> = (0..600).map(|_| male.sample(&mut rng)).collect();
    x.extend((0..400).map(|_| female.sample(&mut rng)));
    x
}

fn demo(a: &DemoArgs) -> Result<(), CliError> {
    let x = heights();
    let demo_path = PathBuf::from("<demo data>");
    let view = DataView::from_f64(&x, 1).map_err(|source| CliError::Data {
        path: demo_path.clone(),
        source,
    })?;
    say!("gmm demo: the heights of 1000 people, one feature (cm)")?;
    say!("  truth: 600 men ~ N(176, 8²) and 400 women ~ N(164, 6²), drawn with seed 2")?;
    say!("  fit: 2 components, full covariance, k-means start (seed 0), tol 1e-8, max_iter 1000")?;
    // One start for every backend: k-means on the CPU, then given to each fit.
    let init = build(GmmParams::builder(2).max_iter(0).seed(0), None)?
        .fit(&view)
        .map_err(|e| fit_error(&demo_path, e))?;
    let start = GmmParams::builder(2)
        .tol(1e-8)
        .max_iter(1000)
        .weights_init(init.weights().to_vec())
        .means_init(init.means().to_vec())
        .precisions_init(init.precisions());
    let params = build(start.clone().backend(a.backend), None)?;
    let started = Instant::now();
    let model = params.fit(&view).map_err(|e| fit_error(&demo_path, e))?;
    let elapsed = started.elapsed();
    say!("  backend: {}", backend_line(&model))?;
    if let Some(why) = model.fallback_reason() {
        say!("  ({why})")?;
    }
    say!("")?;
    let mut order = [0usize, 1];
    order.sort_by(|&p, &q| model.means()[p].total_cmp(&model.means()[q]));
    say!(
        "  {:<10} {:>8} {:>8}   {:>8} {:>8}   {:>8} {:>8}",
        "",
        "weight",
        "",
        "mean",
        "",
        "std dev",
        ""
    )?;
    say!(
        "  {:<10} {:>8} {:>8}   {:>8} {:>8}   {:>8} {:>8}",
        "component",
        "true",
        "fitted",
        "true",
        "fitted",
        "true",
        "fitted"
    )?;
    for ((label, w, mu, sd), &k) in [("women", 0.4, 164.0, 6.0), ("men", 0.6, 176.0, 8.0)]
        .iter()
        .zip(&order)
    {
        say!(
            "  {label:<10} {w:>8.3} {:>8.3}   {mu:>8.2} {:>8.2}   {sd:>8.2} {:>8.2}",
            model.weights()[k],
            model.means()[k],
            model.covariances()[k].sqrt()
        )?;
    }
    say!("")?;
    say!(
        "  {} after {} iterations; lower bound {:.6} (mean log-likelihood); {}",
        if model.converged() {
            "converged"
        } else {
            "NOT converged"
        },
        model.n_iter(),
        model.lower_bound(),
        seconds(elapsed)
    )?;
    // Where any GPU adapter exists (a software one too), the same fit on the other side, from the
    // same start: the GPU's f32 against the CPU's f64.
    if a.backend == BackendKind::Cpu {
        return Ok(());
    }
    let other = if model.backend() == "gpu" {
        build(start.backend(BackendKind::Cpu), None)?.fit(&view)
    } else {
        match GpuContext::new() {
            Ok(ctx) => params.fit_on(&ctx, &view),
            Err(e) => {
                say!("  no GPU adapter to compare with ({e})")?;
                return Ok(());
            }
        }
    }
    .map_err(|e| fit_error(&demo_path, e))?;
    let (gpu, cpu) = if model.backend() == "gpu" {
        (&model, &other)
    } else {
        (&other, &model)
    };
    let rel = |g: &[f64], c: &[f64]| g.iter().zip(c).map(|(a, b)| ((a - b) / b).abs()).fold(0.0f64, f64::max);
    say!(
        "  GPU vs CPU from the same start, on {}: {} against {} iterations; largest relative difference: weights {:.1e}, means {:.1e}, variances {:.1e}",
        backend_line(gpu),
        gpu.n_iter(),
        cpu.n_iter(),
        rel(gpu.weights(), cpu.weights()),
        rel(gpu.means(), cpu.means()),
        rel(gpu.covariances(), cpu.covariances())
    )
}

// ---- info ---------------------------------------------------------------------------------

fn info() -> Result<(), CliError> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle().with_env();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(backends));
    if adapters.is_empty() {
        say!("no GPU adapter found on backends {backends:?}.")?;
        say!("gmm still runs on the CPU (--backend cpu). For a GPU path without a GPU on Linux, install")?;
        say!("Mesa's software Vulkan driver: sudo apt-get install mesa-vulkan-drivers libvulkan1")?;
        say!("(and check the WGPU_BACKEND and WGPU_ADAPTER_NAME environment variables).")?;
        return Ok(());
    }
    say!("{} GPU adapter(s) on backends {backends:?}:", adapters.len())?;
    for (i, adapter) in adapters.iter().enumerate() {
        let info = adapter.get_info();
        let l = adapter.limits();
        say!("")?;
        say!("[{i}] {}", info.name)?;
        say!("    backend                               {:?}", info.backend)?;
        say!("    device type                           {:?}", info.device_type)?;
        say!(
            "    driver                                {} {}",
            info.driver,
            info.driver_info
        )?;
        say!(
            "    max_storage_buffer_binding_size       {}",
            l.max_storage_buffer_binding_size
        )?;
        say!("    max_buffer_size                       {}", l.max_buffer_size)?;
        say!(
            "    max_compute_workgroups_per_dimension  {}",
            l.max_compute_workgroups_per_dimension
        )?;
        say!(
            "    max_compute_workgroup_storage_size    {}",
            l.max_compute_workgroup_storage_size
        )?;
        say!(
            "    max_compute_invocations_per_workgroup {}",
            l.max_compute_invocations_per_workgroup
        )?;
        let f = adapter.features();
        say!(
            "    timestamp queries                     {}",
            if f.contains(wgpu::Features::TIMESTAMP_QUERY) {
                "yes"
            } else {
                "no"
            }
        )?;
        say!(
            "    subgroups                             {}",
            if f.contains(wgpu::Features::SUBGROUP) {
                format!("yes, {} to {} wide", info.subgroup_min_size, info.subgroup_max_size)
            } else {
                "no".to_string()
            }
        )?;
    }
    Ok(())
}
