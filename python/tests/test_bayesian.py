"""gmm_gpu.BayesianGaussianMixture against scikit-learn's from the same start, on the CPU and the
GPU; ``init_params`` given as responsibilities or labels, for both estimators; and what the
package adds or decides beyond scikit-learn's own tests (weights, rank-deficient data, warm
starts and attributes set by hand, validation).

scikit-learn is started from responsibilities R through its private ``_initialize(X, R)`` (its
``_initialize_parameters`` monkeypatched, as tests/fixtures/make_sklearn_bayesian.py does): the
start gmm_gpu takes from ``init_params=R``.
"""

import copy
import pickle
import types
import warnings

import numpy as np
import pytest
from conftest import have_gpu
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SklearnBayesianGaussianMixture
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.utils._param_validation import InvalidParameterError

from gmm_gpu import BayesianGaussianMixture, GaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]

# Fits with tol=0 run to max_iter on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FITTED = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]
POSTERIOR = ["mean_precision_", "degrees_of_freedom_"]
PRIORS = [
    "weight_concentration_prior_",
    "mean_precision_prior_",
    "mean_prior_",
    "degrees_of_freedom_prior_",
    "covariance_prior_",
]


def blobs(rng, scale=1.0):
    """Three clusters in 3-D near the origin (as tests/fixtures/make_sklearn_bayesian.py: there
    scikit-learn's uncentred diag and spherical moments agree with the crate's centred ones to
    ~1e-15), one elongated, of unequal sizes."""
    a = rng.normal(size=(50, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 0.7, 0.2], [0.0, 0.0, 0.4]])
    b = rng.normal(size=(35, 3)) * 0.6 + np.array([2.5, -1.0, 0.5])
    c = rng.normal(size=(25, 3)) * 0.9 + np.array([-2.0, 2.0, -1.0])
    return np.vstack([a, b, c]) * scale


def responsibilities(rng, n, k):
    r = rng.random((n, k)) + 0.01
    return r / r.sum(axis=1, keepdims=True)


