"""What ``GaussianMixture`` and ``BayesianGaussianMixture`` share: scikit-learn's ``BaseMixture``
(validation, the fit loop's wording, verbose output, the per-sample queries, sampling), with the
fit itself run by the gmm-gpu crate.

The parameter checks follow scikit-learn's (``sklearn/mixture/_base.py``,
``_gaussian_mixture.py`` and ``_bayesian_mixture.py``, BSD-3-Clause, The scikit-learn developers)
word for word, so that users and scikit-learn's own tests see the same errors and messages.
"""

import numbers
import time
import warnings

import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from gmm_gpu import _core

_INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")

_ILL_DEFINED = (
    "Fitting the mixture model failed because some components have "
    "ill-defined empirical covariance (for instance caused by singleton "
    "or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)

# Core errors about the GPU itself (rather than the data or the parameters): RuntimeError.
_GPU_KINDS = {
    "NoAdapter",
    "SoftwareAdapterOnly",
    "RequestDevice",
    "DeviceLost",
    "GpuOutOfMemory",
    "LimitsTooSmall",
    "GpuModelTooLarge",
    "TooManyFeaturesForGpu",
    "TooManyComponentsForGpu",
    "GpuInternal",
}

# Responsibilities given as init_params: each row sums to 1 within this (the core's tolerance,
# which a row normalised in float32 meets).
_ROW_SUM_TOLERANCE = 1e-6


def adapters():
    """The GPU adapters wgpu finds, hardware first, as dicts.

    Each has ``name``, ``backend`` (vulkan, metal, dx12, ...), ``device_type`` (DiscreteGpu,
    IntegratedGpu, VirtualGpu, Cpu for a software rasteriser such as llvmpipe, Other),
    ``driver``, ``driver_info``, ``vendor`` and ``device``. ``backend="gpu"`` fits on the first;
    ``backend="auto"`` on the first that is not a software rasteriser, else on the CPU.
    WGPU_BACKEND and WGPU_ADAPTER_NAME narrow the choice, as for the ``gmm`` command.
    """
    return _core.adapters()


def _check_shape(param, param_shape, name):
    if param.shape != param_shape:
        raise ValueError(
            "The parameter '%s' should have the shape of %s, but got %s"
            % (name, param_shape, param.shape)
        )


def _check_precision_positivity(precision, covariance_type):
    if np.any(np.less_equal(precision, 0.0)):
        raise ValueError("'%s precision' should be positive" % covariance_type)


def _check_precision_matrix(precision, covariance_type):
    if not (
        np.all(np.isclose(precision, precision.T))
        and np.all(np.linalg.eigvalsh(precision) > 0.0)
    ):
        raise ValueError(
            "'%s precision' should be symmetric, positive-definite" % covariance_type
        )


def _f64(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def _seed(random_state):
    """The core's 64-bit seed: an int random_state is the seed itself (so that
    ``random_state=7`` fits as the crate's ``seed(7)`` and the CLI's ``--seed 7``); otherwise it is
    drawn from the RandomState (None: numpy's global one), as scikit-learn draws from it."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    rng = check_random_state(random_state)
    return int(rng.randint(np.iinfo(np.int64).max, dtype=np.int64))


def _translate(err, dtype):
    """A core error as scikit-learn would raise it."""
    kind = getattr(err, "kind", "")
    if kind == "IllDefinedCovariance":
        message = _ILL_DEFINED
        if dtype == np.float32:
            message += (
                " The numerical accuracy can also be improved by passing float64"
                " data instead of float32."
            )
        return ValueError(message)
    if kind in _GPU_KINDS:
        return RuntimeError(str(err))
    if kind in ("AllMissingRow", "MissingUnsupported"):
        return ValueError(str(err))
    return err


def _check_init_params(init_params, n_samples, n_components):
    """``init_params`` given as an array (gmm_gpu's extension), as the core takes it: an
    (n_samples, n_components) array of responsibilities (each row >= 0, summing to 1) as
    ``init_responsibilities`` (float64), or an (n_samples,) integer array of labels in
    [0, n_components) as ``init_labels`` (int64). A method's name gives no arguments."""
    if isinstance(init_params, str):
        return {}
    given = np.asarray(init_params)
    if given.ndim == 1:
        if given.dtype.kind not in "iu":
            raise ValueError(
                "The parameter 'init_params' given as a 1-D array should hold integer "
                "labels (one component per sample), but got dtype %s." % given.dtype
            )
        _check_shape(given, (n_samples,), "init_params")
        if given.size and (given.min() < 0 or given.max() >= n_components):
            raise ValueError(
                "The parameter 'init_params' given as labels should be in [0, %d) "
                "(n_components=%d), but got min value %d, max value %d."
                % (n_components, n_components, given.min(), given.max())
            )
        return {"init_labels": np.ascontiguousarray(given, dtype=np.int64)}
    if given.ndim == 2:
        _check_shape(given, (n_samples, n_components), "init_params")
        resp = check_array(given, dtype=np.float64, input_name="init_params")
        if np.any(resp < 0.0):
            raise ValueError(
                "The parameter 'init_params' given as responsibilities should be "
                "non-negative, but got min value %.5f." % resp.min()
            )
        sums = resp.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1.0) > _ROW_SUM_TOLERANCE)
        if bad.size:
            raise ValueError(
                "The parameter 'init_params' given as responsibilities should have rows "
                "summing to 1, but row %d sums to %.7f." % (bad[0], sums[bad[0]])
            )
        return {"init_responsibilities": _f64(resp)}
    raise ValueError(
        "The parameter 'init_params' should be one of %s, an (n_samples, n_components) "
        "array of responsibilities or an (n_samples,) array of integer labels, but got an "
        "array of shape %s." % (", ".join(repr(m) for m in _INIT_METHODS), given.shape)
    )


# The constraints both estimators add to scikit-learn's.
_EXTRA_CONSTRAINTS = {
    "init_params": [StrOptions(set(_INIT_METHODS)), "array-like"],
    "backend": [StrOptions({"cpu", "gpu", "auto"})],
    "precision": [StrOptions({"auto", "fast", "exact"})],
}


class _BaseMixture(DensityMixin, BaseEstimator):
    """scikit-learn's ``BaseMixture`` on the gmm-gpu core. A subclass gives the core's arguments
    for its kind of fit (``_core_args``), keeps what the core fitted (``_set_fitted``) and rebuilds
    a core model from its fitted attributes (``_core_model``), which every query then uses, so
    that predictions follow the attributes as scikit-learn's do."""

    # ---- fitting ---------------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Estimate model parameters with the EM algorithm.

        As scikit-learn's ``fit``; ``sample_weight`` (array-like of shape (n_samples,),
        non-negative) weighs each sample: a weight of 2 counts a row twice.

        Returns
        -------
        self : object
            The fitted mixture.
        """
        self.fit_predict(X, y, sample_weight=sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Estimate model parameters using X and predict the labels for X.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Component labels.
        """
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()
        X = validate_data(
            self,
            X,
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
            ensure_all_finite=self._finite(),
        )
        if X.shape[0] < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {X.shape[0]}"
            )
        if sample_weight is not None:
            sample_weight = _f64(
                _check_sample_weight(
                    sample_weight, X, dtype=np.float64, ensure_non_negative=True
                )
            )
        core_args = self._core_args(X, sample_weight)

        do_init = not (self.warm_start and hasattr(self, "converged_"))
        if do_init:
            core_args.update(_check_init_params(self.init_params, X.shape[0], self.n_components))
        warm = self._core_model() if not do_init else None
        monitor = self._verbose_monitor() if self.verbose else None
        init_params = self.init_params if isinstance(self.init_params, str) else "kmeans"
        try:
            model = _core.fit(
                X,
                sample_weight,
                n_components=self.n_components,
                covariance_type=self.covariance_type,
                tol=float(self.tol),
                max_iter=self.max_iter,
                n_init=self.n_init,
                init_params=init_params,
                seed=_seed(self.random_state),
                backend=self.backend,
                precision=self.precision,
                warm=warm,
                monitor=monitor,
                **core_args,
            )
        except _core.CoreError as e:
            translated = _translate(e, X.dtype)
            if translated is e:
                raise
            raise translated from e

        self.converged_ = model.converged
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                (
                    "Best performing initialization did not converge. "
                    "Try different init parameters, or increase max_iter, "
                    "tol, or check for degenerate data."
                ),
                ConvergenceWarning,
            )
        self._set_fitted(model, X.dtype)
        self.n_iter_ = model.n_iter
        self.lower_bound_ = model.lower_bound
        self.lower_bounds_ = model.lower_bounds
        self.backend_ = model.backend
        self.adapter_ = model.adapter
        self.gpu_precision_ = model.gpu_precision
        # Labelled by the parameters as stored, so that fit_predict(X) always equals
        # fit(X).predict(X).
        return self._core_model().predict(X)

    def _set_mixture(self, model, dtype):
        """The fitted mixture's parameters, shaped as scikit-learn's, in ``dtype``."""
        self.weights_ = model.weights.astype(dtype, copy=False)
        self.means_ = model.means.astype(dtype, copy=False)
        self.covariances_ = model.covariances.astype(dtype, copy=False)
        self.precisions_cholesky_ = model.precisions_cholesky.astype(dtype, copy=False)
        self.precisions_ = model.precisions.astype(dtype, copy=False)

    def _verbose_monitor(self):
        """The callback that prints scikit-learn's verbose output as the core reports progress."""
        verbose, interval = self.verbose, self.verbose_interval
        clock = {}

        def monitor(event, *args):
            if event == "init_start":
                (init,) = args
                print("Initialization %d" % init)
                clock["init"] = clock["iter"] = time.time()
            elif event == "iteration":
                _, n_iter, _, change = args
                if n_iter % interval == 0:
                    if verbose == 1:
                        print("  Iteration %d" % n_iter)
                    else:
                        now = time.time()
                        print(
                            "  Iteration %d\t time lapse %.5fs\t ll change %.5f"
                            % (n_iter, now - clock["iter"], change)
                        )
                        clock["iter"] = now
            elif event == "init_end":
                _, _, lower_bound, converged = args
                converged_msg = "converged" if converged else "did not converge"
                if verbose == 1:
                    print(f"Initialization {converged_msg}.")
                else:
                    t = time.time() - clock["init"]
                    print(
                        f"Initialization {converged_msg}. time lapse {t:.5f}s\t lower bound"
                        f" {lower_bound:.5f}."
                    )

        return monitor

    # ---- the fitted model ----------------------------------------------------------------

    def _mixture_args(self):
        """The positional arguments of ``_core.Model`` from the fitted attributes (float64)."""
        return (
            self.covariance_type,
            _f64(self.weights_),
            _f64(self.means_),
            _f64(self.covariances_),
            _f64(self.precisions_cholesky_),
            float(getattr(self, "lower_bound_", -np.inf)),
        )

    def _finite(self):
        """scikit-learn's check of X's values: NaN passes where missing values are marginalised."""
        return "allow-nan" if getattr(self, "missing", "reject") == "marginalise" else True

    def _validate_x(self, X):
        return validate_data(
            self, X, dtype=[np.float64, np.float32], reset=False, ensure_all_finite=self._finite()
        )

    def _out_dtype(self, X):
        return np.result_type(X.dtype, self.means_.dtype)

    def score_samples(self, X):
        """Compute the log-likelihood of each sample.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = self._validate_x(X)
        return self._core_model().score_samples(X).astype(self._out_dtype(X), copy=False)

    def score(self, X, y=None):
        """Compute the per-sample average log-likelihood of the given data X."""
        return float(np.mean(self.score_samples(X)))

    def predict(self, X):
        """Predict the labels for the data samples in X using the trained model."""
        check_is_fitted(self)
        X = self._validate_x(X)
        return self._core_model().predict(X)

    def predict_proba(self, X):
        """Evaluate the components' density for each sample.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        X = self._validate_x(X)
        return self._core_model().predict_proba(X).astype(self._out_dtype(X), copy=False)

    def sample(self, n_samples=1):
        """Generate random samples from the fitted Gaussian distribution.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            Component labels, grouped by component.
        """
        check_is_fitted(self)
        if n_samples < 1:
            raise ValueError(
                "Invalid value for 'n_samples': %d . The sampling requires at "
                "least one sample." % (self.n_components)
            )
        return self._core_model().sample(int(n_samples), _seed(self.random_state))
