//! The command line's grammar: the subcommands and their options, as clap parses them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gmm_gpu::{BackendKind, CovarianceType, InitMethod, Missing, Parameter};

use crate::io::{DataFormat, DataSpec};

/// Gaussian mixture models fitted by EM, on any wgpu GPU or on the float64 CPU path.
#[derive(Parser, Debug)]
#[command(name = "gmm", version, about, propagate_version = true)]
pub struct Cli {
    /// No progress and no summary on stderr (errors are still reported).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log every EM iteration and the library's debug messages on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fit a mixture to DATA and write the model as JSON (scikit-learn's attribute names).
    Fit(FitArgs),
    /// Label the samples of DATA with a model (or give responsibilities with --proba).
    Predict(PredictArgs),
    /// Print the mean log-likelihood of DATA under a model (or every sample's with --per-sample).
    Score(ScoreArgs),
    /// Draw samples from a model.
    Sample(SampleArgs),
    /// Fill the missing values (NaN, or empty or NA in CSV) of DATA with their conditional
    /// expectations under a model.
    Impute(ImputeArgs),
    /// Fit on the GPU and on the CPU from the same start and compare the results.
    Compare(CompareArgs),
    /// Fit every K and covariance type asked for and pick the best by BIC or AIC.
    Select(SelectArgs),
    /// Plot a model over its data (PNG or SVG).
    Plot(PlotArgs),
    /// Fit the heights example (two Gaussians) and print true and fitted parameters side by side.
    Demo(DemoArgs),
    /// List the GPU adapters wgpu finds, with their limits, and on each the kernels gmm would build
    /// (f64, subgroup width, fma) and the arithmetic each --precision starts in.
    Info,
    /// Time each GPU kernel of an EM iteration on the standard cases: ms, GB/s, GFLOP/s and the
    /// percentage of this adapter's own peaks (a copy and an FMA microkernel), and the whole
    /// iteration with its readback and host M-step.
    Bench(BenchArgs),
}

/// The options every data-reading command shares.
#[derive(Args, Debug)]
pub struct DataArgs {
    /// The samples: .npy (float32/float64, 2-D, C order), .csv, or raw little-endian float32; for
    /// `gmm fit --online`, - reads raw float32 rows of --features D from stdin, a batch at a time.
    #[arg(value_name = "DATA")]
    pub data: PathBuf,
    /// CSV columns to use, by header name or 0-based index, comma-separated (default: all).
    #[arg(long, value_name = "COLS")]
    pub columns: Option<String>,
    /// Number of features (required for raw float32; checked against .npy and .csv).
    #[arg(long, value_name = "D")]
    pub features: Option<usize>,
    /// How to read DATA (auto: by extension; .npy, .csv, anything else raw float32).
    #[arg(long, value_enum, default_value_t = DataFormat::Auto)]
    pub format: DataFormat,
    /// What a missing value (NaN; in CSV also an empty field or NA) does: reject (an error naming
    /// its row and column) or marginalise (fits and predictions use each row's observed
    /// features; fits run on the CPU).
    #[arg(long, default_value = "reject", value_name = "HOW")]
    pub missing: Missing,
}

impl DataArgs {
    /// What `io` reads: the file and how.
    pub fn spec(&self) -> DataSpec<'_> {
        DataSpec {
            path: &self.data,
            columns: self.columns.as_deref(),
            features: self.features,
            format: self.format,
            missing: self.missing == Missing::Marginalise,
        }
    }
}

