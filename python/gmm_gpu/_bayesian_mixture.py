"""``BayesianGaussianMixture``: scikit-learn's variational estimator, fitted by the gmm-gpu crate.

The priors are resolved here exactly as scikit-learn resolves them
(``sklearn/mixture/_bayesian_mixture.py``, BSD-3-Clause, The scikit-learn developers: the same
defaults from the data, the same checks and messages) and passed to the core explicitly, so that
the ``*_prior_`` attributes are scikit-learn's and the core fits with exactly them.
"""

import numpy as np
from sklearn.mixture import BayesianGaussianMixture as _SklearnBayesianGaussianMixture
from sklearn.utils import check_array

from gmm_gpu import _core
from gmm_gpu._base import (
    _EXTRA_CONSTRAINTS,
    _BaseMixture,
    _check_precision_matrix,
    _check_precision_positivity,
    _check_shape,
    _f64,
)


def _weighted_moments(X, sample_weight, covariance_type):
    """The defaults of ``mean_prior`` and ``covariance_prior`` for weighted data, as the core
    takes them from the data: the weighted column means, and the weighted covariance (its
    diagonal for diag, the diagonal's mean for spherical) over Σw − 1 for counts (every weight
    >= 1 on average: Σw²/Σw >= 1, so that a weight of 2 is a duplicated row), else over
    Σw − Σw²/Σw (reliability weights, which no rescaling changes)."""
    w = sample_weight
    total, total2 = w.sum(), (w * w).sum()
    mean = (w @ X) / total
    centred = X - mean
    denominator = total - 1.0 if total2 / total >= 1.0 else total - total2 / total
    if covariance_type in ("full", "tied"):
        covariance = (centred.T * w) @ centred / denominator
    else:
        covariance = (w @ np.square(centred)) / denominator
        if covariance_type == "spherical":
            covariance = covariance.mean()
    return mean, covariance


def _surely_positive_definite(psi, covariance_type, n_features):
    """Whether a covariance prior (flat) passes the core's check of a given one beyond doubt:
    positive values (diag, spherical), or a condition number below 1e10 (full, tied), far from
    where the core's Cholesky factorisation and numpy's eigenvalues could disagree."""
    if covariance_type in ("full", "tied"):
        eig = np.linalg.eigvalsh(psi.reshape(n_features, n_features))
        return bool(eig[-1] > 0.0 and eig[0] > 1e-10 * eig[-1])
    return bool(np.all(psi > 0.0))


