"""``GaussianMixture``: scikit-learn's estimator, fitted by the gmm-gpu crate.

The parameter checks below follow scikit-learn's (``sklearn/mixture/_gaussian_mixture.py`` and
``_base.py``, BSD-3-Clause, The scikit-learn developers) word for word, so that users and
scikit-learn's own tests see the same errors and messages.
"""

import numbers

import numpy as np
from sklearn import get_config
from sklearn.mixture import GaussianMixture as _SklearnGaussianMixture
from sklearn.utils import check_array
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, _num_samples, check_is_fitted, validate_data

from gmm_gpu import _core
from gmm_gpu._base import (
    _EXTRA_CONSTRAINTS,
    _BaseMixture,
    _check_init_params,
    _check_precision_matrix,
    _check_precision_positivity,
    _check_shape,
    _f64,
    _seed,
    _translate,
)

_PRECISIONS_SHAPE = {
    "full": lambda k, d: (k, d, d),
    "tied": lambda k, d: (d, d),
    "diag": lambda k, d: (k, d),
    "spherical": lambda k, d: (k,),
}

# freeze's names, each with the initial value it keeps.
_FREEZE_INITS = {
    "weights": "weights_init",
    "means": "means_init",
    "covariances": "precisions_init",
    "precisions": "precisions_init",
}


def _check_freeze(freeze, inits, prior):
    """``freeze``'s names as a list for the core, each checked, and checked to have its initial
    value (among ``inits``, the checked ``*_init`` arrays) and to come without a prior."""
    names = []
    for name in freeze:
        if not isinstance(name, str) or name not in _FREEZE_INITS:
            raise ValueError(
                "The 'freeze' parameter of GaussianMixture must be a tuple or list of "
                "'weights', 'means', 'covariances' or 'precisions'. Got %r instead." % (name,)
            )
        if _FREEZE_INITS[name] not in inits:
            raise ValueError(
                "freeze=%r keeps the %s at their initial value, but %s is None; give %s, "
                "or freeze only what you give." % (tuple(freeze), name, _FREEZE_INITS[name],
                                                  _FREEZE_INITS[name])
            )
        names.append(name)
    if names and prior is not None:
        raise ValueError(
            "freeze=%r: frozen parameters apply to maximum-likelihood fits only; "
            "set prior=None or freeze=()." % (tuple(freeze),)
        )
    return names


def _check_weights(weights, n_components):
    weights = check_array(weights, dtype=[np.float64, np.float32], ensure_2d=False)
    _check_shape(weights, (n_components,), "weights")
    if any(np.less(weights, 0.0)) or any(np.greater(weights, 1.0)):
        raise ValueError(
            "The parameter 'weights' should be in the range "
            "[0, 1], but got max value %.5f, min value %.5f"
            % (np.min(weights), np.max(weights))
        )
    atol = 1e-6 if weights.dtype == np.float32 else 1e-8
    if not np.allclose(float(np.abs(1.0 - np.sum(weights))), 0.0, atol=atol):
        raise ValueError(
            "The parameter 'weights' should be normalized, but got sum(weights) = %.5f"
            % np.sum(weights)
        )
    return weights


def _check_means(means, n_components, n_features):
    means = check_array(means, dtype=[np.float64, np.float32], ensure_2d=False)
    _check_shape(means, (n_components, n_features), "means")
    return means


def _check_precisions_full(precisions, covariance_type):
    for i in range(precisions.shape[0]):
        _check_precision_matrix(precisions[i, :, :], covariance_type)


def _check_precisions(precisions, covariance_type, n_components, n_features):
    precisions = check_array(
        precisions,
        dtype=[np.float64, np.float32],
        ensure_2d=False,
        allow_nd=covariance_type == "full",
    )
    _check_shape(
        precisions,
        _PRECISIONS_SHAPE[covariance_type](n_components, n_features),
        "%s precision" % covariance_type,
    )
    check = {
        "full": _check_precisions_full,
        "tied": _check_precision_matrix,
        "diag": _check_precision_positivity,
        "spherical": _check_precision_positivity,
    }[covariance_type]
    check(precisions, covariance_type)
    return precisions


