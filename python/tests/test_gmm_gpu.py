"""gmm_gpu's own promises beyond scikit-learn's tests: sample weights, the GPU path in float32,
array layouts, pickling, scikit-learn's numbers from the same start, verbose output, the GIL and
Ctrl-C, and the adapter list."""

import _thread
import copy
import io
import json
import pathlib
import pickle
import re
import signal
import threading
import time
from contextlib import redirect_stdout

import numpy as np
import pytest
from conftest import have_gpu
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils._testing import assert_allclose

import gmm_gpu
from gmm_gpu import GaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]

# Fits with tol=0 run to max_iter on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blobs(n=600, d=3, k=3, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    centres = rng.uniform(-8, 8, size=(k, d))
    X = centres[rng.randint(k, size=n)] + rng.normal(size=(n, d))
    return X.astype(dtype)


def same_start(X, k, covariance_type, seed=0):
    """weights_init, means_init and precisions_init from one k-means initialisation."""
    init = GaussianMixture(k, covariance_type=covariance_type, max_iter=0, random_state=seed)
    init.fit(X)
    return dict(
        weights_init=init.weights_,
        means_init=init.means_,
        precisions_init=init.precisions_,
    )


FITTED = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]


def assert_same_fit(a, b, rtol=1e-7, atol=1e-9):
    for name in FITTED:
        assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=atol, err_msg=name)
    assert_allclose(a.lower_bound_, b.lower_bound_, rtol=rtol, atol=atol)


# ---- sample weights -------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_a_weight_of_two_equals_a_duplicated_row(covariance_type):
    X = blobs(300, seed=1)
    w = np.random.RandomState(2).randint(0, 4, size=len(X))
    start = same_start(X, 3, covariance_type)
    params = dict(covariance_type=covariance_type, tol=0, max_iter=20, **start)
    weighted = GaussianMixture(3, **params).fit(X, sample_weight=w)
    repeated = GaussianMixture(3, **params).fit(np.repeat(X, w, axis=0))
    assert_same_fit(weighted, repeated, rtol=1e-9, atol=1e-11)
    assert weighted.n_iter_ == repeated.n_iter_ == 20


def test_unit_weights_change_nothing_and_bad_weights_are_refused():
    X = blobs(200, seed=3)
    plain = GaussianMixture(2, random_state=0).fit(X)
    ones = GaussianMixture(2, random_state=0).fit(X, sample_weight=np.ones(len(X)))
    assert_same_fit(plain, ones, rtol=0, atol=0)
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        GaussianMixture(2).fit(X, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="sample_weight.shape"):
        GaussianMixture(2).fit(X, sample_weight=np.ones(len(X) + 1))


# ---- scikit-learn's numbers -----------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_scikit_learns_numbers_from_the_same_start(covariance_type):
    X = blobs(500, d=4, seed=4)
    start = same_start(X, 3, covariance_type)
    params = dict(covariance_type=covariance_type, tol=0, max_iter=25, **start)
    ours = GaussianMixture(3, **params).fit(X)
    theirs = SklearnGaussianMixture(3, **params).fit(X)
    assert_same_fit(ours, theirs, rtol=1e-8, atol=1e-10)
    assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-10)
    assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-10)
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.n_iter_ == theirs.n_iter_ and ours.converged_ == theirs.converged_
    assert ours._n_parameters() == theirs._n_parameters()
    assert_allclose(ours.bic(X), theirs.bic(X), rtol=1e-10)
    assert_allclose(ours.aic(X), theirs.aic(X), rtol=1e-10)


def test_set_attributes_drive_predictions_as_in_scikit_learn():
    X = blobs(300, seed=5)
    theirs = SklearnGaussianMixture(3, random_state=0).fit(X)
    ours = GaussianMixture(3, random_state=1).fit(X)
    for name in FITTED:
        setattr(ours, name, getattr(theirs, name))
    assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-10)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_an_int_random_state_is_the_seed_and_repeats_the_fit():
    X = blobs(400, seed=6)
    a = GaussianMixture(3, random_state=7).fit(X)
    b = GaussianMixture(3, random_state=7).fit(X)
    assert_same_fit(a, b, rtol=0, atol=0)
    np.testing.assert_array_equal(a.sample(50)[0], b.sample(50)[0])