class BayesianGaussianMixture(_BaseMixture):
    """Variational Bayesian estimation of a Gaussian mixture, fitted in the gmm-gpu crate.

    A drop-in replacement for :class:`sklearn.mixture.BayesianGaussianMixture`: the same
    parameters and defaults, fitted attributes, methods, warnings and errors (see scikit-learn's
    documentation for each). From the same start the CPU fit is scikit-learn's to about 1e-13.
    The differences, shared with :class:`gmm_gpu.GaussianMixture`:

    - ``backend`` chooses where the E-step and statistics run: ``"cpu"`` (default; float64),
      ``"gpu"`` (any wgpu adapter, float32 on the device; an error if there is none) or
      ``"auto"`` (a hardware GPU if there is one and the fit fits on it, else the CPU);
      ``precision`` chooses a GPU fit's arithmetic (``"auto"``, ``"fast"`` or ``"exact"``).
    - ``fit(X, y=None, sample_weight=None)`` weighs each sample: a weight of 2 counts a row
      twice. Unset ``mean_prior`` and ``covariance_prior`` then come from the weighted data: the
      weighted means, and the weighted covariance over Σw − 1 (weights >= 1 on average, as
      counts), else over Σw − Σw²/Σw.
    - The initialisations (k-means, k-means++, random, random_from_data) are the crate's, drawn
      from ``random_state`` (an int is the crate's seed); they are not scikit-learn's draws, so
      only fits from given responsibilities match scikit-learn's numbers.
    - ``init_params`` may also be an array: (n_samples, n_components) responsibilities (rows
      >= 0 summing to 1) or (n_samples,) integer labels. The fit then starts with a variational
      M-step from them, as scikit-learn's ``_initialize(X, resp)`` does after its own
      initialisation.
    - After a fit, ``backend_``, ``adapter_`` and ``gpu_precision_`` say where and how it ran.

    Fits release the GIL, and Ctrl-C stops a fit between iterations (KeyboardInterrupt).

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        The convergence threshold on the change of the lower bound (a total over the samples).
    reg_covar : float, default=1e-6
    max_iter : int, default=100
    n_init : int, default=1
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'} or array-like, \
default='kmeans'
        A method, as in scikit-learn, or the start itself: an (n_samples, n_components) float
        array of responsibilities, or an (n_samples,) integer array of labels. X must have
        n_samples rows; a warm start ignores it.
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, \
default='dirichlet_process'
    weight_concentration_prior : float or None, default=None
        > 0; None is 1 / n_components.
    mean_precision_prior : float or None, default=None
        > 0; None is 1.
    mean_prior : array-like of shape (n_features,), default=None
        None is the mean of X.
    degrees_of_freedom_prior : float or None, default=None
        > n_features - 1; None is n_features.
    covariance_prior : float or array-like, default=None
        (n_features, n_features) symmetric positive definite for 'full' and 'tied',
        (n_features,) positive for 'diag', one positive number for 'spherical'. None is the
        covariance of X (``np.cov(X.T)``), its variances or their mean (ddof=1).
    random_state : int, RandomState instance or None, default=None
    warm_start : bool, default=False
    verbose : int, default=0
    verbose_interval : int, default=10
    backend : {'cpu', 'gpu', 'auto'}, default='cpu'
    precision : {'auto', 'fast', 'exact'}, default='auto'
        The GPU's arithmetic (GPU fits only), as for :class:`gmm_gpu.GaussianMixture`.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        float64 (as scikit-learn's, whatever the data's dtype), shaped as scikit-learn's;
        ``covariances_`` is the Wishart's inverse scale over its degrees of freedom.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The evidence lower bound of the best initialisation (scikit-learn's: less constant
        terms, a total over the samples).
    lower_bounds_ : list of float
    weight_concentration_prior_ : float
    weight_concentration_ : ndarray of shape (n_components,) or tuple of two
        The Dirichlet's concentrations, or for the process the Beta distributions' (a, b).
    mean_precision_prior_ : float
    mean_precision_ : ndarray of shape (n_components,)
    mean_prior_ : ndarray of shape (n_features,)
    degrees_of_freedom_prior_ : float
    degrees_of_freedom_ : ndarray of shape (n_components,), or a float for 'tied'
    covariance_prior_ : float or ndarray
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when X has string feature names.
    backend_ : str
        "cpu" or "gpu": where the fit ran.
    adapter_ : str or None
        The GPU adapter the fit ran on.
    gpu_precision_ : dict or None
        A GPU fit's arithmetic, as for :class:`gmm_gpu.GaussianMixture`; None for a CPU fit.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm_gpu import BayesianGaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [12, 4], [10, 7]])
    >>> labels = np.array([0, 0, 0, 0, 1, 1])
    >>> bgm = BayesianGaussianMixture(n_components=2, init_params=labels).fit(X)
    >>> bgm.predict([[0, 0], [9, 3]])
    array([0, 1])
    """

    _parameter_constraints: dict = {
        **_SklearnBayesianGaussianMixture._parameter_constraints,
        **_EXTRA_CONSTRAINTS,
    }

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        backend="cpu",
        precision="auto",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.backend = backend
        self.precision = precision

    # ---- the priors, as scikit-learn's _check_parameters ----------------------------------

    def _check_parameters(self, X, sample_weight=None):
        """Resolves and checks the priors as scikit-learn does, setting the ``*_prior_``
        attributes; ``sample_weight`` weighs the defaults taken from the data."""
        _, n_features = X.shape
        weighted = (
            _weighted_moments(X, sample_weight, self.covariance_type)
            if sample_weight is not None
            and (self.mean_prior is None or self.covariance_prior is None)
            else None
        )

        if self.weight_concentration_prior is None:
            self.weight_concentration_prior_ = 1.0 / self.n_components
        else:
            self.weight_concentration_prior_ = self.weight_concentration_prior

        if self.mean_precision_prior is None:
            self.mean_precision_prior_ = 1.0
        else:
            self.mean_precision_prior_ = self.mean_precision_prior
        if self.mean_prior is None:
            self.mean_prior_ = X.mean(axis=0) if weighted is None else weighted[0]
        else:
            self.mean_prior_ = check_array(
                self.mean_prior, dtype=[np.float64, np.float32], ensure_2d=False
            )
            _check_shape(self.mean_prior_, (n_features,), "means")

        if self.degrees_of_freedom_prior is None:
            self.degrees_of_freedom_prior_ = n_features
        elif self.degrees_of_freedom_prior > n_features - 1.0:
            self.degrees_of_freedom_prior_ = self.degrees_of_freedom_prior
        else:
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' "
                "should be greater than %d, but got %.3f."
                % (n_features - 1, self.degrees_of_freedom_prior)
            )

        if self.covariance_prior is None:
            if weighted is not None:
                self.covariance_prior_ = weighted[1]
            else:
                self.covariance_prior_ = {
                    "full": lambda: np.atleast_2d(np.cov(X.T)),
                    "tied": lambda: np.atleast_2d(np.cov(X.T)),
                    "diag": lambda: np.var(X, axis=0, ddof=1),
                    "spherical": lambda: np.var(X, axis=0, ddof=1).mean(),
                }[self.covariance_type]()
        elif self.covariance_type in ["full", "tied"]:
            self.covariance_prior_ = check_array(
                self.covariance_prior, dtype=[np.float64, np.float32], ensure_2d=False
            )
            _check_shape(
                self.covariance_prior_,
                (n_features, n_features),
                "%s covariance_prior" % self.covariance_type,
            )
            _check_precision_matrix(self.covariance_prior_, self.covariance_type)
        elif self.covariance_type == "diag":
            self.covariance_prior_ = check_array(
                self.covariance_prior, dtype=[np.float64, np.float32], ensure_2d=False
            )
            _check_shape(
                self.covariance_prior_,
                (n_features,),
                "%s covariance_prior" % self.covariance_type,
            )
            _check_precision_positivity(self.covariance_prior_, self.covariance_type)
        else:
            self.covariance_prior_ = self.covariance_prior

        psi = np.ravel(_f64(self.covariance_prior_))
        if self.covariance_type == "spherical":
            # scikit-learn takes a number here (or anything that broadcasts); the core one number.
            if psi.size != 1:
                raise ValueError(
                    "The parameter 'spherical covariance_prior' should be a single number, "
                    "but got shape %s" % (np.shape(self.covariance_prior_),)
                )
            _check_precision_positivity(psi, self.covariance_type)
        if self.covariance_prior is None and not _surely_positive_definite(
            psi, self.covariance_type, n_features
        ):
            # Rank-deficient data (fewer samples than features, collinear or constant features):
            # scikit-learn takes the singular default, which the M-step's data term makes
            # definite. The core checks a prior it is given, so it takes this one from the data
            # itself, as the same moments.
            psi = None
        return dict(
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration_prior=float(self.weight_concentration_prior_),
            mean_precision_prior=float(self.mean_precision_prior_),
            mean_prior=_f64(self.mean_prior_).tolist(),
            degrees_of_freedom_prior=float(self.degrees_of_freedom_prior_),
            covariance_prior=None if psi is None else psi.tolist(),
        )

    # ---- the base's hooks ------------------------------------------------------------------

    def _core_args(self, X, sample_weight):
        """The core's arguments for this fit: reg_covar and the resolved priors."""
        return dict(
            reg_covar=float(self.reg_covar),
            variational=self._check_parameters(X, sample_weight),
        )

    def _set_fitted(self, model, dtype):
        # scikit-learn's variational attributes are float64 whatever the data's dtype.
        self._set_mixture(model, np.float64)
        self.weight_concentration_ = model.weight_concentration
        self.mean_precision_ = model.mean_precision
        dof = model.degrees_of_freedom
        self.degrees_of_freedom_ = dof[0] if self.covariance_type == "tied" else dof

    def _core_model(self):
        """The fitted posterior, as it is now, as a core model (float64): its weights follow
        from ``weight_concentration_`` (a tuple (a, b) for the process), as scikit-learn's."""
        concentration = self.weight_concentration_
        if isinstance(concentration, tuple):
            prior_type, (a, b) = "dirichlet_process", concentration
            b = np.ravel(_f64(b)).tolist()
        else:
            prior_type, a, b = "dirichlet_distribution", concentration, None
        posterior = dict(
            weight_concentration_prior_type=prior_type,
            weight_concentration=np.ravel(_f64(a)).tolist(),
            weight_concentration_b=b,
            mean_precision=np.ravel(_f64(self.mean_precision_)).tolist(),
            degrees_of_freedom=np.ravel(_f64(self.degrees_of_freedom_)).tolist(),
        )
        return _core.Model(*self._mixture_args(), posterior=posterior)
