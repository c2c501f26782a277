"""Gaussian mixture models fitted by EM on any wgpu GPU, or on a float64 CPU path.

``gmm_gpu.GaussianMixture`` is a drop-in replacement for
:class:`sklearn.mixture.GaussianMixture`: the same parameters, attributes, methods, warnings and
errors, plus ``backend="cpu"|"gpu"|"auto"`` and per-sample weights in ``fit``. The EM runs in the
Rust crate gmm-gpu.
"""

from gmm_gpu._core import CoreError
from gmm_gpu._gaussian_mixture import GaussianMixture, adapters

__all__ = ["CoreError", "GaussianMixture", "adapters"]
