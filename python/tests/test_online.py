"""GaussianMixture.partial_fit: stepwise (online) EM, one step per call, in the gmm-gpu crate."""

import copy
import pickle

import numpy as np
import pytest
from conftest import have_gpu
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils._testing import assert_allclose

from gmm_gpu import GaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
FITTED = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blobs(n=900, d=3, k=3, seed=0, dtype=np.float64):
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


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_one_step_on_all_the_data_with_gamma_one_is_one_em_iteration(covariance_type):
    # online_offset=0: γ_1 = 1, so the running statistics are the batch's and the step is
    # exactly batch EM's first iteration from the same start.
    X = blobs()
    start = same_start(X, 3, covariance_type)
    online = GaussianMixture(3, covariance_type=covariance_type, online_offset=0.0, **start)
    online.partial_fit(X)
    batch = GaussianMixture(3, covariance_type=covariance_type, max_iter=1, **start).fit(X)
    for name in FITTED:
        assert np.array_equal(getattr(online, name), getattr(batch, name)), name
    assert online.lower_bound_ == batch.lower_bound_
    assert online.n_iter_ == 1 and online.converged_ is False
    assert online.lower_bounds_ == [online.lower_bound_]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_a_second_call_takes_a_step_from_the_first_calls_model(covariance_type):
    X = blobs(seed=1)
    b1, b2 = X[:450], X[450:]
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    gm.partial_fit(b1)
    first = copy.deepcopy(gm)
    gm.partial_fit(b2)
    assert gm.n_iter_ == 2 and gm.converged_ is False
    # The lower bound is the batch's mean log-likelihood under the parameters before its step.
    assert_allclose(gm.lower_bound_, first.score(b2), rtol=1e-12)
    assert gm.lower_bounds_[0] == first.lower_bound_
    assert len(gm.lower_bounds_) == 2
    assert not np.array_equal(gm.means_, first.means_)
    # The step's size: with γ_2 = 4^-0.7 < 1 the second batch alone gives another model.
    alone = GaussianMixture(
        3,
        covariance_type=covariance_type,
        online_offset=0.0,
        weights_init=first.weights_,
        means_init=first.means_,
        precisions_init=first.precisions_,
    ).partial_fit(b2)
    assert not np.allclose(gm.means_, alone.means_)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_duplicated_rows(covariance_type):
    X = blobs(seed=2)
    w = 1 + np.arange(len(X)) % 3
    start = same_start(X, 3, covariance_type)
    weighted = GaussianMixture(3, covariance_type=covariance_type, **start)
    duplicated = GaussianMixture(3, covariance_type=covariance_type, **start)
    for first in range(0, len(X), 300):
        rows, wb = X[first : first + 300], w[first : first + 300]
        weighted.partial_fit(rows, sample_weight=wb)
        duplicated.partial_fit(np.repeat(rows, wb, axis=0))
    for name in FITTED:
        assert_allclose(
            getattr(weighted, name), getattr(duplicated, name), rtol=1e-12, atol=1e-13, err_msg=name
        )
    assert_allclose(weighted.lower_bound_, duplicated.lower_bound_, rtol=1e-12)
    assert weighted.n_iter_ == duplicated.n_iter_ == 3


def test_float32_batches_give_float32_attributes():
    X = blobs(dtype=np.float32)
    gm = GaussianMixture(3, random_state=0).partial_fit(X[:450]).partial_fit(X[450:])
    for name in FITTED:
        assert getattr(gm, name).dtype == np.float32, name
    assert gm.predict(X).shape == (len(X),)


def test_bad_batches_and_parameters_are_refused():
    X = blobs()
    gm = GaussianMixture(3, random_state=0).partial_fit(X)
    with pytest.raises(ValueError, match="3 features"):
        gm.partial_fit(X[:, :2])
    with pytest.raises(ValueError):
        gm.partial_fit(X, sample_weight=-np.ones(len(X)))
    assert gm.n_iter_ == 1
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(3).partial_fit(X[:2])
    with pytest.raises(ValueError, match="prior"):
        GaussianMixture(3, prior="default").partial_fit(X)
    for bad in (dict(online_decay=0.5), dict(online_decay=1.5), dict(online_offset=-1.0)):
        with pytest.raises(InvalidParameterError):
            GaussianMixture(3, **bad).partial_fit(X)


def test_fit_clone_and_pickle_start_the_running_state_over():
    X = blobs(seed=3)
    gm = GaussianMixture(3, random_state=0).partial_fit(X[:450]).partial_fit(X[450:])
    assert gm.n_iter_ == 2
    # Pickling keeps the fitted attributes but not the crate's running state.
    again = pickle.loads(pickle.dumps(gm))
    assert np.array_equal(again.predict(X), gm.predict(X))
    assert not hasattr(again, "_online_state")
    assert again.partial_fit(X[:450]).n_iter_ == 1
    assert "_online_state" not in clone(gm).__dict__
    # fit starts over too: the next partial_fit initialises afresh.
    gm.fit(X)
    assert not hasattr(gm, "_online_state")
    fresh = GaussianMixture(3, random_state=0).partial_fit(X[:450])
    gm.partial_fit(X[:450])
    assert gm.n_iter_ == 1
    assert np.array_equal(gm.means_, fresh.means_)