# ---- the GPU path ---------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_data_fits_on_the_gpu_in_float32(covariance_type):
    have_gpu()
    X = blobs(2000, d=4, seed=7, dtype=np.float32)
    start = same_start(X.astype(np.float64), 3, covariance_type)
    params = dict(covariance_type=covariance_type, tol=0, max_iter=30, **start)
    gpu = GaussianMixture(3, backend="gpu", **params).fit(X)
    assert gpu.backend_ == "gpu" and gpu.adapter_
    for name in FITTED:
        assert getattr(gpu, name).dtype == np.float32, name
    assert gpu.score_samples(X).dtype == np.float32
    assert gpu.predict_proba(X).dtype == np.float32
    cpu = GaussianMixture(3, backend="cpu", **params).fit(X.astype(np.float64))
    assert cpu.backend_ == "cpu" and cpu.adapter_ is None
    assert_same_fit(gpu, cpu, rtol=1e-4, atol=1e-5)


def test_the_gpu_backend_takes_weights_and_auto_falls_back_to_the_cpu_on_software():
    have_gpu()
    X = blobs(1000, seed=8, dtype=np.float32)
    w = np.random.RandomState(9).uniform(0, 2, size=len(X))
    start = same_start(X.astype(np.float64), 3, "full")
    gpu = GaussianMixture(3, backend="gpu", tol=0, max_iter=20, **start).fit(X, sample_weight=w)
    cpu = GaussianMixture(3, tol=0, max_iter=20, **start).fit(X.astype(np.float64), sample_weight=w)
    assert_same_fit(gpu, cpu, rtol=1e-4, atol=1e-5)
    auto = GaussianMixture(3, backend="auto", random_state=0).fit(X)
    hardware = [a for a in gmm_gpu.adapters() if a["device_type"] != "Cpu"]
    assert auto.backend_ == ("gpu" if hardware else "cpu")


# What each precision runs: exact is two-float, or native f64 where the device has it.
USED = {"fast": {"fast"}, "exact": {"exact (two-float)", "exact (f64)"}}


@pytest.mark.parametrize("precision", ["fast", "exact"])
def test_fast_and_exact_gpu_fits_agree_with_the_cpu_and_say_what_ran(precision):
    have_gpu()
    X = blobs(1000, d=3, seed=15, dtype=np.float32)
    start = same_start(X.astype(np.float64), 3, "full")
    params = dict(tol=0, max_iter=20, **start)
    gpu = GaussianMixture(3, backend="gpu", precision=precision, **params).fit(X)
    assert gpu.precision == precision and gpu.get_params()["precision"] == precision
    # Only auto switches, so fast and exact run as asked from the first pass to the last.
    record = gpu.gpu_precision_
    assert set(record) == {"requested", "used", "switches", "exact_components"}
    assert record["requested"] == precision and record["switches"] == []
    assert record["exact_components"] == []
    assert record["used"] in USED[precision]
    cpu = GaussianMixture(3, backend="cpu", precision=precision, **params).fit(X.astype(np.float64))
    assert cpu.gpu_precision_ is None
    assert_same_fit(gpu, cpu, rtol=1e-4, atol=1e-5)
    assert gpu.n_iter_ == cpu.n_iter_ == 20


def test_the_default_precision_is_auto():
    have_gpu()
    X = blobs(300, seed=16, dtype=np.float32)
    gm = GaussianMixture(2, backend="gpu", max_iter=5, random_state=0).fit(X)
    assert gm.precision == "auto"
    record = gm.gpu_precision_
    assert record["requested"] == "auto"
    assert record["used"] in USED["fast"] | USED["exact"]
    # A switch to exact always says why.
    assert (record["used"] == "fast") == (record["switches"] == [])


