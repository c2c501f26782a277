//! The crate's one error type: a typed variant per cause, each saying what was wrong, where, and how to fix it.

use std::path::PathBuf;

use crate::kinds::CovarianceType;

/// Everything that can go wrong while configuring, fitting or using a mixture.
///
/// Every variant names the offending value, index or field, and its message says what to do.
/// Non-convergence is *not* an error: it is [`crate::GmmModel::converged`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GmmError {
    // ---- parameters -------------------------------------------------------------------
    /// `n_components` was 0.
    #[error("n_components is 0: a mixture needs at least one component; pass n_components >= 1")]
    ZeroComponents,
    /// `tol` was negative or not finite.
    #[error("tol is {value}: it must be a finite number >= 0 (scikit-learn's default is 1e-3)")]
    InvalidTol { value: f64 },
    /// `reg_covar` was negative or not finite.
    #[error("reg_covar is {value}: it must be a finite number >= 0 (scikit-learn's default is 1e-6)")]
    InvalidRegCovar { value: f64 },
    /// `InitMethod::Responsibilities` was chosen without responsibilities or labels.
    #[error(
        "init method 'responsibilities' needs the responsibilities: give them with init_responsibilities (N x K) or init_labels (N)"
    )]
    InitResponsibilitiesMissing,
    /// The initial responsibilities cannot be read as rows of n_components.
    #[error(
        "the initial responsibilities have {got} values, not a whole number of rows of n_components = {n_components}; give an N x K array"
    )]
    InitResponsibilitiesShape { n_components: usize, got: usize },
    /// The initial responsibilities (or labels) cover another number of samples than the data.
    #[error("the initial {what} cover {got} samples but the data has {expected}; give one row per sample")]
    InitResponsibilitiesRows {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// An initial responsibility is negative or not finite.
    #[error(
        "the initial responsibility of sample {row} for component {component} is {value}: every responsibility must be a finite number >= 0"
    )]
    InitResponsibilitiesNegative { row: usize, component: usize, value: f64 },
    /// A row of initial responsibilities does not sum to 1.
    #[error("the initial responsibilities of sample {row} sum to {sum}, not 1: normalise each row")]
    InitResponsibilitiesRowSum { row: usize, sum: f64 },
    /// An initial label names no component.
    #[error(
        "the initial label of sample {row} is {label}, but the components are 0..{n_components}; give labels below n_components"
    )]
    InitLabelOutOfRange {
        row: usize,
        label: usize,
        n_components: usize,
    },
    /// The prior's shrinkage κ is not a finite number > 0.
    #[error("the prior's shrinkage is {value}: it must be a finite number > 0 (mclust's default is 0.01)")]
    PriorShrinkage { value: f64 },
    /// The prior's degrees of freedom ν are not finite, or not above d − 1.
    #[error("the prior's degrees of freedom are {value}: {}", match n_features {
        Some(d) => format!("with {d} features they must be > {} (mclust's default is d + 2 = {})", *d as f64 - 1.0, d + 2),
        None => "they must be a finite number > d - 1 (mclust's default is d + 2)".to_string(),
    })]
    PriorDof { value: f64, n_features: Option<usize> },
    /// The weights' Dirichlet concentration α is not a finite number ≥ 1.
    #[error(
        "the prior's weight concentration is {value}: it must be a finite number >= 1 (1 is no prior on the weights)"
    )]
    PriorWeights { value: f64 },
    /// An entry of the prior's mean or scale is not finite.
    #[error("the prior's {field}[{index}] is {value}: every entry must be finite")]
    PriorNotFinite {
        field: &'static str,
        index: usize,
        value: f64,
    },
    /// The prior's mean (`mean`, or a variational fit's `mean_prior`) has the wrong length.
    #[error("the prior's {field} has {got} values but the data has {expected} features; give one value per feature")]
    PriorMeanLength {
        field: &'static str,
        expected: usize,
        got: usize,
    },
    /// The prior's scale (`scale`, or a variational fit's `covariance_prior`) has the wrong
    /// shape for the covariance type.
    #[error("the prior's {field} has {got} values but {covariance_type} covariances need {expected}")]
    PriorScaleShape {
        field: &'static str,
        covariance_type: CovarianceType,
        expected: usize,
        got: usize,
    },
    /// The prior's scale is not symmetric positive definite (or its values not > 0).
    #[error("the prior's {field} is not positive definite: for {covariance_type} covariances it must be {}", match covariance_type {
        CovarianceType::Full | CovarianceType::Tied => "a symmetric positive-definite d x d matrix",
        _ => "made of numbers > 0",
    })]
    PriorScaleNotPositiveDefinite {
        field: &'static str,
        covariance_type: CovarianceType,
    },
    /// A variational prior that must be positive (`weight_concentration_prior`,
    /// `mean_precision_prior`) is not a finite number > 0.
    #[error("{field} is {value}: it must be a finite number > 0")]
    VariationalPriorNotPositive { field: &'static str, value: f64 },
    /// A variational fit's `degrees_of_freedom_prior` is not finite, or not above d − 1.
    #[error("degrees_of_freedom_prior is {value}: {}", match n_features {
        Some(d) => format!("with {d} features it must be > {} (scikit-learn's default is d = {d})", *d as f64 - 1.0),
        None => "it must be a finite number > d - 1 (scikit-learn's default is d)".to_string(),
    })]
    VariationalDof { value: f64, n_features: Option<usize> },
    /// An online schedule's value is out of range.
    #[error("the online {field} is {value}: it must be {must}")]
    InvalidOnline {
        field: &'static str,
        value: f64,
        must: &'static str,
    },
    /// An online fit was asked of a MAP or variational fit.
    #[error("online (stepwise) EM fits maximum likelihood only: drop the prior (or the variational posterior)")]
    OnlineWithPrior,
    /// A parameter to freeze has no initial value to keep.
    #[error("{parameter} are frozen but have no initial value: give {init} (or freeze only what you give)")]
    FrozenWithoutInitial {
        parameter: crate::kinds::Parameter,
        init: &'static str,
    },
    /// Frozen parameters were asked of a MAP or variational fit.
    #[error(
        "frozen parameters apply to maximum-likelihood fits only: drop the prior (or the variational posterior), or freeze nothing"
    )]
    FrozenWithPrior,
    /// A fit was given both a MAP prior and a variational posterior.
    #[error("a fit takes a MAP prior (prior) or a variational posterior (variational), not both")]
    PriorAndVariational,
    /// A variational fit was given initial weights, means or precisions, which scikit-learn's
    /// BayesianGaussianMixture does not take.
    #[error("a variational fit takes no {field}: start it from responsibilities or labels instead, or set the priors")]
    VariationalInitialParameters { field: &'static str },
    /// `n_init` was 0.
    #[error("n_init is 0: at least one initialisation is needed; pass n_init >= 1")]
    ZeroNInit,
    /// `chunk_size` was 0.
    #[error("chunk_size is 0: a GPU chunk needs at least one sample; pass chunk_size >= 1 or leave it unset")]
    ZeroChunkSize,
    /// `weights_init` has the wrong length.
    #[error("weights_init has {got} values but n_components is {expected}; give one weight per component")]
    WeightsInitLength { expected: usize, got: usize },
    /// A `weights_init` entry is not a finite positive number.
    #[error("weights_init[{component}] is {value}: every initial weight must be finite and > 0")]
    WeightsInitNotPositive { component: usize, value: f64 },
    /// `weights_init` does not sum to 1.
    #[error("weights_init sums to {sum}, not 1: normalise the weights so that they sum to 1")]
    WeightsInitSum { sum: f64 },
    /// `means_init` cannot be read as n_components rows of n_features.
    #[error(
        "means_init has {got} values, which is not n_components ({n_components}) rows of {n_features} features; pass a row-major n_components x n_features array"
    )]
    MeansInitShape {
        n_components: usize,
        n_features: usize,
        got: usize,
    },
    /// A `means_init` entry is NaN or infinite.
    #[error("means_init[{component}][{feature}] is {value}: initial means must be finite")]
    MeansInitNotFinite {
        component: usize,
        feature: usize,
        value: f64,
    },
    /// `precisions_init` has the wrong number of values for the covariance type.
    #[error(
        "precisions_init has {got} values but a '{covariance_type}' model with {n_components} components and {n_features} features needs {expected} (shape {shape}); pass scikit-learn's precisions_init layout, row-major"
    )]
    PrecisionsInitShape {
        covariance_type: CovarianceType,
        n_components: usize,
        n_features: usize,
        expected: usize,
        got: usize,
        shape: String,
    },
    /// A `precisions_init` matrix is not symmetric.
    #[error(
        "precisions_init for component {component} is not symmetric: entry [{row}][{col}] = {upper} but [{col}][{row}] = {lower}; pass a symmetric matrix"
    )]
    PrecisionsInitNotSymmetric {
        component: usize,
        row: usize,
        col: usize,
        upper: f64,
        lower: f64,
    },
    /// A `precisions_init` matrix (or diagonal, or scalar) is not positive definite.
    #[error(
        "precisions_init for component {component} is not positive definite (or holds NaN or infinity): a precision must be symmetric positive definite, with positive diagonal entries"
    )]
    PrecisionsInitNotPositiveDefinite { component: usize },

    // ---- data -------------------------------------------------------------------------
    /// The data has zero features.
    #[error("the data has 0 features: pass n_features >= 1")]
    NoFeatures,
    /// The data buffer length is not a multiple of the number of features.
    #[error(
        "the data holds {len} values, which is not a whole number of rows of {n_features} features; pass a row-major n_samples x n_features array"
    )]
    DataLength { len: usize, n_features: usize },
    /// A data value is NaN or infinite.
    #[error(
        "the data has a non-finite value ({value}) at row {row}, column {column}: remove or impute it before fitting (a NaN can instead be marginalised as a missing value: Missing::Marginalise, --missing marginalise, missing=\"marginalise\")"
    )]
    NonFiniteData { row: usize, column: usize, value: f64 },
    /// A row whose every feature is missing (NaN), in data read with missing values.
    #[error("row {row} has every feature missing (NaN), so it says nothing about the mixture: drop the row")]
    AllMissingRow { row: usize },
    /// Missing values were given to a path that does not marginalise them.
    #[error(
        "the data has missing values (the first NaN at row {row}, column {column}), which {what} does not marginalise: {fix}"
    )]
    MissingUnsupported {
        row: usize,
        column: usize,
        what: &'static str,
        fix: &'static str,
    },
    /// An ndarray array whose rows are not one row-major run of memory (transposed, Fortran-order,
    /// a column slice or a strided step), so that a [`crate::DataView`] cannot borrow them
    /// (feature `ndarray`).
    #[error(
        "the {rows} x {cols} array is not in standard layout (row-major and contiguous; its strides are {strides:?}), so its rows cannot be borrowed: pass x.as_standard_layout() (one copy) instead"
    )]
    NotStandardLayout {
        rows: usize,
        cols: usize,
        strides: [isize; 2],
    },
    /// Another rank of a distributed fit failed (it reports its own error); this rank stopped with it.
    #[error("rank {rank} of the distributed fit failed (its own error says why); every rank stopped")]
    PeerFailed { rank: usize },
    /// The ranks of a distributed fit no longer run the same GPU arithmetic, which they agree on at
    /// every decision: a bug, stopped before it could leave a rank waiting for the others.
    #[error(
        "the ranks of the distributed fit ran different GPU arithmetic in one pass (a bug in gmm-gpu: please report it); fit with --precision exact or on the CPU meanwhile"
    )]
    RanksOutOfStep,
    /// A data file cannot be read in place (see [`crate::MappedData`]); `problem` says why.
    #[error("{} {problem}", .path.display())]
    DataFile { path: PathBuf, problem: DataFileProblem },
    /// Fewer than two samples were given to fit.
    #[error("fitting needs at least 2 samples, got {n_samples}")]
    TooFewSamples { n_samples: usize },
    /// Fewer samples than components.
    #[error(
        "there are {n_samples} samples but n_components is {n_components}: use at most as many components as samples"
    )]
    FewerSamplesThanComponents { n_samples: usize, n_components: usize },
    /// The data's feature count differs from the model's (or from the initial parameters').
    #[error("{what} has {expected} features but the data has {got}; use data with the same columns")]
    FeatureMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// The sample weights have the wrong length.
    #[error("sample_weight has {got} values but the data has {expected} samples; give one weight per sample")]
    SampleWeightLength { expected: usize, got: usize },
    /// A sample weight is negative or not finite.
    #[error("sample_weight[{index}] is {value}: sample weights must be finite and >= 0")]
    InvalidSampleWeight { index: usize, value: f64 },
    /// Every sample weight is zero.
    #[error("every sample weight is 0: at least one sample must have a positive weight")]
    ZeroSampleWeights,
    /// Some ranks of a distributed fit gave sample weights and others did not.
    #[error(
        "some ranks of the distributed fit gave sample weights and rank {rank} did not: give every rank its rows' weights, or none"
    )]
    SampleWeightOnSomeRanks { rank: usize },

    // ---- fitting ------------------------------------------------------------------------
    /// A covariance is not positive definite after `reg_covar` was added.
    #[error(
        "fitting the mixture model failed because {} has an ill-defined empirical covariance (for instance caused by singleton or collapsed samples); try to decrease the number of components, increase reg_covar, or scale the input data",
        match .component { Some(k) => format!("component {k}"), None => "the tied covariance".to_string() }
    )]
    IllDefinedCovariance { component: Option<usize> },
    /// The log-likelihood became NaN or infinite (data too large for f64 squares, for example).
    #[error(
        "the log-likelihood is not finite at iteration {iteration}: the data's scale overflows the computation; scale the input data"
    )]
    NonFiniteLikelihood { iteration: usize },
    /// The fit's monitor asked it to stop (a Ctrl-C in Python, for example); no model was made.
    #[error(
        "the fit was interrupted by its monitor in initialisation {init}, after {iteration} EM iterations; no model was made"
    )]
    Interrupted { init: usize, iteration: usize },

    // ---- the GPU ------------------------------------------------------------------------------
    /// No wgpu adapter was found.
    #[error(
        "no GPU adapter found ({detail}); on Linux without a GPU install Mesa's software Vulkan driver (apt-get install mesa-vulkan-drivers libvulkan1), check WGPU_BACKEND and WGPU_ADAPTER_NAME, or use the CPU backend"
    )]
    NoAdapter { detail: String },
    /// `BackendKind::Auto` found only a software adapter, which is slower than the CPU path.
    #[error("no hardware GPU for backend auto: {detail}")]
    SoftwareAdapterOnly { detail: String },
    /// The adapter refused to create a device.
    #[error(
        "the GPU adapter '{adapter}' could not create a device: {reason}; update the GPU driver or use the CPU backend"
    )]
    RequestDevice { adapter: String, reason: String },
    /// The device was lost during the fit.
    #[error(
        "the GPU device was lost ({reason}); the driver reset or the GPU was removed: retry, or use the CPU backend"
    )]
    DeviceLost { reason: String },
    /// The device ran out of memory.
    #[error(
        "the GPU ran out of memory allocating {what} ({bytes} bytes); cap max_device_bytes (gmm --device-memory) to stream the data, pass a smaller chunk_size, use fewer components or features, or use the CPU backend"
    )]
    GpuOutOfMemory { what: &'static str, bytes: u64 },
    /// `max_device_bytes` cannot hold even two of the smallest chunks and the working buffers.
    #[error(
        "max_device_bytes is {budget} but a streamed GPU fit of this shape needs at least {needed} bytes (two 64-sample chunks and the model's working buffers); raise the budget, use fewer components or features, or use the CPU backend"
    )]
    GpuBudgetTooSmall { budget: u64, needed: u64 },
    /// A device limit is below what the kernels need.
    #[error(
        "the GPU's limit {limit} is {granted} but the kernels need {needed}; use another adapter or the CPU backend"
    )]
    LimitsTooSmall {
        limit: &'static str,
        needed: u64,
        granted: u64,
    },
    /// The model, or one component-by-statistic row of partial sums, is larger than one storage
    /// binding of this device.
    #[error(
        "{n_components} components of {n_features} features need {bytes} bytes for the {what} in one GPU binding, but this device's max_storage_buffer_binding_size is {granted}; use fewer components, a diagonal covariance, or the CPU backend"
    )]
    GpuModelTooLarge {
        what: &'static str,
        n_components: usize,
        n_features: usize,
        bytes: u64,
        granted: u64,
    },
    /// More features than the GPU kernels take.
    #[error("the data has {n_features} features but the GPU kernels take at most {max}; use the CPU backend")]
    TooManyFeaturesForGpu { n_features: usize, max: usize },
    /// More components than the GPU kernels take.
    #[error("n_components is {n_components} but the GPU kernels take at most {max}; use the CPU backend")]
    TooManyComponentsForGpu { n_components: usize, max: usize },
    /// A data value cannot be held in f32 on the GPU, even after centring and scaling its feature.
    #[error(
        "the data value {value:e} at row {row}, column {column} cannot be held in f32 on the GPU: after centring and scaling column {column} by powers of two it falls outside f32's range (its column spans more than 1e38 in magnitude); rescale or clip that column, or use the CPU backend"
    )]
    DataOutsideF32Range { row: usize, column: usize, value: f64 },
    /// A sample weight cannot be held in f32 on the GPU, even after scaling the weights.
    #[error(
        "sample_weight[{index}] = {value:e} cannot be held in f32 on the GPU: scaled by the largest weight it falls below f32's range (the weights span more than 1e38); drop negligible weights, or use the CPU backend"
    )]
    SampleWeightOutsideF32Range { index: usize, value: f64 },
    /// A model parameter cannot be held in f32 on the GPU.
    #[error(
        "the {what} of component {component} is {value:e} in the GPU's units, beyond f32's range: the model is far outside the data's scale; check the initial parameters, increase reg_covar, or use the CPU backend"
    )]
    GpuModelOutsideF32Range {
        component: usize,
        what: &'static str,
        value: f64,
    },
    /// A model parameter became NaN or infinite before it reached the GPU.
    #[error(
        "the {what} of component {component} is not finite: the data holds a NaN or an infinity (a caller's GPU buffer is not checked) or its scale overflows; check the data"
    )]
    GpuNonFiniteParameter { component: usize, what: &'static str },
    /// A caller's GPU buffer cannot hold the data it is said to hold, or lacks a usage.
    #[error("the GPU data buffer {problem}")]
    GpuBuffer { problem: String },
    /// A caller's buffer given to the GPU path lacks a usage it needs.
    #[error("the {buffer} buffer lacks wgpu::BufferUsages::{usage}; create it with that usage")]
    GpuBufferUsage { buffer: &'static str, usage: &'static str },
    /// A caller's buffer is too small for what it is said to hold.
    #[error(
        "the {buffer} buffer holds {size} bytes but {needed} are needed from its offset for the samples, stride and components bound; pass a larger buffer or fewer samples"
    )]
    GpuBufferTooSmall {
        buffer: &'static str,
        size: u64,
        needed: u64,
    },
    /// A byte offset into a caller's buffer is not a multiple of the values' size.
    #[error("the {buffer} buffer's offset {offset} is not a multiple of {alignment} bytes; align it")]
    GpuBufferMisaligned {
        buffer: &'static str,
        offset: u64,
        alignment: u64,
    },
    /// A row stride shorter than a sample.
    #[error(
        "the row stride is {stride} f32 values but a sample has {n_features} features; the stride counts f32s from one row's start to the next and must be >= n_features"
    )]
    StrideTooSmall { stride: usize, n_features: usize },
    /// A caller's buffer belongs to another wgpu device than the model's context.
    #[error(
        "the {buffer} buffer belongs to another wgpu device than the model's GpuContext; create it on the context's device (GpuContext::from_device wraps yours)"
    )]
    GpuBufferOtherDevice { buffer: &'static str },
    /// One buffer bound both as the input and as an output.
    #[error(
        "the {buffer} buffer is also the input buffer: wgpu does not allow a buffer read-only and writable in one pass; write the outputs to another buffer"
    )]
    GpuBufferAliased { buffer: &'static str },
    /// An inference binding with no output to write.
    #[error("no output buffer is given: bind at least one of labels, log_density and responsibilities")]
    NoInferenceOutputs,
    /// An inference encoded for more samples than were bound.
    #[error("{count} samples were asked for but {capacity} were bound; bind the inference for at least that many")]
    InferenceCount { count: usize, capacity: usize },
    /// A model given to a resident model (`GpuModel::update`) of another shape than it was made for.
    #[error(
        "the model has {found_components} components of {found_features} features ({found_covariance}) but the resident model was made for {expected_components} of {expected_features} ({expected_covariance}); make a new GpuModel for a model of another shape"
    )]
    ResidentModelShape {
        expected_components: usize,
        expected_features: usize,
        expected_covariance: CovarianceType,
        found_components: usize,
        found_features: usize,
        found_covariance: CovarianceType,
    },
    /// wgpu reported an error that is a bug in this crate.
    #[error("internal GPU error (please report it): {message}")]
    GpuInternal { message: String },

    // ---- sampling -----------------------------------------------------------------------------
    /// `sample` was asked for more values (n_samples x n_features) than can be allocated.
    #[error(
        "sample: {n_samples} samples of {n_features} features is more values than memory can hold; draw fewer samples (in batches, with a different seed per batch, if many are needed)"
    )]
    SampleTooLarge { n_samples: usize, n_features: usize },

    // ---- model files ----------------------------------------------------------------------
    /// A model file is not JSON, or lacks a field, or has a field of the wrong JSON type.
    #[error(
        "the model JSON is invalid at line {line}, column {column}: {message}; a model file is the JSON object that GmmModel::to_json writes"
    )]
    ModelJson {
        line: usize,
        column: usize,
        message: String,
    },
    /// A model file field has the wrong shape.
    #[error("model field '{field}' should have shape {expected} but has {found}")]
    ModelShape {
        field: &'static str,
        expected: String,
        found: String,
    },
    /// A model file field holds an invalid value.
    #[error("model field '{field}' at index {index} is {value}: {reason}")]
    ModelValue {
        field: &'static str,
        index: usize,
        value: f64,
        reason: &'static str,
    },

    // ---- linfa ------------------------------------------------------------------------------
    /// An error of linfa's own, met through its traits (feature `linfa`): linfa's `Fit` requires
    /// that its errors convert into ours.
    #[cfg(feature = "linfa")]
    #[error("linfa: {0}")]
    Linfa(#[from] ::linfa::error::Error),
}

