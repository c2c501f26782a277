"""GaussianMixture(missing="marginalise"): NaN as missing values, marginalised in the E-step and
filled by conditional expectations in the M-step, checked against an independent numpy reference."""

import numpy as np
import pytest
from sklearn.base import clone

from gmm_gpu import GaussianMixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
FITTED = ["weights_", "means_", "covariances_", "precisions_cholesky_"]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blobs_with_holes(n=600, d=3, k=3, seed=0, p=0.2):
    rng = np.random.RandomState(seed)
    centres = rng.uniform(-6, 6, size=(k, d))
    X = centres[rng.randint(k, size=n)] + rng.normal(size=(n, d)) @ rng.uniform(0.3, 1.0, size=(d, d))
    holes = rng.uniform(size=X.shape) < p
    holes[holes.all(axis=1), 0] = False
    X[holes] = np.nan
    return X


def dense_covariances(covariances, covariance_type, k, d):
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return np.repeat(covariances[None], k, axis=0)
    if covariance_type == "diag":
        return np.array([np.diag(c) for c in covariances])
    return np.array([c * np.eye(d) for c in covariances])


def conditional(x, mean, cov):
    """log N(x_o | mu_o, S_oo), E[x | x_o] and Cov[x | x_o] (zero on the observed block)."""
    o, m = ~np.isnan(x), np.isnan(x)
    s_oo = cov[np.ix_(o, o)]
    diff = x[o] - mean[o]
    sol = np.linalg.solve(s_oo, diff)
    _, logdet = np.linalg.slogdet(s_oo)
    logp = -0.5 * (o.sum() * np.log(2 * np.pi) + logdet + diff @ sol)
    filled = x.copy()
    filled[m] = mean[m] + cov[np.ix_(m, o)] @ sol
    c = np.zeros_like(cov)
    c[np.ix_(m, m)] = cov[np.ix_(m, m)] - cov[np.ix_(m, o)] @ np.linalg.solve(s_oo, cov[np.ix_(o, m)])
    return logp, filled, c


def em_reference(X, weights, means, covs, covariance_type, n_iter, reg_covar=1e-6):
    """Ghahramani & Jordan's EM with missing values, row by row in numpy (the same M-step as
    scikit-learn's for each covariance type, on the expected sufficient statistics)."""
    n, d = X.shape
    k = len(weights)
    for _ in range(n_iter):
        resp = np.zeros((n, k))
        filled = np.zeros((n, k, d))
        extra = np.zeros((n, k, d, d))
        for i, x in enumerate(X):
            for j in range(k):
                logp, filled[i, j], extra[i, j] = conditional(x, means[j], covs[j])
                resp[i, j] = np.log(weights[j]) + logp
            resp[i] = np.exp(resp[i] - np.logaddexp.reduce(resp[i]))
        nk = resp.sum(axis=0)
        weights = nk / n
        means = np.einsum("nk,nkd->kd", resp, filled) / nk[:, None]
        scatter = np.zeros((k, d, d))
        for j in range(k):
            z = filled[:, j] - means[j]
            scatter[j] = (resp[:, j, None, None] * (z[:, :, None] * z[:, None, :] + extra[:, j])).sum(axis=0)
        if covariance_type == "full":
            covs = scatter / nk[:, None, None] + reg_covar * np.eye(d)
        elif covariance_type == "tied":
            covs = np.repeat((scatter.sum(axis=0) / n + reg_covar * np.eye(d))[None], k, axis=0)
        elif covariance_type == "diag":
            covs = np.array([np.diag(np.diag(s) / c + reg_covar) for s, c in zip(scatter, nk)])
        else:
            covs = np.array([(np.trace(s) / (c * d) + reg_covar) * np.eye(d) for s, c in zip(scatter, nk)])
    return weights, means, covs


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_follows_an_independent_numpy_reference(covariance_type):
    X = blobs_with_holes(n=300, seed=1)
    k, d = 3, X.shape[1]
    start = GaussianMixture(k, covariance_type=covariance_type, max_iter=0, random_state=0,
                            missing="marginalise").fit(X)
    gm = GaussianMixture(
        k,
        covariance_type=covariance_type,
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
        max_iter=5,
        tol=0,
        missing="marginalise",
    ).fit(X)
    covs0 = dense_covariances(
        np.linalg.inv(start.precisions_) if covariance_type in ("full", "tied") else 1 / start.precisions_,
        covariance_type, k, d,
    )
    w, m, c = em_reference(X, start.weights_, start.means_, covs0, covariance_type, 5)
    # Five EM iterations in two f64 implementations (Cholesky solves against numpy's LU, and
    # sums in other orders): agreement to ~1e-11 of the values' scale.
    np.testing.assert_allclose(gm.weights_, w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gm.means_, m, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dense_covariances(gm.covariances_, covariance_type, k, d), c, rtol=1e-10, atol=1e-10)


def test_score_samples_and_impute_match_the_reference_formulas():
    X = blobs_with_holes(n=200, seed=2)
    gm = GaussianMixture(3, missing="marginalise", random_state=0).fit(X)
    logp = np.array(
        [
            np.logaddexp.reduce(
                [np.log(w) + conditional(x, m, c)[0] for w, m, c in zip(gm.weights_, gm.means_, gm.covariances_)]
            )
            for x in X
        ]
    )
    # Σ recomputed from the precision factors against the fitted Σ: a few ulps of values near -5.
    np.testing.assert_allclose(gm.score_samples(X), logp, rtol=1e-12)
    filled = []
    for x, lp in zip(X, logp):
        parts = [(np.log(w) + conditional(x, m, c)[0], conditional(x, m, c)[1]) for w, m, c in
                 zip(gm.weights_, gm.means_, gm.covariances_)]
        filled.append(sum(np.exp(l - lp) * f for l, f in parts))
    got = gm.impute(X)
    np.testing.assert_allclose(got, np.array(filled), rtol=1e-12, atol=1e-12)
    observed = ~np.isnan(X)
    assert np.array_equal(got[observed], X[observed])
    proba = gm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-15)
    assert np.array_equal(gm.predict(X), proba.argmax(axis=1))


def test_no_nan_is_exactly_the_ordinary_fit():
    X = blobs_with_holes(n=300, seed=3, p=0.0)
    a = GaussianMixture(3, random_state=0).fit(X)
    b = GaussianMixture(3, random_state=0, missing="marginalise").fit(X)
    for name in FITTED + ["lower_bounds_"]:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_misuse_raises_value_errors():
    X = blobs_with_holes(n=100, seed=4)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2).fit(X)
    fitted = GaussianMixture(2, missing="marginalise").fit(X)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2).fit(np.nan_to_num(X)).predict(X)
    with pytest.raises(ValueError, match="missing='marginalise'"):
        clone(fitted).set_params(missing="reject").fit(np.nan_to_num(X)).impute(X)
    bad = X.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="row 5 has every feature missing"):
        GaussianMixture(2, missing="marginalise").fit(bad)
    with pytest.raises(ValueError, match="row 5 has every feature missing"):
        fitted.impute(bad)
    with pytest.raises(ValueError, match="variational|reject|marginalise"):
        GaussianMixture(2, missing="sometimes").fit(X)
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2, missing="marginalise").partial_fit(X)


def test_tags_allow_nan_only_when_marginalising():
    assert GaussianMixture(missing="marginalise").__sklearn_tags__().input_tags.allow_nan
    assert not GaussianMixture().__sklearn_tags__().input_tags.allow_nan
