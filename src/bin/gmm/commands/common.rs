//! What several subcommands share: reading the data, the fit parameters from the options (a MAP
//! prior, or a variational fit), a start file and an init file, the checks of K and of a model
//! against its data, and the errors of fitting and of applying a model, each naming the file or
//! option at fault. It uses no subcommand file.

use std::path::Path;

use gmm_gpu::{
    CovarianceType, GmmError, GmmModel, GmmParams, GmmParamsBuilder, GpuContext, Parameter, Prior, Variational,
};
use serde_json::Value;

use super::start::Start;
use crate::args::{BayesianArg, DataArgs, FitOptions, ModelSpec, PriorArg, PriorOptions, VariationalOptions};
use crate::error::CliError;
use crate::io::{self, Data};

/// The samples the data options name.
pub(super) fn read(a: &DataArgs) -> Result<Data, CliError> {
    io::read_data(&a.spec())
}

/// The builder for K components with the shared fit options (an unset --reg-covar is left unset,
/// so that the library's default applies: 1e-6, or 0 with a prior).
pub(super) fn builder(k: usize, covariance: CovarianceType, o: &FitOptions) -> Result<GmmParamsBuilder, CliError> {
    let mut b = GmmParams::builder(k)
        .covariance_type(covariance)
        .init_method(o.init)
        .n_init(o.n_init)
        .max_iter(o.max_iter)
        .tol(o.tol)
        .seed(o.seed)
        .backend(o.backend)
        .gpu_precision(o.precision.into());
    if let Some(r) = o.reg_covar {
        b = b.reg_covar(r);
    }
    // The library refuses a MAP prior beside a variational fit; the options that asked for each
    // are named here, where they are known.
    if let (Some(prior), Some(variational)) = (prior_asked(&o.prior), variational_asked(&o.variational)) {
        return Err(CliError::PriorAndVariational {
            prior,
            variational,
            source: GmmError::PriorAndVariational,
        });
    }
    if let Some(p) = prior(&o.prior)? {
        b = b.prior(p);
    }
    if let Some(v) = variational(&o.variational) {
        b = b.variational(v);
    }
    if let Some(c) = o.chunk_size {
        b = b.chunk_size(c);
    }
    if let Some(bytes) = o.device_memory {
        b = b.max_device_bytes(bytes);
    }
    Ok(b)
}

/// The --prior-* options given, by name.
fn prior_options_given(o: &PriorOptions) -> Option<&'static str> {
    [
        ("--prior-shrinkage", o.prior_shrinkage.is_some()),
        ("--prior-mean", o.prior_mean.is_some()),
        ("--prior-dof", o.prior_dof.is_some()),
        ("--prior-scale", o.prior_scale.is_some()),
        ("--prior-weights", o.prior_weights.is_some()),
    ]
    .into_iter()
    .find_map(|(option, set)| set.then_some(option))
}

/// The option that asks for a MAP prior (`--prior default`, else the first --prior-* given), if any.
fn prior_asked(o: &PriorOptions) -> Option<&'static str> {
    match o.prior {
        Some(PriorArg::Default) => Some("--prior default"),
        Some(PriorArg::Off) => None,
        None => prior_options_given(o),
    }
}

/// The option that asks for a MAP prior or a variational fit, if any.
pub(super) fn prior_or_variational_asked(o: &FitOptions) -> Option<&'static str> {
    prior_asked(&o.prior).or_else(|| variational_asked(&o.variational))
}