# ---- array layouts --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fortran_ordered_strided_and_read_only_memmapped_data(dtype, tmp_path):
    X = blobs(401, seed=10, dtype=dtype)
    base = GaussianMixture(3, random_state=0).fit(X)
    path = tmp_path / "x.npy"
    np.save(path, X)
    wide = np.zeros((len(X), 2 * X.shape[1]), dtype=dtype)
    wide[:, ::2] = X
    tall = np.zeros((2 * len(X), X.shape[1]), dtype=dtype)
    tall[::2] = X
    layouts = {
        "fortran": np.asfortranarray(X),
        "column stride": wide[:, ::2],
        "row stride": tall[::2],
        "read-only memmap": np.load(path, mmap_mode="r"),
    }
    for name, Y in layouts.items():
        fitted = GaussianMixture(3, random_state=0).fit(Y)
        assert_same_fit(fitted, base, rtol=0, atol=0)
        np.testing.assert_array_equal(fitted.score_samples(Y), base.score_samples(X), err_msg=name)
        np.testing.assert_array_equal(fitted.predict(Y), base.predict(X), err_msg=name)
    assert not layouts["read-only memmap"].flags.writeable


# ---- the estimator's life -------------------------------------------------------------------


def test_pickle_deepcopy_and_clone():
    X = blobs(300, seed=11)
    gm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    for other in (pickle.loads(pickle.dumps(gm)), copy.deepcopy(gm)):
        assert_same_fit(other, gm, rtol=0, atol=0)
        np.testing.assert_array_equal(other.predict_proba(X), gm.predict_proba(X))
        assert other.get_params() == gm.get_params()
    fresh = clone(gm)
    assert fresh.get_params() == gm.get_params() and not hasattr(fresh, "means_")
    with pytest.raises(NotFittedError, match="This GaussianMixture instance is not fitted yet"):
        fresh.predict(X)


def test_parameters_are_validated_as_in_scikit_learn():
    X = blobs(50, seed=12)
    with pytest.raises(InvalidParameterError, match="The 'backend' parameter"):
        GaussianMixture(backend="tpu").fit(X)
    with pytest.raises(InvalidParameterError, match="The 'precision' parameter"):
        GaussianMixture(precision="double").fit(X)
    with pytest.raises(InvalidParameterError, match="The 'n_components' parameter"):
        GaussianMixture(n_components=0).fit(X)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        GaussianMixture().fit(np.full((5, 2), np.nan))


def test_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(blobs(100, seed=13), columns=["a", "b", "c"])
    gm = GaussianMixture(2, random_state=0).fit(X)
    assert list(gm.feature_names_in_) == ["a", "b", "c"] and gm.n_features_in_ == 3
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        gm.predict(X.to_numpy())


def test_verbose_prints_as_scikit_learn_does():
    X = blobs(300, seed=14)
    out = io.StringIO()
    with redirect_stdout(out):
        GaussianMixture(3, n_init=2, verbose=2, verbose_interval=1, random_state=0).fit(X)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Initialization 0"
    # The first change is from -inf.
    assert re.fullmatch(r"  Iteration 1\t time lapse \d+\.\d{5}s\t ll change inf", lines[1]), lines[1]
    assert re.fullmatch(r"  Iteration 2\t time lapse \d+\.\d{5}s\t ll change -?\d+\.\d{5}", lines[2]), lines[2]
    end = lines[lines.index("Initialization 1") - 1]
    assert re.fullmatch(r"Initialization converged\. time lapse \d+\.\d{5}s\t lower bound -?\d+\.\d{5}\.", end), end
    out = io.StringIO()
    with redirect_stdout(out):
        GaussianMixture(3, tol=0, max_iter=3, verbose=1, verbose_interval=2, random_state=0).fit(X)
    assert out.getvalue().splitlines() == [
        "Initialization 0",
        "  Iteration 2",
        "Initialization did not converge.",
    ]