/// The fit options shared by fit, compare and select.
#[derive(Args, Debug, Clone)]
pub struct FitOptions {
    /// Initialisation: kmeans, k-means++, random or random-from-data.
    #[arg(long, default_value = "kmeans", value_name = "METHOD")]
    pub init: InitMethod,
    /// Number of initialisations; the best lower bound wins.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub n_init: usize,
    /// Maximum EM iterations per initialisation.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_iter: usize,
    /// Convergence threshold on the change of the lower bound (the mean log-likelihood, the mean
    /// log-posterior with a prior, or with --bayesian the ELBO, a total over the samples).
    #[arg(long, default_value_t = 1e-3, value_name = "X", allow_negative_numbers = true)]
    pub tol: f64,
    /// Added to the diagonal of every covariance [default: 1e-6, or 0 with a prior, which is the
    /// regularisation; a value given here is added with a prior too].
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub reg_covar: Option<f64>,
    #[command(flatten)]
    pub prior: PriorOptions,
    #[command(flatten)]
    pub variational: VariationalOptions,
    /// Random seed of the initialisation.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Where EM runs: auto (the GPU if an adapter exists, else the CPU), gpu or cpu.
    #[arg(long, default_value = "auto", value_name = "BACKEND")]
    pub backend: BackendKind,
    /// Samples per GPU chunk (default: as large as the device allows).
    #[arg(long, value_name = "N")]
    pub chunk_size: Option<usize>,
    /// Device memory the GPU fit may hold, in bytes (suffixes k, M, G: powers of 1000). Data that
    /// does not fit is streamed to the GPU chunk by chunk each iteration (default: no cap; the
    /// data is resident).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub device_memory: Option<u64>,
    /// The GPU's arithmetic: fast (plain f32 kernels), exact (native f64 where the device has it
    /// and runs it fast, else two-float) or auto (fast, with a conditioning guard that switches to
    /// exact where f32 would not hold). It only
    /// matters for GPU fits: the CPU path is float64 whatever it says.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto, value_name = "PRECISION")]
    pub precision: PrecisionArg,
}

/// The conjugate prior of a MAP fit (R mclust's `priorControl()`), shared by fit, compare and
/// select through [`FitOptions`].
#[derive(Args, Debug, Clone, Default)]
pub struct PriorOptions {
    /// Fit the maximum a posteriori estimate under R mclust's conjugate prior: default (mclust's
    /// defaultPrior: every hyperparameter from the data) or none (maximum likelihood) [default:
    /// none]. Any --prior-* option implies --prior default. With a prior the lower bound is the
    /// mean log-posterior; the score, BIC and AIC stay the log-likelihood.
    #[arg(long, value_enum, value_name = "PRIOR")]
    pub prior: Option<PriorArg>,
    /// The prior's shrinkage κ > 0 of the means toward the prior mean [default: 0.01].
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    pub prior_shrinkage: Option<f64>,
    /// The prior mean, one value per feature, comma-separated [default: the column means].
    #[arg(long, value_name = "M1,M2,...", allow_hyphen_values = true, value_parser = parse_floats)]
    pub prior_mean: Option<Floats>,
    /// The prior's degrees of freedom ν > d - 1 [default: d + 2].
    #[arg(long, value_name = "NU", allow_negative_numbers = true)]
    pub prior_dof: Option<f64>,
    /// The prior's scale: one number for diag and spherical covariances, the d x d matrix
    /// row-major and comma-separated for full and tied [default: var(X)/K^(2/d)].
    #[arg(long, value_name = "S", allow_hyphen_values = true, value_parser = parse_floats)]
    pub prior_scale: Option<Floats>,
    /// A Dirichlet prior of concentration α >= 1 on the weights [default: none, as in mclust].
    #[arg(long, value_name = "ALPHA", allow_negative_numbers = true)]
    pub prior_weights: Option<f64>,
}

