//! Borrowed, validated, row-major views of the samples (f32 or f64) and of optional per-sample weights.

use crate::error::GmmError;

/// A floating-point element the CPU path can read; every computation widens it to f64.
pub trait Element: Copy + Send + Sync + 'static {
    /// The value as f64 (exact for f32 and f64).
    fn to_f64(self) -> f64;
}

impl Element for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Element for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// The borrowed sample buffer, in its own precision.
#[derive(Clone, Copy, Debug)]
pub enum Samples<'a> {
    /// Single-precision samples.
    F32(&'a [f32]),
    /// Double-precision samples.
    F64(&'a [f64]),
}

/// A borrowed row-major `n_samples x n_features` data set, checked once on construction:
/// a whole number of rows, at least one feature, and no NaN or infinity ([`DataView::new`]), or
/// NaN allowed as a missing value where a row still has an observed feature
/// ([`DataView::with_missing`]).
#[derive(Clone, Copy, Debug)]
pub struct DataView<'a> {
    samples: Samples<'a>,
    n_samples: usize,
    n_features: usize,
    /// The first NaN's (row, column), for a view made by [`DataView::with_missing`] that has one.
    first_missing: Option<(usize, usize)>,
}

impl<'a> DataView<'a> {
    /// Wraps f64 samples, row-major with `n_features` columns.
    pub fn from_f64(data: &'a [f64], n_features: usize) -> Result<Self, GmmError> {
        Self::new(Samples::F64(data), n_features)
    }

    /// Wraps f32 samples, row-major with `n_features` columns.
    pub fn from_f32(data: &'a [f32], n_features: usize) -> Result<Self, GmmError> {
        Self::new(Samples::F32(data), n_features)
    }

    /// Wraps samples of either precision, row-major with `n_features` columns.
    pub fn new(samples: Samples<'a>, n_features: usize) -> Result<Self, GmmError> {
        let len = check_length(samples, n_features)?;
        let bad = match samples {
            Samples::F32(s) => s.iter().position(|v| !v.is_finite()).map(|i| (i, f64::from(s[i]))),
            Samples::F64(s) => s.iter().position(|v| !v.is_finite()).map(|i| (i, s[i])),
        };
        if let Some((i, value)) = bad {
            return Err(GmmError::NonFiniteData {
                row: i / n_features,
                column: i % n_features,
                value,
            });
        }
        Ok(Self {
            samples,
            n_samples: len / n_features,
            n_features,
            first_missing: None,
        })
    }

    /// Wraps samples in which NaN marks a missing value: a fit with
    /// [`Missing::Marginalise`](crate::Missing) marginalises them, and a model's `predict`,
    /// `predict_proba`, `score_samples` and `impute` read each row through its observed features.
    /// An infinity is still [`GmmError::NonFiniteData`], and a row with every feature missing is
    /// [`GmmError::AllMissingRow`] (it says nothing about the mixture).
    pub fn with_missing(samples: Samples<'a>, n_features: usize) -> Result<Self, GmmError> {
        let len = check_length(samples, n_features)?;
        fn scan<T: Element>(s: &[T], d: usize) -> Result<Option<(usize, usize)>, GmmError> {
            let mut first = None;
            for (row, r) in s.chunks_exact(d).enumerate() {
                let mut n_missing = 0;
                for (column, v) in r.iter().enumerate() {
                    let v = v.to_f64();
                    if v.is_nan() {
                        n_missing += 1;
                        first = first.or(Some((row, column)));
                    } else if v.is_infinite() {
                        return Err(GmmError::NonFiniteData { row, column, value: v });
                    }
                }
                if n_missing == d {
                    return Err(GmmError::AllMissingRow { row });
                }
            }
            Ok(first)
        }
        let first_missing = match samples {
            Samples::F32(s) => scan(s, n_features)?,
            Samples::F64(s) => scan(s, n_features)?,
        };
        Ok(Self {
            samples,
            n_samples: len / n_features,
            n_features,
            first_missing,
        })
    }

    /// Whether any value is missing (NaN; only in a view made by [`DataView::with_missing`]).
    pub fn has_missing(&self) -> bool {
        self.first_missing.is_some()
    }