# ---- the GIL and Ctrl-C ---------------------------------------------------------------------


def long_fit():
    """A fit of many seconds: 200,000 x 8, 8 full components, 10,000 iterations."""
    X = blobs(200_000, d=8, k=8, seed=15)
    return X, GaussianMixture(8, tol=0, max_iter=10_000, random_state=0)


@pytest.fixture
def sigint_raises():
    """Python's own SIGINT handler for the test: a process started in the background (nohup, some
    CI runners) inherits SIGINT ignored, and then Python, like the shell, lets Ctrl-C pass."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def count_for(seconds):
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n


def test_a_fit_releases_the_gil(sigint_raises):
    X, gm = long_fit()
    alone = count_for(0.5)
    beside = []

    def count_beside_the_fit():
        time.sleep(0.5)  # past the k-means initialisation
        beside.append(count_for(0.5))

    counter = threading.Thread(target=count_beside_the_fit)
    counter.start()
    threading.Timer(1.5, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        gm.fit(X)
    counter.join()
    # Python ran beside the fit at a good share of its own pace (the share the fit's worker
    # threads leave on this machine's cores); holding the GIL would leave it next to nothing.
    assert beside[0] > 0.2 * alone, (beside[0], alone)


def test_ctrl_c_stops_a_long_fit(sigint_raises):
    X, gm = long_fit()
    threading.Timer(1.0, _thread.interrupt_main).start()
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        gm.fit(X)
    assert time.perf_counter() - start < 10, "the interrupt was not seen between iterations"
    assert not hasattr(gm, "means_")


# ---- MAP fits under mclust's conjugate prior ------------------------------------------------

MCLUST = json.loads(
    (pathlib.Path(__file__).parents[2] / "tests" / "fixtures" / "mclust_map.json").read_text()
)


def mclust_start(case):
    """mclust's start as scikit-learn's weights_init, means_init and precisions_init."""
    k, cov = case["n_components"], case["covariance_type"]
    means = np.array(case["start"]["means"], dtype=float)
    d = means.shape[1]
    sigma = np.array(case["start"]["covariances"], dtype=float).reshape(k, d, d)
    precisions = {
        "full": lambda: np.linalg.inv(sigma),
        "tied": lambda: np.linalg.inv(sigma[0]),
        "diag": lambda: 1 / np.diagonal(sigma, axis1=1, axis2=2),
        "spherical": lambda: 1 / sigma[:, 0, 0],
    }[cov]()
    return dict(
        weights_init=np.array(case["start"]["weights"], dtype=float),
        means_init=means,
        precisions_init=precisions,
    )


@pytest.mark.parametrize(
    "case", MCLUST["cases"], ids=[f"{c['data']}-{c['model']}" for c in MCLUST["cases"]]
)
def test_the_default_prior_fits_as_r_mclust(case):
    """prior="default" from mclust's start: mclust 6.0's defaultPrior and its MAP-EM weights, means
    and covariances after 1, 5 and 30 iterations (tests/fixtures/make_mclust_fixtures.R)."""
    X = np.array(MCLUST["data"][case["data"]], dtype=float)
    k, cov, d = case["n_components"], case["covariance_type"], X.shape[1]
    for run in case["runs"]:
        gm = GaussianMixture(
            k, covariance_type=cov, prior="default", tol=0, max_iter=run["iterations"],
            **mclust_start(case),
        ).fit(X)
        want = case["prior"]
        assert gm.prior_["shrinkage"] == want["shrinkage"] and gm.prior_["dof"] == want["dof"]
        assert gm.prior_["weights"] is None
        assert_allclose(gm.prior_["mean"], want["mean"], rtol=1e-13)
        assert_allclose(np.ravel(gm.prior_["scale"]), np.ravel(want["scale"]), rtol=1e-12)
        # Entries near zero (off-diagonals) against the array's largest, as tests/mclust_map.rs.
        close = lambda got, want: assert_allclose(
            got, want, rtol=1e-10, atol=1e-10 * np.max(np.abs(want))
        )
        close(gm.weights_, run["weights"])
        close(gm.means_, np.reshape(run["means"], (k, d)))
        sigma = np.reshape(run["covariances"], (k, d, d))
        expected = {
            "full": sigma,
            "tied": sigma[0],
            "diag": np.diagonal(sigma, axis1=1, axis2=2),
            "spherical": sigma[:, 0, 0],
        }[cov]
        close(gm.covariances_, expected)
        # mclust's loglik is the log-likelihood of its final parameters.
        assert_allclose(gm.score(X) * len(X), run["loglik"], rtol=1e-10)


def mixture_log_density(X, weights, means, covs):
    """log w_k N(x | μ_k, Σ_k), (n, K), by scipy."""
    from scipy.stats import multivariate_normal

    return np.column_stack(
        [np.log(w) + multivariate_normal(m, c).logpdf(X) for w, m, c in zip(weights, means, covs)]
    )


def covariance_matrices(precisions, covariance_type, k, d):
    """K d × d covariance matrices from scikit-learn's precisions of a covariance type."""
    p = np.asarray(precisions, dtype=float)
    return {
        "full": lambda: np.linalg.inv(p),
        "tied": lambda: np.repeat(np.linalg.inv(p)[None], k, axis=0),
        "diag": lambda: np.array([np.diag(1 / row) for row in p]),
        "spherical": lambda: np.array([np.eye(d) / v for v in p]),
    }[covariance_type]()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_the_default_prior_comes_from_the_data(covariance_type):
    """mclust's defaultPrior by hand: κ = 0.01, the column means, ν = d + 2, the scale
    cov(X)/K^(2/d) (full, tied) or the mean column variance over K^(2/d) (diag, spherical). The
    lower bound is the log-posterior, not the log-likelihood, whose value after one iteration is
    the start's mean log-likelihood (scipy's)."""
    X = blobs(400, d=3, k=3, seed=21)
    k, d = 3, 3
    start = same_start(X, k, covariance_type)
    gm = GaussianMixture(
        k, covariance_type=covariance_type, prior="default", tol=0, max_iter=1, **start
    ).fit(X)
    p = gm.prior_
    assert p["shrinkage"] == 0.01 and p["dof"] == d + 2 and p["weights"] is None
    assert_allclose(p["mean"], X.mean(0), rtol=1e-12)
    cov = np.cov(X.T)
    if covariance_type in ("full", "tied"):
        assert p["scale"].shape == (d, d)
        assert_allclose(p["scale"], cov / k ** (2 / d), rtol=1e-10)
    else:
        assert_allclose(p["scale"], np.trace(cov) / d / k ** (2 / d), rtol=1e-10)
    assert gm.lower_bound_ != gm.log_likelihood_
    covs = covariance_matrices(start["precisions_init"], covariance_type, k, d)
    logp = mixture_log_density(X, start["weights_init"], start["means_init"], covs)
    assert_allclose(gm.log_likelihood_, np.mean(np.logaddexp.reduce(logp, axis=1)), rtol=1e-12)
    # Without a prior there is no prior_, and the lower bound is the log-likelihood.
    ml = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)
    assert ml.prior_ is None and ml.log_likelihood_ == ml.lower_bound_