def sklearn_from(estimator, X, R):
    """A scikit-learn estimator fitted from responsibilities R: its first step the M-step from R."""

    def start(self, X, random_state, xp=None):
        self._initialize(X, R)

    estimator._initialize_parameters = types.MethodType(start, estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


def rel(got, want):
    """The largest difference over the largest magnitude of ``want`` (entries near zero measured
    against the array's scale, as tests/variational.rs measures them)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(np.max(np.abs(want)), 1e-300)
    return float(np.max(np.abs(got - want)) / scale)


def bounds(lower_bounds):
    """scikit-learn's tied lower bounds are 1-element arrays (ours are floats)."""
    return np.ravel(np.asarray(lower_bounds, dtype=float))


def differences(ours, theirs, X, first=0):
    """Every fitted attribute, the lower bounds (scikit-learn's from iteration ``first``) and the
    queries: name -> relative difference."""
    out = {name: rel(getattr(ours, name), getattr(theirs, name)) for name in FITTED + POSTERIOR}
    wc_ours, wc_theirs = ours.weight_concentration_, theirs.weight_concentration_
    assert isinstance(wc_ours, tuple) == isinstance(wc_theirs, tuple)
    out["weight_concentration_"] = rel(np.ravel(wc_ours), np.ravel(wc_theirs))
    out["lower_bound_"] = rel(bounds(ours.lower_bound_), bounds(theirs.lower_bound_))
    out["lower_bounds_"] = rel(bounds(ours.lower_bounds_), bounds(theirs.lower_bounds_)[first:])
    out["score_samples"] = rel(ours.score_samples(X), theirs.score_samples(X))
    out["predict_proba"] = rel(ours.predict_proba(X), theirs.predict_proba(X))
    return out


def assert_close(diffs, tol, what):
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= tol, f"{what}: {worst} differs by {diffs[worst]:.3g} (> {tol:g}); {diffs}"


def compare_bayesian(covariance_type, prior_type, backend, seed=0, iters=30, **params):
    rng = np.random.default_rng(20261207 + seed)
    X = blobs(rng)
    R = responsibilities(rng, X.shape[0], 4)
    common = dict(
        n_components=4,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        max_iter=iters,
        tol=0.0,
        random_state=0,
        **params,
    )
    theirs = sklearn_from(SklearnBayesianGaussianMixture(**common), X, R)
    ours = BayesianGaussianMixture(init_params=R, backend=backend, **common).fit(X)
    return X, ours, theirs


# ---- scikit-learn's numbers from the same responsibilities ---------------------------------


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_cpu_equals_scikit_learn_from_the_same_responsibilities(covariance_type, prior_type):
    X, ours, theirs = compare_bayesian(covariance_type, prior_type, "cpu")
    assert_close(differences(ours, theirs, X), 1e-10, f"{covariance_type} {prior_type}")
    assert ours.n_iter_ == theirs.n_iter_ == 30
    assert ours.converged_ == theirs.converged_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    # The priors are resolved as scikit-learn resolves them: the same numbers and types.
    for name in PRIORS:
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)
        assert type(getattr(ours, name)) is type(getattr(theirs, name)), name
    if covariance_type == "tied":
        assert np.ndim(ours.degrees_of_freedom_) == 0


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_given_priors_fit_as_scikit_learn(covariance_type, prior_type):
    d = 3
    psi = {
        "full": np.array([[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 1.0]]),
        "tied": np.array([[2.0, 0.3, 0.1], [0.3, 1.5, -0.2], [0.1, -0.2, 1.0]]),
        "diag": np.array([2.0, 1.5, 0.5]),
        "spherical": 0.7,
    }[covariance_type]
    X, ours, theirs = compare_bayesian(
        covariance_type,
        prior_type,
        "cpu",
        seed=1,
        weight_concentration_prior=0.05,
        mean_precision_prior=0.3,
        mean_prior=np.array([0.5, -0.2, 0.1]),
        degrees_of_freedom_prior=d + 1.5,
        covariance_prior=psi,
        reg_covar=1e-4,
    )
    assert_close(differences(ours, theirs, X), 1e-10, f"{covariance_type} {prior_type}")
    for name in PRIORS:
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gpu_equals_scikit_learn_within_float32(covariance_type, prior_type):
    have_gpu()
    X, ours, theirs = compare_bayesian(covariance_type, prior_type, "gpu")
    assert ours.backend_ == "gpu"
    assert_close(differences(ours, theirs, X), 1e-3, f"gpu {covariance_type} {prior_type}")


def test_a_warm_start_continues_from_the_attributes():
    """5 iterations, then 25 more from the stored attributes, are scikit-learn's 30."""
    rng = np.random.default_rng(3)
    X = blobs(rng)
    R = responsibilities(rng, X.shape[0], 4)
    for prior_type in PRIOR_TYPES:
        theirs = sklearn_from(
            SklearnBayesianGaussianMixture(
                n_components=4, weight_concentration_prior_type=prior_type, max_iter=30, tol=0
            ),
            X,
            R,
        )
        ours = BayesianGaussianMixture(
            n_components=4,
            weight_concentration_prior_type=prior_type,
            max_iter=5,
            tol=0,
            init_params=R,
            warm_start=True,
        ).fit(X)
        ours.set_params(max_iter=25).fit(X)
        # Our lower_bounds_ are the second fit's 25.
        assert_close(differences(ours, theirs, X, first=5), 1e-10, prior_type)
        assert ours.n_iter_ == 25


