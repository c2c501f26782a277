"""scikit-learn's estimator checks (``parametrize_with_checks``) on gmm_gpu.GaussianMixture and
gmm_gpu.BayesianGaussianMixture, on the CPU backend and on the GPU backend (lavapipe in CI)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from gmm_gpu import BayesianGaussianMixture, GaussianMixture

# Checks expected to fail, by name, with the reason. Empty: every check passes.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [
        GaussianMixture(),
        GaussianMixture(backend="gpu"),
        BayesianGaussianMixture(),
        BayesianGaussianMixture(backend="gpu"),
    ],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