def test_a_dict_prior_sets_each_hyperparameter():
    """One MAP iteration from a start with every hyperparameter given, against the M-step by hand
    (Fraley & Raftery 2007) from scipy's responsibilities: π_k = (n_k + α − 1)/(n + K(α − 1)),
    μ_k = (n_k x̄_k + κ μ_P)/(n_k + κ), Σ_k = (Λ + W_k + κ n_k/(n_k + κ) b_k b_kᵀ)/(ν + n_k + d + 2)
    with b_k = x̄_k − μ_P."""
    X = blobs(300, d=2, k=3, seed=22)
    k, d = 3, 2
    start = same_start(X, k, "full")
    kappa, mu_p, nu, alpha = 0.5, np.array([1.0, -2.0]), 6.5, 3.0
    lam = np.array([[2.0, 0.3], [0.3, 1.0]])
    prior = dict(shrinkage=kappa, mean=mu_p, dof=nu, scale=lam, weights=alpha)
    gm = GaussianMixture(k, prior=prior, tol=0, max_iter=1, **start).fit(X)
    assert gm.prior_["shrinkage"] == kappa and gm.prior_["dof"] == nu
    assert gm.prior_["weights"] == alpha
    np.testing.assert_array_equal(gm.prior_["mean"], mu_p)
    np.testing.assert_array_equal(gm.prior_["scale"], lam)

    logp = mixture_log_density(
        X, start["weights_init"], start["means_init"], np.linalg.inv(start["precisions_init"])
    )
    resp = np.exp(logp - np.logaddexp.reduce(logp, axis=1, keepdims=True))
    nk = resp.sum(0)
    xbar = resp.T @ X / nk[:, None]
    weights = (nk + alpha - 1) / (len(X) + k * (alpha - 1))
    means = (nk[:, None] * xbar + kappa * mu_p) / (nk + kappa)[:, None]
    covs = []
    for j in range(k):
        c = X - xbar[j]
        w = (resp[:, j, None] * c).T @ c
        b = xbar[j] - mu_p
        shrunk = kappa * nk[j] / (nk[j] + kappa) * np.outer(b, b)
        covs.append((lam + w + shrunk) / (nu + nk[j] + d + 2))
    assert_allclose(gm.weights_, weights, rtol=1e-10)
    assert_allclose(gm.means_, means, rtol=1e-10)
    assert_allclose(gm.covariances_, np.array(covs), rtol=1e-9)

    # None values and a partial dict leave the rest to the data; "default" is the empty dict.
    a = GaussianMixture(k, prior="default", random_state=0).fit(X)
    b = GaussianMixture(k, prior=dict.fromkeys(prior), random_state=0).fit(X)
    c = GaussianMixture(k, prior={"dof": None}, random_state=0).fit(X)
    assert_same_fit(a, b, rtol=0, atol=0)
    assert_same_fit(a, c, rtol=0, atol=0)
    # A number for diag and spherical scales; a 0-d array too.
    for covariance_type in ("diag", "spherical"):
        gm = GaussianMixture(
            k, covariance_type=covariance_type, prior={"scale": np.float64(0.7)}, random_state=0
        ).fit(X)
        assert gm.prior_["scale"] == 0.7


