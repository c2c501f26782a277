//! The command-line tool's one error type: one variant per cause, each naming the file and the row,
//! column or field, and saying what to do. `main` prints it as one line, `gmm: <message>`, and exits 2.

use std::path::PathBuf;

use gmm_gpu::GmmError;

use crate::plot::PlotError;

/// Everything that can stop a `gmm` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    // ---- files ---------------------------------------------------------------------------
    /// A file could not be opened (missing, permissions, ...).
    #[error("cannot open {}: {source}; check the path and its permissions", .path.display())]
    Open { path: PathBuf, source: std::io::Error },
    /// A directory was given where a file is needed.
    #[error("{} is a directory; give the path of a file", .path.display())]
    IsDirectory { path: PathBuf },
    /// Reading a file failed part-way.
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// The data file holds no samples.
    #[error("{} holds no samples; give a file with at least one row of data", .path.display())]
    EmptyData { path: PathBuf },

    // ---- .npy and raw float32 (memory-mapped) --------------------------------------------
    /// The file cannot be mapped as samples; the library's error names the file and the cause.
    #[error(transparent)]
    File(GmmError),

    /// CSV under mpirun: each rank needs to map its own rows.
    #[error(
        "{} is CSV, which a distributed fit cannot split; under mpirun give a .npy or raw float32 file (numpy.save it once)", .path.display()
    )]
    CsvUnderMpi { path: PathBuf },
    /// Under mpirun, outputs other than .npy files (CSV, stdout) would interleave between ranks.
    #[cfg(feature = "mpi")]
    #[error(
        "under mpirun every rank writes its rows in place, which needs a .npy output, not {}; pass -o out.npy", .path.display()
    )]
    NpyOutUnderMpi { path: PathBuf },
    /// Another rank of a distributed fit failed and said why; this rank stops without repeating it.
    #[cfg(feature = "mpi")]
    #[error("another rank failed (its message says why)")]
    OtherRank,

    // ---- .csv ----------------------------------------------------------------------------
    /// The CSV reader failed (bad UTF-8, I/O).
    #[error("cannot parse {} as CSV: {source}", .path.display())]
    Csv { path: PathBuf, source: csv::Error },
    /// A CSV row has a different number of fields from the first row.
    #[error(
        "{} line {line} has {found} fields but the first row has {expected}; every row needs the same number of columns", .path.display()
    )]
    CsvRagged {
        path: PathBuf,
        line: u64,
        expected: usize,
        found: usize,
    },
    /// A CSV field is empty or not a number.
    #[error(
        "{} line {line}, column {column}: '{value}' is not a number; fix the value, choose numeric columns with --columns, or read empty, NA and NaN fields as missing values with --missing marginalise", .path.display()
    )]
    CsvNotNumber {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    /// A CSV field is NaN or infinite.
    #[error(
        "{} line {line}, column {column}: '{value}' is not finite; remove or impute NaN and infinite values before fitting (or marginalise NaN with --missing marginalise)", .path.display()
    )]
    CsvNotFinite {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    /// A --columns name matches no header field.
    #[error("{}: --columns names '{name}', which is not a column; the columns are: {available}", .path.display())]
    ColumnNotFound {
        path: PathBuf,
        name: String,
        available: String,
    },
    /// A --columns index is past the last column.
    #[error(
        "{}: --columns index {index} is out of range; the file has {n_columns} columns (indices 0 to {})", .path.display(), .n_columns.saturating_sub(1)
    )]
    ColumnIndex {
        path: PathBuf,
        index: usize,
        n_columns: usize,
    },
    /// --columns was given for a file that is not CSV.
    #[error("{}: --columns selects CSV columns, but this file is read as {format}; drop --columns", .path.display())]
    ColumnsNotCsv { path: PathBuf, format: &'static str },

    // ---- raw -----------------------------------------------------------------------------
    /// A raw f32 file was given without --features.
    #[error(
        "{} is read as raw little-endian float32, which needs --features D (the number of columns); or give a .npy or .csv file", .path.display()
    )]
    RawNeedsFeatures { path: PathBuf },
    /// --features disagrees with the file's own column count.
    #[error("{}: --features is {given} but the file has {found} columns; drop --features or fix it", .path.display())]
    FeaturesMismatch { path: PathBuf, given: usize, found: usize },
    /// --features 0.
    #[error("--features is 0; a sample needs at least one feature")]
    ZeroFeatures,
    /// A NaN or infinity in binary data.
    #[error(
        "{} has a non-finite value ({value}) at sample {row}, feature {column} (0-based); remove or impute NaN and infinite values", .path.display()
    )]
    NonFinite {
        path: PathBuf,
        row: usize,
        column: usize,
        value: f64,
    },
    /// Another problem the library found with the data.
    #[error("{}: {source}", .path.display())]
    Data { path: PathBuf, source: GmmError },

    // ---- options -------------------------------------------------------------------------
    /// An option value the library rejected (K of 0, negative tol, ...).
    #[error("{option}: {source}")]
    Option { option: &'static str, source: GmmError },
    /// `--freeze` of a parameter the init file (or its absence) gives no initial value for.
    #[error("--freeze {parameter}: {}", match .init_file {
        Some(path) => format!(
            "{} has no '{field}' field, the initial value frozen {parameter} keep; add it, or freeze only what the file gives",
            path.display()
        ),
        None => format!(
            "frozen {parameter} keep their initial value, which comes from --init-file (its '{field}' field); give one, or drop --freeze"
        ),
    })]
    FrozenWithoutInitial {
        parameter: gmm_gpu::Parameter,
        field: &'static str,
        init_file: Option<PathBuf>,
        source: GmmError,
    },
    /// An online fit (`--online` or a schedule option) beside a MAP prior or a variational fit,
    /// which the library's stepwise EM does not run.
    #[error(
        "{online} and {prior}: {source}; drop one of them (any of --batch-size, --passes, --decay and --offset implies --online)"
    )]
    OnlineWithPrior {
        online: &'static str,
        prior: &'static str,
        source: GmmError,
    },
    /// An online fit started from responsibilities or labels, a row for every sample, which its
    /// first batch (the start of an online fit) does not hold.
    #[error(
        "{online} and {start}: an online fit starts from its first batch, and {start} gives a row for every sample; start it from --init-file (weights, means, precisions) or --init instead"
    )]
    OnlineStart { online: &'static str, start: &'static str },
    /// An online fit's batches are smaller than K, and its first batch initialises K components.
    #[error(
        "--batch-size {batch} is below -k {k}: the first batch initialises the components from its samples; give a batch of at least K samples"
    )]
    BatchBelowK { batch: usize, k: usize },
    /// An option that reading the samples from stdin (DATA `-`) needs, or cannot take.
    #[error("DATA - (raw little-endian float32 from stdin): {problem}")]
    StdinOption { problem: &'static str },
    /// Stdin ended inside a row.
    #[error(
        "stdin ended {bytes} bytes into a row after {rows} whole rows: a row of --features {features} is {row_bytes} bytes of little-endian float32; check --features and the input"
    )]
    StdinPartialRow {
        bytes: usize,
        rows: u64,
        features: usize,
        row_bytes: usize,
    },
    /// Reading stdin failed.
    #[error("cannot read stdin: {source}")]
    StdinRead { source: std::io::Error },
    /// An online fit under mpirun, which the distributed fit does not run yet.
    #[cfg(feature = "mpi")]
    #[error(
        "{online} with --backend gpu: an online fit under mpirun (more than one rank) runs on the CPU; drop --backend gpu, or fit in batch mode"
    )]
    OnlineDistributed { online: &'static str },
    /// `--prior none` beside a `--prior-*` option, which implies a prior.
    #[error(
        "--prior none contradicts {option}, which sets a hyperparameter of the prior; drop one of them (any --prior-* option implies --prior default)"
    )]
    PriorConflict { option: &'static str },
    /// A MAP prior option (`--prior default`, `--prior-*`) beside a variational one, which the
    /// library refuses (a fit takes one or the other).
    #[error(
        "{prior} and {variational}: {source}; drop one of them (any --prior-* option implies --prior default, any of scikit-learn's prior options --bayesian)"
    )]
    PriorAndVariational {
        prior: &'static str,
        variational: &'static str,
        source: GmmError,
    },
    /// `gmm select` with `--bayesian` or a variational prior option.
    #[error(
        "{option}: gmm select ranks by BIC or AIC, which a variational fit does not have (scikit-learn's BayesianGaussianMixture has no bic, and its ELBO drops terms that depend on K); fit the largest K with gmm fit --bayesian dirichlet-process instead: its summary counts the components the data use"
    )]
    SelectVariational { option: &'static str },
    /// --missing marginalise given to a command that cannot use it.
    #[error("--missing marginalise: gmm {command} {why}; {fix}")]
    MissingNotHere {
        command: &'static str,
        why: &'static str,
        fix: &'static str,
    },
    /// K above the number of samples.
    #[error(
        "-k {k} is more than the {n} samples in {}; use at most as many components as samples", .path.display()
    )]
    KAboveN { path: PathBuf, k: usize, n: usize },
    /// A feature index (--x, --y) past the data's features.
    #[error("{option} {index} is out of range: {} has {n_features} features (0-based indices 0 to {})", .path.display(), .n_features.saturating_sub(1))]
    FeatureIndex {
        option: &'static str,
        index: usize,
        path: PathBuf,
        n_features: usize,
    },
    /// An output path whose extension gmm cannot write.
    #[error("{}: unknown output format; use a file name ending in {expected}", .path.display())]
    OutputFormat { path: PathBuf, expected: &'static str },
    /// An output folder that does not exist.
    #[error("cannot write {}: the folder {} does not exist; create it first", .path.display(), .dir.display())]
    OutputFolder { path: PathBuf, dir: PathBuf },

    // ---- starting responsibilities and labels -------------------------------------------
    /// An --init-resp or --init-labels file that cannot be opened or read (for --init-resp, as an
    /// array of numbers); the reader's error names the file.
    #[error("{option}: {source}")]
    StartFile {
        option: &'static str,
        source: Box<CliError>,
    },
    /// An --init-resp array with another number of columns than components.
    #[error("--init-resp {} has {columns} columns but -k is {k}; give one column per component", .path.display())]
    InitRespColumns { path: PathBuf, columns: usize, k: usize },
    /// An --init-labels file that is not a 1-D .npy array of non-negative integers.
    #[error("--init-labels {}: {problem}", .path.display())]
    InitLabelsFile { path: PathBuf, problem: LabelsProblem },
    /// A --sample-weight file of more than one column.
    #[error(
        "--sample-weight {} has {columns} columns; give one weight per sample (a 1-D .npy array, or one column)", .path.display()
    )]
    SampleWeightColumns { path: PathBuf, columns: usize },
    /// Starting responsibilities, labels or sample weights for another number of samples than the
    /// data holds.
    #[error(
        "{option} {} has {got} rows but {} has {expected} samples; give one row per sample", .path.display(), .data.display()
    )]
    InitRows {
        option: &'static str,
        path: PathBuf,
        got: usize,
        data: PathBuf,
        expected: usize,
    },

    // ---- JSON ----------------------------------------------------------------------------
    /// A model file that is not a valid model.
    #[error("{} is not a valid gmm model file: {source}; write it with `gmm fit -o`", .path.display())]
    ModelJson { path: PathBuf, source: GmmError },
    /// An init file that is not valid JSON of the expected form.
    #[error(
        "{} is not a valid init file: {source}; it is a JSON object with any of 'weights', 'means', 'precisions'", .path.display()
    )]
    InitJson { path: PathBuf, source: serde_json::Error },
    /// An init file field with the wrong shape.
    #[error(
        "{} field '{field}' has shape {found} but -k {k} with {d} features and '{covariance}' covariance needs {expected}", .path.display()
    )]
    InitShape {
        path: PathBuf,
        field: &'static str,
        k: usize,
        d: usize,
        covariance: gmm_gpu::CovarianceType,
        expected: String,
        found: String,
    },
    /// An init file field with an invalid value (weights not summing to 1, precision not positive definite, ...).
    #[error("{} field '{field}': {source}", .path.display())]
    InitValue {
        path: PathBuf,
        field: &'static str,
        source: GmmError,
    },
    /// The model's features differ from the data's.
    #[error(
        "the model {} has {model_features} features but {} has {data_features}; use data with the model's columns (see --columns)", .model.display(), .data.display()
    )]
    ModelFeatures {
        model: PathBuf,
        data: PathBuf,
        model_features: usize,
        data_features: usize,
    },

    /// A `gmm bench --case` that names no standard case.
    #[error("--case {name}: not a standard case; use A, B, C, D, E or F (or leave --case out for all)")]
    BenchCase { name: String },
    /// A `gmm bench --scale` that is not a positive number.
    #[error("--scale {value}: must be a positive number; 0.01 runs every case at 1% of its samples")]
    BenchScale { value: f64 },

    // ---- running -------------------------------------------------------------------------
    /// The fit failed.
    #[error("fitting {}: {source}", .path.display())]
    Fit { path: PathBuf, source: GmmError },
    /// A GPU was needed but is not usable.
    #[error("{source}")]
    Gpu { source: GmmError },
    /// Every candidate of `gmm select` failed.
    #[error("no candidate model could be fitted to {}; the last failure was: {last}", .path.display())]
    NoCandidate { path: PathBuf, last: GmmError },
    /// Some `gmm bench` cases failed (each one's error was printed in its place).
    #[error("{} of the bench cases failed: {}", .failed.len(), .failed.join("; "))]
    BenchFailed { failed: Vec<String> },
    /// Writing an output file failed.
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// Writing to stdout failed.
    #[error("cannot write to standard output: {source}")]
    Stdout { source: std::io::Error },
    /// The plot could not be drawn.
    #[error("cannot draw {}: {source}", .path.display())]
    Plot { path: PathBuf, source: PlotError },
}

/// Why an --init-labels file cannot be read as labels.
#[derive(Debug, thiserror::Error)]
pub enum LabelsProblem {
    /// Not a .npy file, or a header that does not parse.
    #[error("is not a valid .npy file ({reason}); write it with numpy.save")]
    Header { reason: &'static str },
    /// A dtype that is not a little-endian integer.
    #[error(
        "has dtype '{descr}', but labels are little-endian integers (int8 to int64, uint8 to uint64); convert them with labels.astype(numpy.int64)"
    )]
    Dtype { descr: String },
    /// Not a 1-D array (or N x 1).
    #[error("holds an array of shape {shape:?}; labels are a 1-D array of one integer per sample")]
    Shape { shape: Vec<usize> },
    /// Another number of data bytes than the header's shape needs.
    #[error("holds {actual} bytes of data where its header's shape needs {expected}; rewrite the file")]
    Size { expected: usize, actual: usize },
    /// A negative label.
    #[error("the label of sample {row} is {value}; labels are component indices 0 to K - 1, never negative")]
    Negative { row: usize, value: i64 },
}
