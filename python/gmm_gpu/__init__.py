"""Gaussian mixture models fitted by EM on any wgpu GPU, or on a float64 CPU path.

``gmm_gpu.GaussianMixture`` and ``gmm_gpu.BayesianGaussianMixture`` are drop-in replacements for
:class:`sklearn.mixture.GaussianMixture` and :class:`sklearn.mixture.BayesianGaussianMixture`: the
same parameters, attributes, methods, warnings and errors, plus ``backend="cpu"|"gpu"|"auto"``,
per-sample weights in ``fit`` and ``init_params`` given as responsibilities or labels. The EM runs
in the Rust crate gmm-gpu.
"""

from gmm_gpu._base import adapters
from gmm_gpu._bayesian_mixture import BayesianGaussianMixture
from gmm_gpu._core import CoreError
from gmm_gpu._gaussian_mixture import GaussianMixture

__all__ = ["BayesianGaussianMixture", "CoreError", "GaussianMixture", "adapters"]