def test_reg_covar_defaults_to_zero_with_a_prior():
    """reg_covar=None (the default) is 0 with a prior and scikit-learn's 1e-6 without one; a
    number is used as given either way, and clone and get_params keep the None."""
    X = blobs(300, seed=23)
    fit = lambda **kw: GaussianMixture(3, random_state=0, tol=0, max_iter=10, **kw).fit(X)
    assert GaussianMixture().get_params()["reg_covar"] is None
    assert_same_fit(fit(prior="default"), fit(prior="default", reg_covar=0), rtol=0, atol=0)
    regularised = fit(prior="default", reg_covar=1e-2)
    assert not np.allclose(regularised.covariances_, fit(prior="default").covariances_)
    assert_same_fit(fit(), fit(reg_covar=1e-6), rtol=0, atol=0)
    gm = GaussianMixture(3, prior="default")
    assert clone(gm).get_params()["reg_covar"] is None and clone(gm).prior == "default"
    gm = pickle.loads(pickle.dumps(fit(prior={"weights": 2.0})))
    assert gm.prior_["weights"] == 2.0


@pytest.mark.parametrize(
    "prior, covariance_type, match",
    [
        ({"shrinkage": 0}, "full", r"prior\['shrinkage'\] must be a finite number > 0"),
        ({"shrinkage": np.inf}, "full", r"prior\['shrinkage'\] must be a finite number > 0"),
        ({"shrinkage": "a"}, "full", r"prior\['shrinkage'\] must be a finite number"),
        ({"dof": 1.5}, "full", r"prior\['dof'\] \(with 3 features\) must be a finite number > 2"),
        ({"weights": 0.5}, "full", r"prior\['weights'\] must be a finite number >= 1"),
        ({"mean": [1.0, 2.0]}, "full", r"The parameter 'prior\['mean'\]' should have the shape"),
        ({"mean": [1.0, np.nan, 2.0]}, "full", r"Input prior\['mean'\] contains NaN"),
        ({"mean": 1.0}, "full", r"The parameter 'prior\['mean'\]' should have the shape"),
        ({"scale": 2.0}, "tied", r"The parameter 'prior\['scale'\]' should have the shape"),
        ({"scale": np.full((3, 3), np.inf)}, "full", r"Input prior\['scale'\] contains infinity"),
        ({"scale": np.eye(2)}, "full", r"The parameter 'prior\['scale'\]' should have the shape"),
        ({"scale": -np.eye(3)}, "tied", r"prior\['scale'\] should be symmetric, positive-def"),
        ({"scale": np.eye(3)}, "diag", r"prior\['scale'\] \(one number for covariance_type='diag"),
        ({"scale": 0.0}, "spherical", r"prior\['scale'\] \(one number .*\) must be a finite num"),
        ({"mena": [0.0, 0.0, 0.0]}, "full", r"The 'prior' parameter has unknown key\(s\) 'mena'"),
    ],
)
def test_bad_priors_raise_value_errors_naming_the_hyperparameter(prior, covariance_type, match):
    X = blobs(60, d=3, seed=24)
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2, covariance_type=covariance_type, prior=prior).fit(X)