/// The prior the options ask for: none without --prior default or a --prior-* option, else
/// mclust's default with the hyperparameters given.
fn prior(o: &PriorOptions) -> Result<Option<Prior>, CliError> {
    match (o.prior, prior_options_given(o)) {
        (Some(PriorArg::Off), Some(option)) => return Err(CliError::PriorConflict { option }),
        (None | Some(PriorArg::Off), None) => return Ok(None),
        _ => {}
    }
    let mut p = Prior::mclust();
    if let Some(kappa) = o.prior_shrinkage {
        p = p.shrinkage(kappa);
    }
    if let Some(m) = &o.prior_mean {
        p = p.mean(m.0.clone());
    }
    if let Some(nu) = o.prior_dof {
        p = p.dof(nu);
    }
    if let Some(s) = &o.prior_scale {
        p = p.scale(s.0.clone());
    }
    if let Some(alpha) = o.prior_weights {
        p = p.weights(alpha);
    }
    Ok(Some(p))
}

/// The option that asks for a variational fit (`--bayesian`, else the first of scikit-learn's
/// prior options given), if any.
pub(super) fn variational_asked(o: &VariationalOptions) -> Option<&'static str> {
    [
        ("--bayesian", o.bayesian.is_some()),
        ("--weight-concentration-prior", o.weight_concentration_prior.is_some()),
        ("--mean-precision-prior", o.mean_precision_prior.is_some()),
        ("--mean-prior", o.mean_prior.is_some()),
        ("--degrees-of-freedom-prior", o.degrees_of_freedom_prior.is_some()),
        ("--covariance-prior", o.covariance_prior.is_some()),
    ]
    .into_iter()
    .find_map(|(option, set)| set.then_some(option))
}

/// The variational fit the options ask for: none without --bayesian or a prior option, else the
/// weight prior given (a prior option alone implies scikit-learn's default, the Dirichlet
/// process) with the priors given, the rest from the data.
fn variational(o: &VariationalOptions) -> Option<Variational> {
    variational_asked(o)?;
    let mut v =
        Variational::dirichlet_process().weight_prior(o.bayesian.unwrap_or(BayesianArg::DirichletProcess).into());
    if let Some(alpha) = o.weight_concentration_prior {
        v = v.weight_concentration_prior(alpha);
    }
    if let Some(beta) = o.mean_precision_prior {
        v = v.mean_precision_prior(beta);
    }
    if let Some(m) = &o.mean_prior {
        v = v.mean_prior(m.0.clone());
    }
    if let Some(nu) = o.degrees_of_freedom_prior {
        v = v.degrees_of_freedom_prior(nu);
    }
    if let Some(psi) = &o.covariance_prior {
        v = v.covariance_prior(psi.0.clone());
    }
    Some(v)
}

/// The option a prior's error comes from (a --prior-* option for a MAP fit, one of scikit-learn's
/// names for a variational one), whether the builder or the fit (against the data's features and
/// the covariance type) found it.
pub(super) fn prior_option(e: &GmmError) -> Option<&'static str> {
    Some(match e {
        GmmError::PriorShrinkage { .. } => "--prior-shrinkage",
        GmmError::PriorDof { .. } => "--prior-dof",
        GmmError::PriorWeights { .. } => "--prior-weights",
        GmmError::VariationalPriorNotPositive {
            field: "weight_concentration_prior",
            ..
        } => "--weight-concentration-prior",
        GmmError::VariationalPriorNotPositive { .. } => "--mean-precision-prior",
        GmmError::VariationalDof { .. } => "--degrees-of-freedom-prior",
        GmmError::PriorNotFinite {
            field: "mean_prior", ..
        }
        | GmmError::PriorMeanLength {
            field: "mean_prior", ..
        } => "--mean-prior",
        GmmError::PriorNotFinite {
            field: "covariance_prior",
            ..
        }
        | GmmError::PriorScaleShape {
            field: "covariance_prior",
            ..
        }
        | GmmError::PriorScaleNotPositiveDefinite {
            field: "covariance_prior",
            ..
        } => "--covariance-prior",
        GmmError::PriorNotFinite { field: "mean", .. } | GmmError::PriorMeanLength { .. } => "--prior-mean",
        GmmError::PriorNotFinite { .. }
        | GmmError::PriorScaleShape { .. }
        | GmmError::PriorScaleNotPositiveDefinite { .. } => "--prior-scale",
        _ => return None,
    })
}