_PRIOR_KEYS = ("shrinkage", "mean", "dof", "scale", "weights")


def _prior_number(value, name, low, inclusive):
    """A finite real number above ``low`` (or at it, if ``inclusive``), as a float."""
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and np.isfinite(value)
        and (value >= low if inclusive else value > low)
    )
    if not ok:
        raise ValueError(
            "%s must be a finite number %s %s, but got %r."
            % (name, ">=" if inclusive else ">", low, value)
        )
    return float(value)


def _check_prior(prior, covariance_type, n_features):
    """The ``prior`` parameter as the core takes it: None for maximum likelihood, else a dict with
    every key of ``_PRIOR_KEYS``, None where mclust's defaultPrior takes the value from the data
    (``scale`` flattened row-major). Each given hyperparameter is checked here, naming it."""
    if prior is None:
        return None
    given = {} if isinstance(prior, str) else prior
    unknown = [key for key in given if key not in _PRIOR_KEYS]
    if unknown:
        raise ValueError(
            "The 'prior' parameter has unknown key(s) %s; its keys are %s."
            % (", ".join(repr(k) for k in unknown), ", ".join(repr(k) for k in _PRIOR_KEYS))
        )
    given = {key: value for key, value in given.items() if value is not None}
    core = dict.fromkeys(_PRIOR_KEYS)
    if "shrinkage" in given:
        core["shrinkage"] = _prior_number(given["shrinkage"], "prior['shrinkage']", 0, False)
    if "dof" in given:
        core["dof"] = _prior_number(
            given["dof"], "prior['dof'] (with %d features)" % n_features, n_features - 1, False
        )
    if "weights" in given:
        core["weights"] = _prior_number(given["weights"], "prior['weights']", 1, True)
    if "mean" in given:
        # The shape first, so that a scalar or a matrix is a ValueError naming the key.
        mean = np.asarray(given["mean"])
        _check_shape(mean, (n_features,), "prior['mean']")
        mean = check_array(mean, dtype=np.float64, ensure_2d=False, input_name="prior['mean']")
        core["mean"] = mean.tolist()
    if "scale" in given:
        if covariance_type in ("full", "tied"):
            scale = np.asarray(given["scale"])
            _check_shape(scale, (n_features, n_features), "prior['scale']")
            scale = check_array(scale, dtype=np.float64, input_name="prior['scale']")
            if not (
                np.all(np.isclose(scale, scale.T)) and np.all(np.linalg.eigvalsh(scale) > 0.0)
            ):
                raise ValueError(
                    "prior['scale'] should be symmetric, positive-definite for "
                    "covariance_type='%s'" % covariance_type
                )
            core["scale"] = scale.ravel().tolist()
        else:
            scale = given["scale"]
            if isinstance(scale, np.ndarray) and scale.shape == ():
                scale = scale.item()
            name = "prior['scale'] (one number for covariance_type='%s')" % covariance_type
            core["scale"] = [_prior_number(scale, name, 0, False)]
    return core