def test_prior_and_reg_covar_are_validated_as_in_scikit_learn():
    X = blobs(50, seed=25)
    with pytest.raises(InvalidParameterError, match="The 'prior' parameter"):
        GaussianMixture(prior="mclust").fit(X)
    with pytest.raises(InvalidParameterError, match="The 'prior' parameter"):
        GaussianMixture(prior=[0.01]).fit(X)
    with pytest.raises(InvalidParameterError, match="The 'reg_covar' parameter"):
        GaussianMixture(reg_covar=-1.0).fit(X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_a_prior_fits_data_that_is_singular_for_maximum_likelihood(covariance_type):
    """Four distinct points, each repeated 50 times, and five components: maximum likelihood
    without regularisation fails (a component collapses onto one point), and the default prior
    fits, with finite positive-definite covariances and the log-likelihood that score gives
    within tol."""
    distinct = np.array([[0.0, 0.0], [3.0, 0.5], [0.5, 4.0], [4.0, 4.5]])
    X = np.repeat(distinct, 50, axis=0)
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        GaussianMixture(5, covariance_type=covariance_type, reg_covar=0, random_state=0).fit(X)
    gm = GaussianMixture(5, covariance_type=covariance_type, prior="default", random_state=0)
    gm.fit(X)
    assert gm.converged_
    assert np.all(np.isfinite(gm.covariances_))
    precisions = {"full": gm.precisions_, "tied": gm.precisions_[None]}.get(covariance_type)
    if precisions is not None:
        assert np.all(np.linalg.eigvalsh(precisions) > 0)
    else:
        assert np.all(gm.covariances_ > 0)
    assert abs(gm.score(X) - gm.log_likelihood_) < 10 * gm.tol


# ---- frozen parameters -----------------------------------------------------------------------

FREEZE_SUBSETS = [
    ("weights",),
    ("means",),
    ("covariances",),
    ("weights", "means"),
    ["means", "precisions"],
    ("weights", "means", "covariances"),
]


def _frozen_start(n_features=3):
    """Initial values kept exactly by a frozen fit: weights summing to 1 in binary, diag
    precisions whose square roots are exact."""
    weights = np.array([0.25, 0.25, 0.5])
    means = np.array([[-6.0, 0.0, 2.0], [0.0, 5.0, -3.0], [6.0, -4.0, 1.0]])[:, :n_features]
    precisions = np.array([[1.0, 4.0, 0.25], [2.25, 1.0, 1.0], [0.25, 0.25, 4.0]])[:, :n_features]
    return weights, means, precisions


@pytest.mark.parametrize("freeze", FREEZE_SUBSETS)
def test_frozen_parameters_stay_exactly_as_given(freeze):
    X = blobs(600, seed=31)
    weights, means, precisions = _frozen_start()
    gm = GaussianMixture(
        3,
        covariance_type="diag",
        weights_init=weights,
        means_init=means,
        precisions_init=precisions,
        freeze=freeze,
        max_iter=20,
    ).fit(X)
    kept = {"precisions" if name == "covariances" else name for name in freeze}
    for name, given in [("weights", weights), ("means", means), ("precisions", precisions)]:
        fitted = getattr(gm, name + "_")
        if name in kept:
            np.testing.assert_array_equal(fitted, given, err_msg=f"{freeze}: {name} moved")
        elif len(kept) < 3:
            assert not np.array_equal(fitted, given), f"{freeze}: {name} did not move"
    if "precisions" in kept:
        np.testing.assert_array_equal(gm.covariances_, 1.0 / precisions)


def test_known_components_unmix_to_the_true_weights():
    """Means and precisions frozen at the truth of a known mixture (exactly 600, 900 and 1500
    draws of each component): the fitted weights are the true ones within 5e-3."""
    rng = np.random.RandomState(7)
    means = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    precisions = np.array([[1.0, 1.0], [4.0, 4.0], [1.5625, 1.5625]])
    sds = 1.0 / np.sqrt(precisions)
    counts = [600, 900, 1500]
    X = np.concatenate(
        [m + s * rng.normal(size=(n, 2)) for m, s, n in zip(means, sds, counts)]
    )
    gm = GaussianMixture(
        3,
        covariance_type="diag",
        weights_init=np.full(3, 1 / 3),
        means_init=means,
        precisions_init=precisions,
        freeze=("means", "precisions"),
        max_iter=200,
        tol=1e-8,
    ).fit(X)
    np.testing.assert_array_equal(gm.means_, means)
    np.testing.assert_array_equal(gm.precisions_, precisions)
    assert_allclose(gm.weights_, np.array(counts) / sum(counts), atol=5e-3)


def test_freeze_is_validated_as_in_scikit_learn():
    X = blobs(60, seed=32)
    weights, means, precisions = _frozen_start()
    with pytest.raises(InvalidParameterError, match="The 'freeze' parameter"):
        GaussianMixture(3, means_init=means, freeze="means").fit(X)
    for bad in [("mean",), ["means", "weight"], (None,)]:
        with pytest.raises(ValueError, match="The 'freeze' parameter"):
            GaussianMixture(3, means_init=means, freeze=bad).fit(X)
    for freeze, missing in [
        (("weights",), "weights_init"),
        (("means",), "means_init"),
        (("covariances",), "precisions_init"),
        (("precisions",), "precisions_init"),
    ]:
        with pytest.raises(ValueError, match=r"freeze=.*%s is None" % missing):
            GaussianMixture(3, freeze=freeze).fit(X)
    with pytest.raises(ValueError, match="freeze=.*maximum-likelihood fits only"):
        GaussianMixture(3, means_init=means, freeze=("means",), prior="default").fit(X)
    # The default freezes nothing, and clone keeps what is given.
    assert GaussianMixture().get_params()["freeze"] == ()
    assert clone(GaussianMixture(freeze=("means",))).freeze == ("means",)