/// Variational Bayesian estimation (scikit-learn's `BayesianGaussianMixture`, with its priors under
/// its names), shared by fit, compare and select through [`FitOptions`]; select refuses it.
#[derive(Args, Debug, Clone, Default)]
pub struct VariationalOptions {
    /// Fit scikit-learn's BayesianGaussianMixture by variational inference instead of maximum
    /// likelihood, with this prior on the weights: dirichlet-process (stick-breaking: K is an upper
    /// bound, and components the data do not need are emptied) or dirichlet-distribution. Any of
    /// the five prior options below implies --bayesian dirichlet-process, scikit-learn's default.
    /// The lower bound is then the ELBO (a total over the samples). Not with --prior or
    /// --init-file; start it from --init-resp or --init-labels instead. Not in select.
    #[arg(long, value_enum, value_name = "WEIGHT_PRIOR")]
    pub bayesian: Option<BayesianArg>,
    /// The weights' concentration α0 > 0 [default: 1/K]; implies --bayesian.
    #[arg(long, value_name = "ALPHA", allow_negative_numbers = true)]
    pub weight_concentration_prior: Option<f64>,
    /// The means' precision β0 > 0 [default: 1]; implies --bayesian.
    #[arg(long, value_name = "BETA", allow_negative_numbers = true)]
    pub mean_precision_prior: Option<f64>,
    /// The means' prior m0, one value per feature, comma-separated [default: the column means];
    /// implies --bayesian.
    #[arg(long, value_name = "M1,M2,...", allow_hyphen_values = true, value_parser = parse_floats)]
    pub mean_prior: Option<Floats>,
    /// The Wishart's degrees of freedom ν0 > d - 1 [default: d]; implies --bayesian.
    #[arg(long, value_name = "NU", allow_negative_numbers = true)]
    pub degrees_of_freedom_prior: Option<f64>,
    /// The covariance prior Ψ0: the d x d matrix row-major and comma-separated for full and tied,
    /// d values for diag, one for spherical [default: the data's covariance, variances, or their
    /// mean]; implies --bayesian.
    #[arg(long, value_name = "PSI", allow_hyphen_values = true, value_parser = parse_floats)]
    pub covariance_prior: Option<Floats>,
}

/// `--bayesian`: the prior on the weights (gmm_gpu::WeightPrior on the command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BayesianArg {
    /// A Dirichlet process by stick-breaking (scikit-learn's default).
    #[value(name = "dirichlet-process", alias = "dirichlet_process")]
    DirichletProcess,
    /// A Dirichlet distribution on the K weights.
    #[value(name = "dirichlet-distribution", alias = "dirichlet_distribution")]
    DirichletDistribution,
}

impl From<BayesianArg> for gmm_gpu::WeightPrior {
    fn from(b: BayesianArg) -> Self {
        match b {
            BayesianArg::DirichletProcess => gmm_gpu::WeightPrior::DirichletProcess,
            BayesianArg::DirichletDistribution => gmm_gpu::WeightPrior::DirichletDistribution,
        }
    }
}

/// `--prior`: maximum likelihood, or mclust's default conjugate prior.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PriorArg {
    /// Maximum likelihood: no prior.
    #[value(name = "none")]
    Off,
    /// mclust's defaultPrior, every hyperparameter not given by a --prior-* option from the data.
    #[value(name = "default")]
    Default,
}

/// Comma-separated numbers (`--prior-mean`, `--prior-scale`); NaN and infinities parse, for the
/// library to reject with its own message.
#[derive(Clone, Debug, PartialEq)]
pub struct Floats(pub Vec<f64>);

fn parse_floats(s: &str) -> Result<Floats, String> {
    s.split(',')
        .map(|t| {
            t.trim().parse::<f64>().map_err(|_| {
                format!(
                    "'{}' is not a number; give comma-separated numbers (e.g. 1,0.5,-2)",
                    t.trim()
                )
            })
        })
        .collect::<Result<_, _>>()
        .map(Floats)
}

/// A byte count with an optional k, M or G suffix (powers of 1000).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1_000),
        Some((i, 'M')) => (&t[..i], 1_000_000),
        Some((i, 'G')) => (&t[..i], 1_000_000_000),
        _ => (t, 1),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|v| v.checked_mul(unit))
        .ok_or_else(|| format!("'{s}' is not a byte count; give a whole number, optionally with k, M or G (e.g. 512M)"))
}