    /// Fails with today's [`GmmError::NonFiniteData`] at the first NaN, for a path that does not
    /// marginalise missing values.
    pub(crate) fn reject_missing(&self) -> Result<(), GmmError> {
        match self.first_missing {
            Some((row, column)) => Err(GmmError::NonFiniteData {
                row,
                column,
                value: f64::NAN,
            }),
            None => Ok(()),
        }
    }

    /// Number of samples (rows).
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// Number of features (columns).
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The underlying buffer.
    pub fn samples(&self) -> Samples<'a> {
        self.samples
    }

    /// Fails with [`GmmError::MissingUnsupported`] at the first NaN: `what` does not marginalise
    /// missing values, and `fix` says what does.
    pub(crate) fn refuse_missing(&self, what: &'static str, fix: &'static str) -> Result<(), GmmError> {
        match self.first_missing {
            Some((row, column)) => Err(GmmError::MissingUnsupported { row, column, what, fix }),
            None => Ok(()),
        }
    }

    /// Copies row `i`, widened to f64, into `out` (length `n_features`).
    pub fn row_into(&self, i: usize, out: &mut [f64]) {
        let d = self.n_features;
        match self.samples {
            Samples::F32(s) => out
                .iter_mut()
                .zip(&s[i * d..(i + 1) * d])
                .for_each(|(o, v)| *o = f64::from(*v)),
            Samples::F64(s) => out.copy_from_slice(&s[i * d..(i + 1) * d]),
        }
    }

    /// Checks that the data has `expected` features; `what` names the other side in the error.
    pub(crate) fn check_features(&self, what: &'static str, expected: usize) -> Result<(), GmmError> {
        if self.n_features != expected {
            return Err(GmmError::FeatureMismatch {
                what,
                expected,
                got: self.n_features,
            });
        }
        Ok(())
    }
}

/// The number of values, checked to be a whole number of rows of at least one feature.
fn check_length(samples: Samples, n_features: usize) -> Result<usize, GmmError> {
    if n_features == 0 {
        return Err(GmmError::NoFeatures);
    }
    let len = match samples {
        Samples::F32(s) => s.len(),
        Samples::F64(s) => s.len(),
    };
    if len % n_features != 0 {
        return Err(GmmError::DataLength { len, n_features });
    }
    Ok(len)
}

/// Validated per-sample weights for a weighted-likelihood fit: non-negative, finite, not all zero.
///
/// A weight of 2 counts a sample twice: the fit equals that of the data with the row duplicated.
#[derive(Clone, Copy, Debug)]
pub struct SampleWeights<'a> {
    weights: &'a [f64],
}

impl<'a> SampleWeights<'a> {
    /// Checks `weights` against the `n_samples` they weigh.
    pub fn new(weights: &'a [f64], n_samples: usize) -> Result<Self, GmmError> {
        Self::check_length(weights, n_samples)?;
        if let Some((index, value)) = Self::first_invalid(weights) {
            return Err(GmmError::InvalidSampleWeight { index, value });
        }
        if !Self::any_positive(weights) {
            return Err(GmmError::ZeroSampleWeights);
        }
        Ok(Self { weights })
    }

    /// The first of [`SampleWeights::new`]'s checks, which a distributed fit makes on each rank's
    /// own weights: one weight per sample.
    pub(crate) fn check_length(weights: &[f64], n_samples: usize) -> Result<(), GmmError> {
        if weights.len() != n_samples {
            return Err(GmmError::SampleWeightLength {
                expected: n_samples,
                got: weights.len(),
            });
        }
        Ok(())
    }

    /// The first weight that is negative or not finite, as (index, value): the second check (a
    /// distributed fit shares the first over the ranks, by global row).
    pub(crate) fn first_invalid(weights: &[f64]) -> Option<(usize, f64)> {
        weights
            .iter()
            .position(|w| !(w.is_finite() && *w >= 0.0))
            .map(|i| (i, weights[i]))
    }

    /// Whether some weight is positive: the third check (over every rank in a distributed fit).
    pub(crate) fn any_positive(weights: &[f64]) -> bool {
        weights.iter().any(|w| *w != 0.0)
    }

    /// The weights.
    pub fn as_slice(&self) -> &'a [f64] {
        self.weights
    }
}