def test_warm_start_continues_from_the_fitted_model():
    X = blobs(seed=4)
    gm = GaussianMixture(3, random_state=0, warm_start=True).fit(X[:600])
    fitted = copy.deepcopy(gm)
    gm.partial_fit(X[600:])
    assert gm.n_iter_ == 1
    assert_allclose(gm.lower_bound_, fitted.score(X[600:]), rtol=1e-12)


def test_frozen_parameters_stay_at_their_initial_values():
    X = blobs(seed=5)
    start = same_start(X, 3, "diag")
    gm = GaussianMixture(3, covariance_type="diag", freeze=("means",), **start)
    for first in range(0, len(X), 300):
        gm.partial_fit(X[first : first + 300])
    assert np.array_equal(gm.means_, start["means_init"])
    assert gm.n_iter_ == 3


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gpu_steps_agree_with_the_cpus(covariance_type):
    have_gpu()
    X = blobs(1500, d=4, seed=6, dtype=np.float32)
    w = np.random.RandomState(7).uniform(0, 2, size=len(X))
    start = same_start(X.astype(np.float64), 3, covariance_type)
    gpu = GaussianMixture(3, covariance_type=covariance_type, backend="gpu", **start)
    cpu = GaussianMixture(3, covariance_type=covariance_type, **start)
    for first in range(0, len(X), 500):
        rows, wb = X[first : first + 500], w[first : first + 500]
        gpu.partial_fit(rows, sample_weight=wb)
        cpu.partial_fit(rows.astype(np.float64), sample_weight=wb)
    assert gpu.backend_ == "gpu" and gpu.adapter_
    assert cpu.backend_ == "cpu"
    assert gpu.n_iter_ == cpu.n_iter_ == 3
    for name in FITTED:
        assert getattr(gpu, name).dtype == np.float32, name
        assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-4, atol=1e-5, err_msg=name)
    assert_allclose(gpu.lower_bound_, cpu.lower_bound_, rtol=1e-4)


def test_a_refused_batch_leaves_the_running_state_as_it_was():
    # (A step that fails in the crate is undone too; a refused one must not count either.)
    X = blobs(seed=8)
    gm = GaussianMixture(3, random_state=0).partial_fit(X[:300])
    twin = GaussianMixture(3, random_state=0).partial_fit(X[:300])
    with pytest.raises(ValueError):
        gm.partial_fit(X[300:600], sample_weight=np.zeros(300))
    assert gm.n_iter_ == 1
    gm.partial_fit(X[300:600])
    twin.partial_fit(X[300:600])
    assert gm.n_iter_ == 2
    for name in FITTED:
        assert np.array_equal(getattr(gm, name), getattr(twin, name)), name


def _reference_steps(X, batches, start, covariance_type, decay, offset, reg_covar=1e-6):
    """Stepwise EM in numpy (scikit-learn's E-step from the current parameters, the blend of
    each batch's normalised statistics, the M-step from them), independent of the crate."""
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
    from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

    k, d = start["means_init"].shape
    p = np.asarray(start["precisions_init"], dtype=np.float64)
    cov = np.linalg.inv(p) if covariance_type in ("full", "tied") else 1.0 / p
    params = (np.asarray(start["weights_init"], float), np.asarray(start["means_init"], float), cov)
    s = None
    bounds = []
    for t, batch in enumerate(batches, start=1):
        w, mu, cov = params
        sk = SklearnGaussianMixture(k, covariance_type=covariance_type)
        sk.weights_, sk.means_, sk.covariances_ = w, mu, cov
        sk.precisions_cholesky_ = _compute_precision_cholesky(cov, covariance_type)
        bounds.append(sk.score(batch))
        r = sk.predict_proba(batch) / len(batch)
        n = r.sum(axis=0)
        s1 = r.T @ batch
        s2 = np.einsum("ik,ia,ib->kab", r, batch, batch)
        gamma = 1.0 if t == 1 else (t + offset) ** -decay
        new = (n, s1, s2)
        s = new if s is None else tuple((1 - gamma) * a + gamma * b for a, b in zip(s, new))
        n, s1, s2 = s
        mu = s1 / n[:, None]
        full = s2 / n[:, None, None] - np.einsum("ka,kb->kab", mu, mu)
        if covariance_type == "full":
            cov = full + reg_covar * np.eye(d)
        elif covariance_type == "tied":
            cov = np.einsum("k,kab->ab", n, full) / n.sum() + reg_covar * np.eye(d)
        elif covariance_type == "diag":
            cov = np.diagonal(full, axis1=1, axis2=2) + reg_covar
        else:
            cov = np.diagonal(full, axis1=1, axis2=2).mean(axis=1) + reg_covar
        params = (n / n.sum(), mu, cov)
    return params, bounds


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_steps_over_batches_follow_a_numpy_reference(covariance_type):
    X = blobs(1200, seed=9)
    batches = [X[i : i + 250] for i in range(0, len(X), 250)]
    start = same_start(X, 3, covariance_type)
    gm = GaussianMixture(
        3, covariance_type=covariance_type, online_decay=0.8, online_offset=1.5, **start
    )
    for b in batches:
        gm.partial_fit(b)
    (w, mu, cov), bounds = _reference_steps(X, batches, start, covariance_type, 0.8, 1.5)
    assert gm.n_iter_ == len(batches) == 5
    assert_allclose(gm.weights_, w, rtol=1e-9)
    assert_allclose(gm.means_, mu, rtol=1e-9, atol=1e-10)
    assert_allclose(gm.covariances_, cov, rtol=1e-9, atol=1e-10)
    assert_allclose(gm.lower_bounds_, bounds, rtol=1e-10)