impl GmmError {
    /// Whether the error says the GPU cannot run a fit that the CPU path can (its memory, limits,
    /// f32 range, or a lost device), so that `BackendKind::Auto` falls back to the CPU.
    pub fn is_gpu_capacity(&self) -> bool {
        matches!(
            self,
            GmmError::GpuOutOfMemory { .. }
                | GmmError::GpuBudgetTooSmall { .. }
                | GmmError::LimitsTooSmall { .. }
                | GmmError::GpuModelTooLarge { .. }
                | GmmError::TooManyFeaturesForGpu { .. }
                | GmmError::TooManyComponentsForGpu { .. }
                | GmmError::DataOutsideF32Range { .. }
                | GmmError::SampleWeightOutsideF32Range { .. }
                | GmmError::GpuModelOutsideF32Range { .. }
                | GmmError::DeviceLost { .. }
        )
    }
}

/// Why a data file cannot be memory-mapped as samples: the cause inside [`GmmError::DataFile`],
/// worded to follow the file's name.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataFileProblem {
    /// The file could not be opened, measured or mapped.
    #[error("cannot be read ({message})")]
    Io { kind: std::io::ErrorKind, message: String },
    /// The path is a folder.
    #[error("is a directory, not a data file")]
    Directory,
    /// The `.npy` header is malformed.
    #[error("is not a valid .npy file ({reason}); write it with numpy.save")]
    NpyHeader { reason: String },
    /// The dtype is not little-endian float32 or float64.
    #[error(
        "has dtype '{dtype}', but gmm reads float32 or float64 .npy files; convert it with x.astype(numpy.float64)"
    )]
    NpyDtype { dtype: String },
    /// Big-endian values, which cannot be read in place.
    #[error(
        "holds big-endian values ('{dtype}'), which cannot be read in place; convert it with numpy.save(path, x.astype(x.dtype.newbyteorder('<')))"
    )]
    BigEndian { dtype: String },
    /// Not a 1-D or 2-D array.
    #[error(
        "holds a {}-D array of shape {shape:?}; gmm needs a 2-D (n_samples, n_features) array or a 1-D array of one feature", .shape.len()
    )]
    NpyDims { shape: Vec<u64> },
    /// A 2-D array in column-major order.
    #[error(
        "is stored in Fortran (column-major) order; save it in C order with numpy.save(path, numpy.ascontiguousarray(x))"
    )]
    FortranOrder,
    /// Fewer data bytes than the header's shape needs.
    #[error("is truncated: its header promises {expected} bytes of data but the file holds {actual}; rewrite the file")]
    Truncated { expected: u64, actual: u64 },
    /// More data bytes than the header's shape needs.
    #[error(
        "has {actual} bytes of data where its header's shape describes {expected}; the header does not match the data, so rewrite the file"
    )]
    Trailing { expected: u64, actual: u64 },
    /// The data does not start on a multiple of the value size.
    #[error(
        "has its data at byte {offset}, not a multiple of the value size, so it cannot be read in place; rewrite it with numpy.save"
    )]
    Misaligned { offset: usize },
    /// A raw float32 file is not a whole number of rows.
    #[error(
        "has {bytes} bytes, which is not a whole number of rows of {n_features} float32 values ({} bytes each); check --features", 4 * .n_features
    )]
    RawSize { bytes: u64, n_features: usize },
    /// Larger than this machine's address space.
    #[error("has {bytes} bytes, more than this machine can address")]
    TooLarge { bytes: u64 },
}