/// The data and the mixture that fit and compare both take.
#[derive(Args, Debug)]
pub struct ModelSpec {
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of components K.
    #[arg(short = 'k', long = "n-components", value_name = "K")]
    pub k: usize,
    /// Covariance type: full, tied, diag or spherical.
    #[arg(long, default_value = "full", value_name = "TYPE")]
    pub covariance: CovarianceType,
    /// Initial parameters: a JSON object with any of weights (K), means (K x d) and precisions
    /// (scikit-learn's precisions_init shape for the covariance type); the rest comes from --init.
    #[arg(long, value_name = "INIT.json")]
    pub init_file: Option<PathBuf>,
    /// Keep these parameters at their values in --init-file and fit the rest: any of weights,
    /// means and covariances (or precisions), comma-separated. Maximum likelihood only (not with
    /// --prior or --bayesian); each needs its field (weights, means, precisions) in --init-file.
    #[arg(long, value_name = "PARAMS", value_delimiter = ',')]
    pub freeze: Vec<Parameter>,
    /// Start from these responsibilities: an N x K array, .npy (float32 or float64) or .csv, each
    /// row >= 0 summing to 1. The fit's first step is an M-step from them (scikit-learn's
    /// _initialize(X, resp)); instead of --init.
    #[arg(long, value_name = "RESP.npy", conflicts_with_all = ["init", "init_labels"])]
    pub init_resp: Option<PathBuf>,
    /// Start from a label per sample: a .npy array of N integers in 0..K (int8 to int64, uint8 to
    /// uint64), each sample's responsibility 1 for its label's component; instead of --init.
    #[arg(long, value_name = "LABELS.npy", conflicts_with = "init")]
    pub init_labels: Option<PathBuf>,
    #[command(flatten)]
    pub fit: FitOptions,
}

/// `gmm fit --online`: stepwise (online) EM over mini-batches (gmm_gpu::Online).
#[derive(Args, Debug, Clone, Default)]
pub struct OnlineOptions {
    /// Fit by stepwise (online) EM: one E-step and M-step per mini-batch, the batch's statistics
    /// blended into running ones with step (t + t0)^(-decay), for --passes passes over the data.
    /// Each of the four options below implies it. --max-iter, --tol and --n-init do not apply
    /// (the schedule decides the steps); not with --prior, --bayesian, --init-resp or
    /// --init-labels. Under mpirun each rank steps through its own rows, a step's batch being
    /// every rank's batch together (on the CPU).
    #[arg(long)]
    pub online: bool,
    /// Samples per mini-batch (>= 1; per rank under mpirun) [default: 65536]; implies --online.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Passes over the data (>= 1) [default: 1]; implies --online.
    #[arg(long, value_name = "P")]
    pub passes: Option<usize>,
    /// The step's decay α in (0.5, 1] [default: 0.7]; implies --online.
    #[arg(long, value_name = "ALPHA", allow_negative_numbers = true)]
    pub decay: Option<f64>,
    /// The step's offset t0 >= 0 (larger damps the early steps) [default: 2]; implies --online.
    #[arg(long, value_name = "T0", allow_negative_numbers = true)]
    pub offset: Option<f64>,
}

impl OnlineOptions {
    /// The option that asks for an online fit (`--online`, else the first schedule option given).
    pub fn asked(&self) -> Option<&'static str> {
        [
            ("--online", self.online),
            ("--batch-size", self.batch_size.is_some()),
            ("--passes", self.passes.is_some()),
            ("--decay", self.decay.is_some()),
            ("--offset", self.offset.is_some()),
        ]
        .into_iter()
        .find_map(|(option, set)| set.then_some(option))
    }

    /// The schedule the options ask for, if any (the library's defaults for the options not given).
    pub fn schedule(&self) -> Option<gmm_gpu::Online> {
        self.asked()?;
        let mut o = gmm_gpu::Online::default();
        if let Some(n) = self.batch_size {
            o = o.batch_size(n);
        }
        if let Some(p) = self.passes {
            o = o.passes(p);
        }
        if let Some(a) = self.decay {
            o = o.decay(a);
        }
        if let Some(t0) = self.offset {
            o = o.offset(t0);
        }
        Some(o)
    }
}

#[derive(Args, Debug)]
pub struct FitArgs {
    #[command(flatten)]
    pub spec: ModelSpec,
    #[command(flatten)]
    pub online: OnlineOptions,
    /// One weight per sample (a 1-D .npy array of float32 or float64, or a one-column .csv), each
    /// finite and >= 0: the fit maximises the weighted likelihood, a weight of 2 counting a sample
    /// twice. Under mpirun each rank reads its own rows' weights (.npy only).
    #[arg(long, value_name = "WEIGHTS")]
    pub sample_weight: Option<PathBuf>,
    /// Write the fitted model here (JSON).
    #[arg(short, long, value_name = "MODEL.json")]
    pub output: Option<PathBuf>,
}