/// The option a starting responsibilities' or labels' error comes from.
fn start_option(e: &GmmError) -> Option<&'static str> {
    Some(match e {
        GmmError::InitResponsibilitiesShape { .. }
        | GmmError::InitResponsibilitiesNegative { .. }
        | GmmError::InitResponsibilitiesRowSum { .. }
        | GmmError::InitResponsibilitiesRows {
            what: "responsibilities",
            ..
        } => "--init-resp",
        GmmError::InitLabelOutOfRange { .. } | GmmError::InitResponsibilitiesRows { .. } => "--init-labels",
        _ => return None,
    })
}

/// Builds the parameters, naming the command-line option (or init-file field) a rejected value came from.
pub(super) fn build(b: GmmParamsBuilder, init_file: Option<&Path>) -> Result<GmmParams, CliError> {
    b.build().map_err(|e| {
        if let Some(option) = prior_option(&e).or_else(|| start_option(&e)) {
            return CliError::Option { option, source: e };
        }
        if let GmmError::FrozenWithoutInitial { parameter, .. } = e {
            let field = match parameter {
                Parameter::Weights => "weights",
                Parameter::Means => "means",
                Parameter::Covariances => "precisions",
            };
            return CliError::FrozenWithoutInitial {
                parameter,
                field,
                init_file: init_file.map(Path::to_path_buf),
                source: e,
            };
        }
        let option = match e {
            GmmError::FrozenWithPrior => "--freeze",
            GmmError::InvalidOnline { field, .. } => match field {
                "batch_size" => "--batch-size",
                "decay" => "--decay",
                "offset" => "--offset",
                _ => "--passes",
            },
            GmmError::OnlineWithPrior => "--online",
            // Initial weights, means or precisions can only have come from the init file.
            GmmError::VariationalInitialParameters { .. } => "--init-file",
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
pub(super) fn apply_init(
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

/// A fit error, naming the data file (K above N gets its own message), or the prior option whose
/// value does not fit the data (the mean's length, ν against d, the scale's shape), or the start
/// option whose file does not.
pub(super) fn fit_error(path: &Path, e: GmmError) -> CliError {
    if let Some(option) = prior_option(&e).or_else(|| start_option(&e)) {
        return CliError::Option { option, source: e };
    }
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

/// K must not exceed the number of samples.
pub(super) fn check_k(data: &Data, k: usize) -> Result<(), CliError> {
    if k > data.n_samples() {
        return Err(CliError::KAboveN {
            path: data.path.clone(),
            k,
            n: data.n_samples(),
        });
    }
    Ok(())
}

/// The model and the data must have the same number of features.
pub(super) fn check_model_features(model_path: &Path, model: &GmmModel, data: &Data) -> Result<(), CliError> {
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

/// Checks the options and the start file (before a large file loads), reads the data, checks K
/// and the start's rows against it and adds the init file: the builder that fit and compare start
/// from.
pub(super) fn prepare_builder(
    spec: &ModelSpec,
    adjust: impl Fn(GmmParamsBuilder) -> GmmParamsBuilder,
) -> Result<(Data, GmmParamsBuilder), CliError> {
    let b = builder(spec.k, spec.covariance, &spec.fit)?.missing(spec.data.missing);
    let (b, start) = checked_start(spec, adjust(b))?;
    let data = read(&spec.data)?;
    check_k(&data, spec.k)?;
    if let Some(s) = &start {
        s.check_rows(&data)?;
    }
    let b = with_init(spec, b, data.n_features)?;
    Ok((data, b))
}

/// Adds the init file, if any, for `d` features, then the parameters --freeze keeps at its values
/// (after the file, so that the builder's check of a frozen parameter's initial value sees them).
pub(super) fn with_init(spec: &ModelSpec, b: GmmParamsBuilder, d: usize) -> Result<GmmParamsBuilder, CliError> {
    let b = match &spec.init_file {
        Some(p) => apply_init(p, b, spec.k, d, spec.covariance)?,
        None => b,
    };
    Ok(if spec.freeze.is_empty() {
        b
    } else {
        b.freeze(&spec.freeze)
    })
}

/// Checks the options, then reads the start file, if any, and checks its values: the builder with
/// the start, and the start (whose rows the data decides).
fn checked_start(spec: &ModelSpec, b: GmmParamsBuilder) -> Result<(GmmParamsBuilder, Option<Start>), CliError> {
    build(b.clone(), None)?;
    // Freezing beside a prior, or without an init file to give the values, fails whatever the
    // files hold: say so before reading them.
    if !spec.freeze.is_empty() {
        match build(b.clone().freeze(&spec.freeze), None) {
            Err(e @ CliError::FrozenWithoutInitial { .. }) if spec.init_file.is_none() => return Err(e),
            Err(
                e @ CliError::Option {
                    source: GmmError::FrozenWithPrior,
                    ..
                },
            ) => return Err(e),
            _ => {}
        }
    }
    let start = Start::read(spec)?;
    let b = match &start {
        Some(s) => {
            let b = s.apply(b);
            build(b.clone(), None)?;
            b
        }
        None => b,
    };
    Ok((b, start))
}

/// The parameters of `spec` for `data` (one rank's part of a file): the options, the start file,
/// then the init file; what a distributed fit builds on each rank.
#[cfg(feature = "mpi")]
pub(super) fn fit_params(
    spec: &ModelSpec,
    data: &Data,
    adjust: impl Fn(GmmParamsBuilder) -> GmmParamsBuilder,
) -> Result<GmmParams, CliError> {
    let b = builder(spec.k, spec.covariance, &spec.fit)?.missing(spec.data.missing);
    let (b, start) = checked_start(spec, adjust(b))?;
    if let Some(s) = &start {
        s.check_rows(data)?;
    }
    let b = with_init(spec, b, data.n_features)?;
    build(b, spec.init_file.as_deref())
}

/// As [`prepare_builder`], then builds the parameters.
pub(super) fn prepare(
    spec: &ModelSpec,
    adjust: impl Fn(GmmParamsBuilder) -> GmmParamsBuilder,
) -> Result<(Data, GmmParams), CliError> {
    let (data, b) = prepare_builder(spec, adjust)?;
    let params = build(b, spec.init_file.as_deref())?;
    Ok((data, params))
}

/// The context `--backend gpu` asks for: the best adapter, a software one too.
pub(super) fn gpu_context() -> Result<GpuContext, CliError> {
    GpuContext::new().map_err(|source| CliError::Gpu { source })
}

/// Checks the output path, if any (its kind and folder, before a large file loads), then reads the
/// model and the data: what predict and score start from.
pub(super) fn model_data_for(
    model: &Path,
    data: &DataArgs,
    output: Option<&Path>,
) -> Result<(GmmModel, Data), CliError> {
    if let Some(out) = output {
        io::out_kind(out)?;
        io::out_dir(out)?;
    }
    model_and_data(model, data)
}

/// A model and the data to apply it to, checked against each other.
pub(super) fn model_and_data(model: &Path, data: &DataArgs) -> Result<(GmmModel, Data), CliError> {
    let m = io::read_model(model)?;
    let d = read(data)?;
    check_model_features(model, &m, &d)?;
    Ok((m, d))
}

/// An error of applying a model to the data at `path` (no adapter is a GPU error).
pub(super) fn apply_error(path: &Path) -> impl Fn(GmmError) -> CliError + '_ {
    move |e| match e {
        GmmError::NoAdapter { .. } => CliError::Gpu { source: e },
        source => CliError::Data {
            path: path.to_path_buf(),
            source,
        },
    }
}