class GaussianMixture(_BaseMixture):
    """Gaussian Mixture, fitted by EM in the gmm-gpu crate.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: the same parameters and
    defaults, fitted attributes, methods, warnings and errors (see scikit-learn's documentation for
    each). The differences:

    - ``backend`` chooses where EM's E-step and statistics run: ``"cpu"`` (default; float64,
      scikit-learn's numbers to about 1e-10 from the same start), ``"gpu"`` (any wgpu adapter,
      float32 on the device; an error if there is none) or ``"auto"`` (a hardware GPU if there is
      one and the fit fits on it, else the CPU). float32 input goes to the GPU as it is.
    - ``precision`` chooses a GPU fit's arithmetic: ``"fast"`` (plain float32 kernels),
      ``"exact"`` (two-float kernels: every product error-free, about 10-30x the arithmetic) or
      ``"auto"`` (default: fast, with a conditioning guard that switches the fit to exact where
      float32 would not hold). It only matters for GPU fits; the CPU path is float64 either way.
    - ``fit(X, y=None, sample_weight=None)`` maximises the weighted likelihood: a weight of 2
      counts a row twice, a weight of 0 drops it.
    - The initialisations (k-means, k-means++, random, random_from_data) are the crate's, drawn
      from ``random_state``: an int is the crate's seed, so the same int gives the same fit as
      ``gmm fit --seed`` and the Rust API. They are not scikit-learn's draws, so only fits from
      given ``weights_init``, ``means_init`` and ``precisions_init``, or from given
      responsibilities, match scikit-learn's numbers.
    - ``init_params`` may also be an array: (n_samples, n_components) responsibilities (rows
      >= 0 summing to 1) or (n_samples,) integer labels. The fit then starts with an M-step from
      them, as scikit-learn's ``_initialize(X, resp)`` does after its own initialisation.
    - ``prior`` fits the maximum a posteriori (MAP) estimate under R mclust's conjugate prior
      instead of maximum likelihood, which keeps covariances positive definite where maximum
      likelihood goes singular (duplicated points, more components than clusters).
    - ``freeze`` keeps any of the weights, means and covariances at their given initial values
      and fits the rest (see below).
    - ``reg_covar`` defaults to None: scikit-learn's 1e-6 without a prior, 0 with one (see below).
    - After a fit, ``backend_`` says where it ran ("cpu" or "gpu"), ``adapter_`` on which GPU and
      ``gpu_precision_`` in which arithmetic.
    - ``partial_fit(X)`` takes one step of stepwise (online) EM (Cappé & Moulines 2009) on the
      batch X, as ``MiniBatchKMeans.partial_fit`` does for k-means (see its docstring).

    Fits release the GIL, and Ctrl-C stops a fit between EM iterations (KeyboardInterrupt).

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
    reg_covar : float or None, default=None
        Non-negative regularization added to the diagonal of covariance. None is scikit-learn's
        1e-6 without a prior and 0 with one (the prior is the regularization there, as in
        mclust); a number is used as given, with or without a prior. The default is None rather
        than scikit-learn's 1e-6 so that "left at its default" survives ``get_params``,
        ``set_params`` and ``clone``: an explicit ``reg_covar=1e-6`` adds 1e-6 to a MAP fit too.
    max_iter : int, default=100
    n_init : int, default=1
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'} or array-like, \
default='kmeans'
        A method, as in scikit-learn, or the start itself: an (n_samples, n_components) float
        array of responsibilities, or an (n_samples,) integer array of labels (a responsibility
        of 1 for the sample's component). X must have n_samples rows; a warm start ignores it.
        Given weights_init, means_init or precisions_init replace what it implies.
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
    precisions_init : array-like, default=None
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
    verbose : int, default=0
    verbose_interval : int, default=10
    backend : {'cpu', 'gpu', 'auto'}, default='cpu'
    precision : {'auto', 'fast', 'exact'}, default='auto'
        The GPU's arithmetic (GPU fits only): 'fast' runs plain float32 kernels, 'exact'
        two-float ones, 'auto' fast with a guard that switches to exact where float32 would not
        hold (an ill-conditioned component, a tol below fast's noise, a falling lower bound).
    prior : None, 'default' or dict, default=None
        None fits by maximum likelihood. Otherwise EM fits the maximum a posteriori estimate under
        R mclust's conjugate prior (``priorControl()``; Fraley & Raftery 2007): a normal prior on
        each mean, an inverse-Wishart (full, tied) or inverse-gamma (diag, spherical) prior on the
        covariances and, optionally, a Dirichlet prior on the weights. 'default' is mclust's
        ``defaultPrior``, every hyperparameter from the data; a dict sets any of its keys and
        leaves the rest (or those given as None) to the default:

        - ``shrinkage``: the means' shrinkage toward the prior mean, > 0 (default 0.01);
        - ``mean``: the prior mean, shape (n_features,) (default the column means);
        - ``dof``: the degrees of freedom, > n_features - 1 (default n_features + 2);
        - ``scale``: an (n_features, n_features) symmetric positive-definite array for 'full'
          and 'tied', one number > 0 for 'diag' and 'spherical' (default var(X)/K^(2/d): the
          covariance matrix, or the mean column variance, over n_components^(2/n_features));
        - ``weights``: a Dirichlet concentration >= 1 on the weights (default none, as in mclust).

        With a prior ``lower_bound_`` is the mean log-posterior per sample, which EM raises and
        ``tol`` measures; ``score``, ``bic`` and ``aic`` stay the log-likelihood.

    freeze : tuple or list of str, default=()
        The parameters EM keeps at their initial values, fitting the rest by maximum likelihood
        under that constraint: any of ``"weights"``, ``"means"`` and ``"covariances"`` (or its
        synonym ``"precisions"``). Each needs its initial value (``weights_init``,
        ``means_init``, ``precisions_init``), and freezing needs ``prior=None``. With the
        components known (means and precisions frozen), for instance, the fit unmixes the data:
        it estimates the weights alone.

    online_decay : float, default=0.7
        α in the step size γ_t = (t + online_offset)^(-α) of ``partial_fit``'s t-th step, in
        (0.5, 1] (where stepwise EM converges): larger forgets old batches faster early on and
        slower later.
    online_offset : float, default=2.0
        t₀ >= 0 in that step size: larger damps the early steps. With 0 the first step's γ is 1
        (it takes its batch whole, whatever α).

    missing : {'reject', 'marginalise'}, default='reject'
        What a NaN in X does. 'reject' raises scikit-learn's ValueError. 'marginalise' treats it
        as a missing value (Ghahramani & Jordan 1994): each sample's likelihood is that of its
        observed features, EM fills the missing ones with their conditional expectations (and
        covariances), and ``lower_bound_`` is the observed-data mean log-likelihood.
        ``predict``, ``predict_proba``, ``score_samples`` and ``score`` read NaN rows through
        their observed features, and ``impute(X)`` fills them in. Fits with missing values run
        on the CPU ('auto' falls back there; 'gpu' is an error), and not with ``partial_fit``.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        In the dtype of the data fitted (float32 or float64), shaped as scikit-learn's.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The mean log-likelihood per sample of the best initialisation's last E-step; with a prior,
        the mean log-posterior (that log-likelihood plus the prior's log density over the weight).
    log_likelihood_ : float
        The mean log-likelihood per sample of that E-step (``lower_bound_`` without a prior).
    prior_ : dict or None
        A MAP fit's prior with every hyperparameter as the fit used it (the data's defaults
        filled in): ``shrinkage`` (float), ``mean`` (ndarray (n_features,)), ``dof`` (float),
        ``scale`` (ndarray (n_features, n_features) for 'full' and 'tied', a float for 'diag' and
        'spherical') and ``weights`` (float, or None for no prior on the weights); all float64.
        None without a prior.
    lower_bounds_ : list of float
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string feature names.
    backend_ : str
        "cpu" or "gpu": where the fit ran.
    adapter_ : str or None
        The GPU adapter the fit ran on.
    gpu_precision_ : dict or None
        A GPU fit's arithmetic: ``{"requested": ..., "used": ..., "switches": [...],
        "exact_components": [...]}``, with ``requested`` the ``precision`` asked for, ``used``
        what its last pass ran (``"fast"``, ``"exact (...)"`` naming the exact arithmetic, or
        ``"fast + exact (...)"`` where ``"auto"`` ran some ill-conditioned components exact and the
        rest fast), ``switches`` each reason ``"auto"`` moved a component or the whole fit from
        fast to exact, in order, and ``exact_components`` the components run exact beside fast
        ones; None for a CPU fit.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm_gpu import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0])
    array([ 1., 10.])
    """

    _parameter_constraints: dict = {
        **_SklearnGaussianMixture._parameter_constraints,
        **_EXTRA_CONSTRAINTS,
        "reg_covar": [Interval(numbers.Real, 0.0, None, closed="left"), None],
        "prior": [None, StrOptions({"default"}), dict],
        "freeze": [tuple, list],
        "online_decay": [Interval(numbers.Real, 0.5, 1.0, closed="right")],
        "online_offset": [Interval(numbers.Real, 0.0, None, closed="left")],
        "missing": [StrOptions({"reject", "marginalise"})],
    }

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=None,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        backend="cpu",
        precision="auto",
        prior=None,
        freeze=(),
        online_decay=0.7,
        online_offset=2.0,
        missing="reject",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.backend = backend
        self.precision = precision
        self.prior = prior
        self.freeze = freeze
        self.online_decay = online_decay
        self.online_offset = online_offset
        self.missing = missing

    # ---- stepwise (online) EM -------------------------------------------------------------

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one step of stepwise (online) EM on the batch X.

        The batch's E-step at the current parameters gives its sufficient statistics ŝ_t, which
        are blended into running ones, s ← (1 - γ_t)·s + γ_t·ŝ_t with
        γ_t = (t + online_offset)^(-online_decay), and the M-step runs from s: data seen once,
        batch by batch, suffices (Cappé & Moulines 2009). The first call initialises from its
        batch, as ``fit`` does (``init_params``, ``random_state``, or the given
        ``weights_init``, ``means_init`` and ``precisions_init``), and takes the batch whole;
        with ``warm_start=True`` and a fitted estimator it continues from the fitted parameters
        instead. Each later call takes one step.

        After each call the fitted attributes are set as after ``fit``: ``n_iter_`` counts the
        steps so far, ``lower_bound_`` is the batch's mean log-likelihood under the parameters
        before its step (its E-step's), ``lower_bounds_`` lists those of every step and
        ``converged_`` is False.

        The running statistics live in the estimator and start over (the next call is again a
        first call) after ``fit``, on ``clone``, and on pickling or copying: an unpickled
        estimator keeps its fitted attributes, and its next ``partial_fit`` initialises afresh
        (or, with ``warm_start=True``, continues from them). The parameters are read by the
        first call. ``prior`` is refused (stepwise EM is maximum likelihood); ``freeze`` works.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The batch (n_samples >= n_components on the first call).
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the batch's samples: a weight of 2 counts a row twice.

        Returns
        -------
        self : object
        """
        state = getattr(self, "_online_state", None)
        first = state is None
        if first:
            if not get_config()["skip_parameter_validation"]:
                self._validate_params()
            if self.prior is not None:
                raise ValueError(
                    "partial_fit runs stepwise EM, which fits by maximum likelihood: "
                    "it does not take a prior (got prior=%r); use fit" % (self.prior,)
                )
        warm = first and self.warm_start and hasattr(self, "converged_")
        X = validate_data(
            self, X, dtype=[np.float64, np.float32], reset=first and not warm
        )
        if first and not warm and X.shape[0] < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {X.shape[0]}"
            )
        if sample_weight is not None:
            sample_weight = _f64(
                _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            )
        try:
            if first:
                args = self._core_args(X, sample_weight)
                # Stepwise EM takes neither (a prior is refused above; X has no NaN here).
                del args["prior"], args["missing"]
                if not warm:
                    args.update(_check_init_params(self.init_params, X.shape[0], self.n_components))
                init_params = self.init_params if isinstance(self.init_params, str) else "kmeans"
                state = _core.Online(
                    n_components=self.n_components,
                    covariance_type=self.covariance_type,
                    init_params=init_params,
                    seed=_seed(self.random_state),
                    backend=self.backend,
                    precision=self.precision,
                    decay=float(self.online_decay),
                    offset=float(self.online_offset),
                    warm=self._core_model() if warm else None,
                    **args,
                )
            model = state.partial_fit(X, sample_weight)
        except _core.CoreError as e:
            translated = _translate(e, X.dtype)
            if translated is e:
                raise
            raise translated from e
        self._online_state = state
        self.converged_ = False
        self._set_fitted(model, X.dtype)
        self.n_iter_ = model.n_iter
        self.lower_bound_ = model.lower_bound
        self.lower_bounds_ = model.lower_bounds
        self.backend_ = model.backend
        self.adapter_ = model.adapter
        self.gpu_precision_ = model.gpu_precision
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        # fit (and fit_predict) start stepwise EM over: the next partial_fit is a first call.
        self.__dict__.pop("_online_state", None)
        return super().fit_predict(X, y, sample_weight=sample_weight)

    fit_predict.__doc__ = _BaseMixture.fit_predict.__doc__

    def __getstate__(self):
        # The running statistics are the crate's and are not pickled (see partial_fit).
        # (object.__getstate__ may return the instance's own __dict__: copy before dropping.)
        state = dict(super().__getstate__())
        state.pop("_online_state", None)
        return state

    # ---- the base's hooks ------------------------------------------------------------------

    def _core_args(self, X, sample_weight):
        """The core's arguments for this fit: reg_covar, the prior and the initial parameters."""
        inits = self._check_parameters(X)
        prior = _check_prior(self.prior, self.covariance_type, X.shape[1])
        freeze = _check_freeze(self.freeze, inits, prior)
        reg_covar = None if self.reg_covar is None else float(self.reg_covar)
        return dict(reg_covar=reg_covar, prior=prior, freeze=freeze, missing=self.missing, **inits)

    def _set_fitted(self, model, dtype):
        self._set_mixture(model, dtype)
        self.log_likelihood_ = model.log_likelihood
        self.prior_ = model.prior

    def _check_parameters(self, X):
        """scikit-learn's checks of the initial parameters; returns them as float64 arrays."""
        _, n_features = X.shape
        inits = {}
        if self.weights_init is not None:
            weights = _f64(_check_weights(self.weights_init, self.n_components))
            # scikit-learn takes float32 weights summing to 1 within 1e-6; the core wants 1e-8.
            inits["weights_init"] = weights / weights.sum()
        if self.means_init is not None:
            inits["means_init"] = _f64(
                _check_means(self.means_init, self.n_components, n_features)
            )
        if self.precisions_init is not None:
            inits["precisions_init"] = _f64(
                _check_precisions(
                    self.precisions_init,
                    self.covariance_type,
                    self.n_components,
                    n_features,
                )
            )
        return inits

    def _core_model(self):
        """The fitted parameters, as they are now, as a core model (float64)."""
        return _core.Model(*self._mixture_args())

    def impute(self, X):
        """Fill each missing value (NaN) of X with its conditional expectation under the model.

        E[x_m | x_o] = sum_k P(k | x_o) (mu_k,m + Sigma_k,mo Sigma_k,oo^-1 (x_o - mu_k,o)), with
        P(k | x_o) from the observed features alone; observed values are kept. Needs
        ``missing="marginalise"``. A row with every feature missing is a ValueError.

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        if self.missing != "marginalise":
            raise ValueError(
                "impute fills missing values, which this estimator rejects: "
                "set missing='marginalise'."
            )
        X = self._validate_x(X)
        try:
            filled = self._core_model().impute(X)
        except _core.CoreError as e:
            raise _translate(e, X.dtype) from e
        return filled.astype(self._out_dtype(X), copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing == "marginalise"
        return tags

    def _n_parameters(self):
        """Return the number of free parameters in the model."""
        _, n_features = self.means_.shape
        if self.covariance_type == "full":
            cov_params = self.n_components * n_features * (n_features + 1) / 2.0
        elif self.covariance_type == "diag":
            cov_params = self.n_components * n_features
        elif self.covariance_type == "tied":
            cov_params = n_features * (n_features + 1) / 2.0
        elif self.covariance_type == "spherical":
            cov_params = self.n_components
        mean_params = n_features * self.n_components
        return int(cov_params + mean_params + self.n_components - 1)

    def bic(self, X):
        """Bayesian information criterion for the current model on the input X (lower is better)."""
        n = _num_samples(X)
        return -2 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion for the current model on the input X (lower is better)."""
        return -2 * self.score(X) * _num_samples(X) + 2 * self._n_parameters()
