//! The named choices of a fit (covariance type, initialisation, backend) and their parse error: a
//! leaf module that the parameters and the error type both import.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The form of each component's covariance, as scikit-learn's `covariance_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CovarianceType {
    /// Each component has its own general covariance matrix.
    #[default]
    Full,
    /// All components share one general covariance matrix.
    Tied,
    /// Each component has its own diagonal covariance matrix.
    Diag,
    /// Each component has its own single variance.
    Spherical,
}

impl CovarianceType {
    /// All four types, in scikit-learn's documentation order.
    pub const ALL: [CovarianceType; 4] = [Self::Full, Self::Tied, Self::Diag, Self::Spherical];

    /// scikit-learn's name for the type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Tied => "tied",
            Self::Diag => "diag",
            Self::Spherical => "spherical",
        }
    }

    /// The shape of `covariances_` (and `precisions_cholesky_`) in scikit-learn.
    pub fn covariance_shape(self, n_components: usize, n_features: usize) -> Vec<usize> {
        match self {
            Self::Full => vec![n_components, n_features, n_features],
            Self::Tied => vec![n_features, n_features],
            Self::Diag => vec![n_components, n_features],
            Self::Spherical => vec![n_components],
        }
    }

    /// The number of f64 values in `covariances_` for this type.
    pub fn covariance_len(self, n_components: usize, n_features: usize) -> usize {
        self.covariance_shape(n_components, n_features).iter().product()
    }

    /// Free parameters of the covariances, as scikit-learn's `_n_parameters`.
    pub fn n_covariance_parameters(self, n_components: usize, n_features: usize) -> usize {
        let tri = n_features * (n_features + 1) / 2;
        match self {
            Self::Full => n_components * tri,
            Self::Tied => tri,
            Self::Diag => n_components * n_features,
            Self::Spherical => n_components,
        }
    }
}

impl fmt::Display for CovarianceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown covariance type or init method name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{given}'; expected one of: {expected}")]
pub struct ParseNameError {
    what: &'static str,
    given: String,
    expected: &'static str,
}

impl ParseNameError {
    /// An unknown `given` name of a `what`, with the names it takes.
    pub(crate) fn new(what: &'static str, given: &str, expected: &'static str) -> Self {
        Self {
            what,
            given: given.to_string(),
            expected,
        }
    }
}

impl FromStr for CovarianceType {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ParseNameError {
                what: "covariance type",
                given: s.to_string(),
                expected: "full, tied, diag, spherical",
            })
    }
}

/// How the responsibilities that start EM are chosen, as scikit-learn's `init_params`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum InitMethod {
    /// k-means clustering (k-means++ seeding, then Lloyd iterations); hard responsibilities.
    #[default]
    KMeans,
    /// k-means++ seeding only: K data points become the means.
    KMeansPlusPlus,
    /// Uniformly random responsibilities, normalised per sample.
    Random,
    /// K distinct data points chosen uniformly become the means.
    RandomFromData,
    /// The user's responsibilities or labels
    /// ([`crate::GmmParamsBuilder::init_responsibilities`], [`crate::GmmParamsBuilder::init_labels`]):
    /// the fit starts with an M-step from them, as scikit-learn's `_initialize(X, resp)` and
    /// mclust's `me*`. Choosing it without giving them is [`crate::GmmError::InitResponsibilitiesMissing`].
    Responsibilities,
}

impl InitMethod {
    /// scikit-learn's name for the method.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KMeans => "kmeans",
            Self::KMeansPlusPlus => "k-means++",
            Self::Random => "random",
            Self::RandomFromData => "random_from_data",
            Self::Responsibilities => "responsibilities",
        }
    }
}

impl fmt::Display for InitMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InitMethod {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kmeans" => Ok(Self::KMeans),
            "k-means++" | "kmeans++" => Ok(Self::KMeansPlusPlus),
            "random" => Ok(Self::Random),
            "random_from_data" | "random-from-data" => Ok(Self::RandomFromData),
            _ => Err(ParseNameError {
                what: "init method",
                given: s.to_string(),
                expected: "kmeans, k-means++, random, random_from_data",
            }),
        }
    }
}

/// Where the E-step and the statistics run. The M-step always runs on the host, in f64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The float64 CPU path: the reference, deterministic on any thread count.
    #[default]
    Cpu,
    /// A wgpu GPU (Vulkan, Metal or DX12); an error if none is found.
    Gpu,
    /// The GPU when an adapter exists, else the CPU (the choice is logged).
    Auto,
}

impl BackendKind {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
            Self::Auto => "auto",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Cpu, Self::Gpu, Self::Auto]
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| ParseNameError {
                what: "backend",
                given: s.to_string(),
                expected: "cpu, gpu, auto",
            })
    }
}

/// A mixture's parameter, as named by [`crate::GmmParamsBuilder::freeze`] (`gmm fit --freeze`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parameter {
    /// The mixture weights.
    Weights,
    /// The component means.
    Means,
    /// The covariances (and with them the precisions).
    Covariances,
}

impl Parameter {
    /// The name in the CLI and in Python.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weights => "weights",
            Self::Means => "means",
            Self::Covariances => "covariances",
        }
    }
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Parameter {
    type Err = ParseNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "weights" => Ok(Self::Weights),
            "means" => Ok(Self::Means),
            "covariances" | "precisions" => Ok(Self::Covariances),
            _ => Err(ParseNameError::new("parameter", s, "weights, means, covariances")),
        }
    }
}