/// Backends for commands that use a fitted model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ApplyBackend {
    /// The float64 CPU path.
    Cpu,
    /// The GPU (float32 on the device).
    Gpu,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A model written by `gmm fit -o`.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Write the responsibilities (N x K) instead of the labels.
    #[arg(long)]
    pub proba: bool,
    /// Write to this file (.csv or .npy) instead of stdout (CSV).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Where to compute.
    #[arg(long, value_enum, default_value_t = ApplyBackend::Cpu)]
    pub backend: ApplyBackend,
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// A model written by `gmm fit -o`.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Write every sample's log-likelihood (to -o, else CSV on stdout).
    #[arg(long)]
    pub per_sample: bool,
    /// Write the per-sample log-likelihoods here (.csv or .npy); implies --per-sample.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Where to compute.
    #[arg(long, value_enum, default_value_t = ApplyBackend::Cpu)]
    pub backend: ApplyBackend,
}

#[derive(Args, Debug)]
pub struct ImputeArgs {
    /// A model written by `gmm fit -o`.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// The samples, with NaN (or, in CSV, an empty field or NA) where a value is missing (read as
    /// with --missing marginalise).
    #[arg(value_name = "DATA")]
    pub data: PathBuf,
    /// CSV columns to use, by header name or 0-based index, comma-separated (default: all).
    #[arg(long, value_name = "COLS")]
    pub columns: Option<String>,
    /// Number of features (required for raw float32; checked against .npy and .csv).
    #[arg(long, value_name = "D")]
    pub features: Option<usize>,
    /// How to read DATA (auto: by extension; .npy, .csv, anything else raw float32).
    #[arg(long, value_enum, default_value_t = DataFormat::Auto)]
    pub format: DataFormat,
    /// Write the completed samples here (.csv or .npy) instead of stdout (CSV).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SampleArgs {
    /// A model written by `gmm fit -o`.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Number of samples.
    #[arg(short, value_name = "N")]
    pub n: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub seed: u64,
    /// Write the samples here (.csv or .npy).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Also write each sample's component here (.csv or .npy).
    #[arg(long, value_name = "LABELS")]
    pub labels: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    pub spec: ModelSpec,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The K values to try: `A..B` (inclusive) or a comma list.
#[derive(Clone, Debug)]
pub struct KList(pub Vec<usize>);

fn parse_k_list(s: &str) -> Result<KList, String> {
    let bad = |what: &str| format!("'{s}' {what}; write a range A..B (inclusive, e.g. 1..10) or a list (e.g. 2,3,5)");
    let number = |t: &str| t.trim().parse::<usize>().map_err(|_| bad("is not a K list"));
    let ks = if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (number(a)?, number(b.trim_start_matches('='))?);
        if a > b {
            return Err(bad("is an empty range"));
        }
        (a..=b).collect()
    } else {
        s.split(',').map(number).collect::<Result<Vec<_>, _>>()?
    };
    Ok(KList(ks))
}

/// The covariance types `select` tries.
#[derive(Clone, Debug)]
pub struct CovList(pub Vec<CovarianceType>);

fn parse_covariances(s: &str) -> Result<CovList, String> {
    if s == "all" {
        return Ok(CovList(CovarianceType::ALL.to_vec()));
    }
    s.split(',')
        .map(|t| t.trim().parse::<CovarianceType>().map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()
        .map(CovList)
}

/// The information criterion `select` ranks by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Criterion {
    /// Bayesian information criterion (lower is better).
    Bic,
    /// Akaike information criterion (lower is better).
    Aic,
}