def test_set_attributes_drive_predictions_as_in_scikit_learn():
    """Predictions use the posterior as the attributes hold it, as scikit-learn's do."""
    rng = np.random.default_rng(4)
    X = blobs(rng)
    for prior_type in PRIOR_TYPES:
        for covariance_type in COVARIANCE_TYPES:
            params = dict(
                n_components=3,
                covariance_type=covariance_type,
                weight_concentration_prior_type=prior_type,
                random_state=0,
            )
            theirs = SklearnBayesianGaussianMixture(**params).fit(X)
            ours = BayesianGaussianMixture(**params, max_iter=2).fit(X)
            for name in FITTED + POSTERIOR + ["weight_concentration_"]:
                setattr(ours, name, copy.deepcopy(getattr(theirs, name)))
            assert rel(ours.score_samples(X), theirs.score_samples(X)) <= 1e-12
            assert rel(ours.predict_proba(X), theirs.predict_proba(X)) <= 1e-12
            np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_the_first_m_step_relates_the_covariance_types_as_in_scikit_learn():
    """scikit-learn's test_compare_covar_type (removed from the vendored tests for its private
    calls) through the public API: after the M-step from the same responsibilities (max_iter=0),
    tied = the mean of the full covariances, diag = their diagonals, spherical = the diagonals'
    means, each times its degrees of freedom."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2)) * 7
    R = responsibilities(np.random.default_rng(0), len(X), 6)
    for prior_type in PRIOR_TYPES:
        fits = {
            t: BayesianGaussianMixture(
                n_components=6,
                covariance_type=t,
                weight_concentration_prior_type=prior_type,
                max_iter=0,
                init_params=R,
            ).fit(X)
            for t in COVARIANCE_TYPES
        }
        full = fits["full"].covariances_ * fits["full"].degrees_of_freedom_[:, None, None]
        tied = fits["tied"].covariances_ * fits["tied"].degrees_of_freedom_
        np.testing.assert_allclose(tied, full.mean(0), rtol=1e-12)
        diag = fits["diag"].covariances_ * fits["diag"].degrees_of_freedom_[:, None]
        np.testing.assert_allclose(diag, np.array([np.diag(c) for c in full]), rtol=1e-12)
        spherical = fits["spherical"].covariances_ * fits["spherical"].degrees_of_freedom_
        np.testing.assert_allclose(spherical, diag.mean(1), rtol=1e-12)


# ---- init_params as responsibilities or labels -------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_mixture_from_responsibilities_equals_scikit_learn(covariance_type):
    rng = np.random.default_rng(5)
    X = blobs(rng)
    R = responsibilities(rng, X.shape[0], 3)
    common = dict(covariance_type=covariance_type, max_iter=30, tol=0.0)
    theirs = sklearn_from(SklearnGaussianMixture(3, **common), X, R)
    ours = GaussianMixture(3, init_params=R, **common).fit(X)
    diffs = {name: rel(getattr(ours, name), getattr(theirs, name)) for name in FITTED}
    diffs["lower_bound_"] = rel(ours.lower_bound_, theirs.lower_bound_)
    diffs["lower_bounds_"] = rel(ours.lower_bounds_, theirs.lower_bounds_)
    diffs["score_samples"] = rel(ours.score_samples(X), theirs.score_samples(X))
    diffs["predict_proba"] = rel(ours.predict_proba(X), theirs.predict_proba(X))
    assert_close(diffs, 1e-10, covariance_type)
    assert ours.n_iter_ == theirs.n_iter_ == 30


@pytest.mark.parametrize("Estimator", [GaussianMixture, BayesianGaussianMixture])
def test_labels_start_as_their_one_hot_responsibilities(Estimator):
    rng = np.random.default_rng(6)
    X = blobs(rng)
    labels = rng.integers(0, 3, size=len(X))
    one_hot = np.eye(3)[labels]
    for covariance_type in COVARIANCE_TYPES:
        params = dict(n_components=3, covariance_type=covariance_type, max_iter=10, tol=0)
        a = Estimator(init_params=labels, **params).fit(X)
        b = Estimator(init_params=one_hot, **params).fit(X)
        for name in FITTED:
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-14)
        # A list of ints and float32 responsibilities are taken too.
        c = Estimator(init_params=labels.tolist(), **params).fit(X)
        np.testing.assert_array_equal(c.means_, a.means_)
        d = Estimator(init_params=one_hot.astype(np.float32), **params).fit(X)
        np.testing.assert_array_equal(d.means_, b.means_)


@pytest.mark.parametrize("Estimator", [GaussianMixture, BayesianGaussianMixture])
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda n, k: np.zeros(n + 1, dtype=int), r"'init_params' should have the shape of \(40,\)"),
        (lambda n, k: np.full(n, 3), r"'init_params' given as labels should be in \[0, 3\)"),
        (lambda n, k: np.full(n, -1), r"'init_params' given as labels should be in \[0, 3\)"),
        (lambda n, k: np.zeros(n), "'init_params' given as a 1-D array should hold integer"),
        (lambda n, k: np.full((n, k + 1), 0.25), r"'init_params' should have the shape of \(40, 3\)"),
        (lambda n, k: np.full((n, k), 0.5), "'init_params' given as responsibilities should have rows summing to 1"),
        (lambda n, k: np.tile([1.5, -0.5, 0.0], (n, 1)), "'init_params' given as responsibilities should be non-negative"),
        (lambda n, k: np.where(np.arange(n * k).reshape(n, k) == 4, np.nan, 1 / 3), "init_params contains NaN"),
        (lambda n, k: np.full((n, k, 1), 1 / 3), r"'init_params' should be one of .* got an array of shape \(40, 3, 1\)"),
    ],
)
def test_bad_init_params_arrays_raise_value_errors_naming_it(Estimator, make, match):
    X = np.random.RandomState(0).normal(size=(40, 2))
    with pytest.raises(ValueError, match=match):
        Estimator(n_components=3, init_params=make(40, 3)).fit(X)


@pytest.mark.parametrize("Estimator", [GaussianMixture, BayesianGaussianMixture])
def test_init_params_arrays_validate_clone_and_warm_start(Estimator):
    X = np.random.RandomState(0).normal(size=(40, 2))
    labels = np.arange(40) % 2
    est = Estimator(n_components=2, init_params=labels, warm_start=True, max_iter=3)
    np.testing.assert_array_equal(clone(est).init_params, labels)
    est.fit(X)
    # A warm start continues from the fit and ignores init_params, which may then be anything.
    est.set_params(init_params=np.zeros((5, 5))).fit(X)
    assert est.n_iter_ == 3
    with pytest.raises(InvalidParameterError, match="init_params"):
        Estimator(init_params="bogus").fit(X)


# ---- beyond scikit-learn: weights, rank-deficient data, float32, pickling -----------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_a_weight_of_two_equals_a_duplicated_row(covariance_type):
    rng = np.random.default_rng(7)
    X = blobs(rng)
    w = rng.integers(0, 4, size=len(X))
    R = responsibilities(rng, len(X), 4)
    params = dict(n_components=4, covariance_type=covariance_type, tol=0, max_iter=20)
    weighted = BayesianGaussianMixture(init_params=R, **params).fit(X, sample_weight=w)
    repeated = BayesianGaussianMixture(init_params=np.repeat(R, w, axis=0), **params)
    repeated.fit(np.repeat(X, w, axis=0))
    for name in FITTED + POSTERIOR + PRIORS:
        np.testing.assert_allclose(
            getattr(weighted, name), getattr(repeated, name), rtol=1e-9, atol=1e-11, err_msg=name
        )
    np.testing.assert_allclose(weighted.lower_bound_, repeated.lower_bound_, rtol=1e-9)


def test_unit_weights_change_nothing():
    rng = np.random.default_rng(8)
    X = blobs(rng)
    R = responsibilities(rng, len(X), 3)
    for covariance_type in COVARIANCE_TYPES:
        params = dict(n_components=3, covariance_type=covariance_type, init_params=R, max_iter=10)
        plain = BayesianGaussianMixture(**params).fit(X)
        ones = BayesianGaussianMixture(**params).fit(X, sample_weight=np.ones(len(X)))
        for name in FITTED + POSTERIOR + PRIORS:
            np.testing.assert_allclose(
                getattr(ones, name), getattr(plain, name), rtol=1e-12, atol=1e-14, err_msg=name
            )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_rank_deficient_data_fits_as_scikit_learn(covariance_type):
    """Fewer samples than features and a constant feature: the default covariance prior is
    singular, which scikit-learn takes (the M-step's data term makes the posterior definite)."""
    rng = np.random.default_rng(9)
    X = rng.normal(size=(12, 20)) * 0.5
    X[:, 3] = 0.25
    R = responsibilities(rng, len(X), 2)
    common = dict(n_components=2, covariance_type=covariance_type, max_iter=10, tol=0)
    theirs = sklearn_from(SklearnBayesianGaussianMixture(**common), X, R)
    ours = BayesianGaussianMixture(init_params=R, **common).fit(X)
    np.testing.assert_array_equal(ours.covariance_prior_, theirs.covariance_prior_)
    # The core takes the singular prior from the data itself: the same moments, summed in
    # another order.
    assert_close(differences(ours, theirs, X), 1e-9, covariance_type)


def test_float32_data_gives_scikit_learns_float64_attributes():
    rng = np.random.default_rng(10)
    X = blobs(rng).astype(np.float32)
    R = responsibilities(rng, len(X), 3)
    common = dict(n_components=3, max_iter=10, tol=0)
    theirs = sklearn_from(SklearnBayesianGaussianMixture(**common), X, R)
    ours = BayesianGaussianMixture(init_params=R, **common).fit(X)
    for name in FITTED + POSTERIOR:
        assert getattr(ours, name).dtype == getattr(theirs, name).dtype == np.float64, name
    for name in PRIORS:
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)
        assert np.asarray(getattr(ours, name)).dtype == np.asarray(getattr(theirs, name)).dtype
    assert ours.predict_proba(X).dtype == np.float64
    # scikit-learn computes in float32 where X is; the core in float64 throughout.
    assert_close(differences(ours, theirs, X), 1e-5, "float32")


