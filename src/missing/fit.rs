//! What a fit with missing values refuses: the paths that do not marginalise them.

use crate::data::DataView;
use crate::error::GmmError;
use crate::params::GmmParams;

/// A fit on the GPU, and what to do instead.
pub(crate) const ON_GPU: (&str, &str) = (
    "a fit on the GPU",
    "fit with BackendKind::Auto or Cpu (--backend auto|cpu), which marginalise them on the CPU",
);

/// A distributed fit on the ranks' GPUs, and what to do instead.
pub(crate) const ON_RANK_GPU: (&str, &str) = (
    "a distributed fit on the GPU",
    "fit_distributed with gpu None (--backend cpu)",
);

/// Fails with [`GmmError::MissingUnsupported`] at `view`'s first NaN where the fit would run on
/// the GPU (`gpu`: what that is and the fix) or is variational; Ok where it marginalises (or
/// `view` has no missing value).
pub(crate) fn check(
    params: &GmmParams,
    view: &DataView,
    gpu: Option<(&'static str, &'static str)>,
) -> Result<(), GmmError> {
    if let Some((what, fix)) = gpu {
        view.refuse_missing(what, fix)?;
    }
    if params.variational.is_some() {
        view.refuse_missing(
            "a variational (Bayesian) fit",
            "fit maximum likelihood or MAP (a prior) instead, or impute the data first",
        )?;
    }
    Ok(())
}