#[derive(Args, Debug)]
pub struct SelectArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The K values: A..B (inclusive) or a comma list.
    #[arg(short = 'k', long = "k", value_name = "KS", value_parser = parse_k_list)]
    pub k: KList,
    /// Covariance types: all, or a comma list of full, tied, diag, spherical.
    #[arg(long, default_value = "full", value_name = "TYPES", value_parser = parse_covariances)]
    pub covariance: CovList,
    /// The criterion that picks the best model.
    #[arg(long, value_enum, default_value_t = Criterion::Bic)]
    pub criterion: Criterion,
    #[command(flatten)]
    pub fit: FitOptions,
    /// Write the best model here (JSON).
    #[arg(short, long, value_name = "BEST.json")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// A model written by `gmm fit -o`.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// The picture: a .png or .svg file.
    #[arg(short, long, value_name = "fit.png|fit.svg")]
    pub output: PathBuf,
    /// The feature on the horizontal axis (0-based).
    #[arg(long, default_value_t = 0, value_name = "I")]
    pub x: usize,
    /// The feature on the vertical axis (0-based; unused for 1-D data).
    #[arg(long, default_value_t = 1, value_name = "J")]
    pub y: usize,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where EM runs: auto (the GPU if an adapter exists, else the CPU), gpu or cpu.
    #[arg(long, default_value = "auto", value_name = "BACKEND")]
    pub backend: BackendKind,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The standard cases to run: A (1M×8, K=8, full and diag), B (1M×32, K=64, full), C (1M×64,
    /// K=64, diag), D (1M×128, K=1024, diag), E (100k×32, K=16, full), F (100k×512, K=16, full).
    /// Repeat or separate with commas; all by default.
    #[arg(long, value_delimiter = ',', value_name = "CASE")]
    pub case: Vec<String>,
    /// Multiplies every case's N: 1 by default on a hardware adapter, 0.01 on a software one
    /// (llvmpipe), so that it finishes.
    #[arg(long, value_name = "S")]
    pub scale: Option<f64>,
    /// Timed iterations per case; each figure is their median.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub iters: usize,
    /// One JSON object per case and covariance type, a line each, instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Time each kernel by the host's clock around its own submission even where the adapter has
    /// timestamp queries (what adapters without them get).
    #[arg(long)]
    pub wall_clock: bool,
    /// Which kernels an EM pass runs: auto (the fused pass where the model is small enough, as
    /// fits do) or split (the log-densities, normalisation and statistics as separate kernels, to
    /// compare with).
    #[arg(long, default_value = "auto", value_name = "KERNELS")]
    pub kernels: KernelsArg,
    /// The arithmetic the timed passes run: fast (plain f32 kernels), exact (native f64 where the
    /// device has it and runs it fast, else two-float) or auto (fast, with a conditioning guard
    /// that switches to exact where f32 would not hold; each case's table and JSON line say what
    /// ran).
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto, value_name = "PRECISION")]
    pub precision: PrecisionArg,
    /// Exact in two-float even where the device has f64 (to compare the two exact kernels).
    #[arg(long)]
    pub no_f64: bool,
}

/// `--kernels`: gmm_gpu::GpuKernels on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelsArg {
    Auto,
    Split,
}

impl From<KernelsArg> for gmm_gpu::GpuKernels {
    fn from(k: KernelsArg) -> Self {
        match k {
            KernelsArg::Auto => gmm_gpu::GpuKernels::Auto,
            KernelsArg::Split => gmm_gpu::GpuKernels::Split,
        }
    }
}

/// `--precision`: gmm_gpu::GpuPrecision on the command line (GPU fits only).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrecisionArg {
    /// Plain f32 kernels: the quickest; parameters agree with the f64 CPU path to about 1e-4 on
    /// well-conditioned data.
    Fast,
    /// Native f64 kernels where the device has f64 and runs it fast, else two-float ones (every
    /// product error-free, about 20 times fast's arithmetic); agrees with the CPU to 1e-10 in f64.
    Exact,
    /// Fast, with a conditioning guard that switches the fit to exact where f32 would not hold.
    Auto,
}

impl From<PrecisionArg> for gmm_gpu::GpuPrecision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::Fast => gmm_gpu::GpuPrecision::Fast,
            PrecisionArg::Exact => gmm_gpu::GpuPrecision::Exact,
            PrecisionArg::Auto => gmm_gpu::GpuPrecision::Auto,
        }
    }
}