def test_pickle_deepcopy_clone_and_sample():
    X = blobs(np.random.default_rng(11))
    bgm = BayesianGaussianMixture(n_components=3, random_state=0).fit(X)
    for copied in (pickle.loads(pickle.dumps(bgm)), copy.deepcopy(bgm)):
        np.testing.assert_array_equal(copied.score_samples(X), bgm.score_samples(X))
        assert isinstance(copied.weight_concentration_, tuple)
    fresh = clone(bgm)
    assert not hasattr(fresh, "weights_") and fresh.get_params() == bgm.get_params()
    Xs, ys = bgm.sample(500)
    assert Xs.shape == (500, 3) and ys.shape == (500,)
    np.testing.assert_array_equal(bgm.sample(500)[0], Xs)  # an int random_state repeats


def test_the_constructor_is_scikit_learns_plus_the_backend():
    import inspect

    ours = inspect.signature(BayesianGaussianMixture).parameters
    theirs = inspect.signature(SklearnBayesianGaussianMixture).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for name, p in theirs.items():
        assert ours[name].default == p.default and ours[name].kind == p.kind, name
    assert list(ours)[len(theirs) :] == ["backend", "precision"]


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(degrees_of_freedom_prior=1.0), "'degrees_of_freedom_prior' should be greater than 2"),
        (dict(mean_prior=[0.0, 1.0]), r"The parameter 'means' should have the shape of \(3,\)"),
        (dict(covariance_prior=np.eye(2)), r"'full covariance_prior' should have the shape"),
        (dict(covariance_prior=-np.eye(3)), "'full precision' should be symmetric, positive-definite"),
        (dict(covariance_type="diag", covariance_prior=[1.0, -1.0, 1.0]), "'diag precision' should be positive"),
        (dict(covariance_type="spherical", covariance_prior=[1.0, 2.0]), "'spherical covariance_prior' should be a single number"),
        (dict(degrees_of_freedom_prior=np.inf), "degrees_of_freedom_prior"),
    ],
)
def test_bad_priors_raise_value_errors_as_scikit_learn(params, match):
    X = blobs(np.random.default_rng(12))
    with pytest.raises(ValueError, match=match):
        BayesianGaussianMixture(n_components=2, **params).fit(X)
