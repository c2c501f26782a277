"""Builds python/tests/test_gaussian_mixture.py and test_bayesian_mixture.py from scikit-learn's
installed copies of its own tests (scikit-learn 1.9.1):

    python python/tests/vendor_sklearn_tests.py python/tests
"""
import ast, pathlib, sys, sklearn
assert sklearn.__version__ == "1.9.1", sklearn.__version__
TESTS = pathlib.Path(sklearn.__path__[0]) / "mixture" / "tests"


def vendor(name, estimator, removed, helpers, swaps, unused, out_dir):
    """sklearn/mixture/tests/<name> with the tests in `removed` (and the helpers only they use)
    cut, `estimator` imported from gmm_gpu, each (old, new) of `swaps` made and each line of
    `unused` dropped, written to out_dir/<name> under a header that lists what was removed."""
    src = (TESTS / name).read_text()
    tree = ast.parse(src)
    lines = src.splitlines(keepends=True)
    cut = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and (node.name in removed or node.name in helpers):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
            cut.append((start, node.end_lineno))
    found = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(removed) | set(helpers) <= found, (set(removed) | set(helpers)) - found
    for start, end in sorted(cut, reverse=True):
        # also drop the blank lines that follow
        while end < len(lines) and lines[end].strip() == "":
            end += 1
        del lines[start:end]
    out = "".join(lines)
    for old, new in [(f"from sklearn.mixture import {estimator}\n", f"from gmm_gpu import {estimator}\n"),
                     *swaps, *((line, "") for line in unused)]:
        assert old in out, old
        out = out.replace(old, new, 1)

    removed_doc = "\n".join(f"#   - {test}: {why}" for test, why in removed.items())
    with_helpers = f" (with helpers only they used:\n# {', '.join(sorted(helpers))})" if helpers else ""
    header = f'''# scikit-learn's own tests of {estimator}, run against gmm_gpu.{estimator}.
#
# Vendored from scikit-learn {sklearn.__version__}: sklearn/mixture/tests/{name}
# (BSD-3-Clause, The scikit-learn developers), by python/tests/vendor_sklearn_tests.py. Changes:
# the estimator is imported from gmm_gpu instead of sklearn.mixture, imports that only the
# removed tests used are gone, and these tests are removed{with_helpers}:
{removed_doc}
#
# Every other test is scikit-learn's, unchanged. The global_dtype and global_random_seed
# fixtures come from python/tests/conftest.py (float32 always runs there).

'''
    (out_dir / name).write_text(header + out)
    print(f"{name}: removed {len(removed)} tests")


out_dir = pathlib.Path(sys.argv[1])

vendor(
    "test_gaussian_mixture.py",
    "GaussianMixture",
    removed={
        "test_suffstat_sk_full": "calls the private _estimate_gaussian_covariances_full",
        "test_suffstat_sk_tied": "calls the private _estimate_gaussian_covariances_tied",
        "test_suffstat_sk_diag": "calls the private _estimate_gaussian_covariances_diag",
        "test_gaussian_suffstat_sk_spherical": "calls the private _estimate_gaussian_covariances_spherical",
        "test_compute_log_det_cholesky": "calls the private _compute_log_det_cholesky and _compute_precision_cholesky",
        "test_gaussian_mixture_log_probabilities": "calls the private _estimate_log_gaussian_prob",
        "test_gaussian_mixture_precisions_init": "calls the private GaussianMixture._initialize and _set_parameters",
        "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters":
            "monkeypatches scikit-learn's private _estimate_gaussian_parameters and counts its calls",
        "test_gaussian_mixture_array_api_compliance":
            "array API inputs (torch, cupy, array-api-strict) under array_api_dispatch, which gmm_gpu does not "
            "support; scikit-learn itself skips it unless SCIPY_ARRAY_API=1",
        "test_gaussian_mixture_raises_where_array_api_not_implemented":
            "checks the NotImplementedError scikit-learn raises for kmeans inits under array_api_dispatch, "
            "a limit of scikit-learn's array API port that gmm_gpu does not share; scikit-learn itself skips "
            "it unless SCIPY_ARRAY_API=1",
    },
    helpers={"_naive_lmvnpdf_diag", "_generate_data", "_calculate_precisions"},
    swaps=[
        ("""from sklearn.mixture._gaussian_mixture import (
    _compute_log_det_cholesky,
    _compute_precision_cholesky,
    _estimate_gaussian_covariances_diag,
    _estimate_gaussian_covariances_full,
    _estimate_gaussian_covariances_spherical,
    _estimate_gaussian_covariances_tied,
    _estimate_gaussian_parameters,
)
""", """from sklearn.mixture._gaussian_mixture import (
    _estimate_gaussian_parameters,  # builds a test's input; gmm_gpu does not use it
)
"""),
        ("""from sklearn.utils._array_api import (
    device as array_api_device,
)
from sklearn.utils._array_api import (
    get_namespace,
    move_to,
    yield_namespace_device_dtype_combinations,
)
""", ""),
        ("""from sklearn.utils._testing import (
    _array_api_for_tests,
    assert_allclose,
    assert_almost_equal,
    assert_array_almost_equal,
    assert_array_equal,
    skip_if_array_api_compat_not_configured,
)
""", """from sklearn.utils._testing import (
    assert_allclose,
    assert_almost_equal,
    assert_array_almost_equal,
    assert_array_equal,
)
"""),
    ],
    unused=["from unittest.mock import Mock\n", "import sklearn\n",
            "from sklearn.datasets._samples_generator import make_blobs\n"],
    out_dir=out_dir,
)

vendor(
    "test_bayesian_mixture.py",
    "BayesianGaussianMixture",
    removed={
        "test_log_dirichlet_norm": "tests scikit-learn's private _log_dirichlet_norm against scipy (no estimator)",
        "test_log_wishart_norm": "tests scikit-learn's private _log_wishart_norm against scipy (no estimator)",
        "test_compare_covar_type":
            "calls the private _check_parameters and _initialize_parameters (scikit-learn's k-means start "
            "from a RandomState); python/tests/test_bayesian.py checks the same relations between the "
            "covariance types after the first M-step from given responsibilities",
    },
    helpers=set(),
    swaps=[],
    unused=["from scipy.special import gammaln\n",
            "from sklearn.mixture._bayesian_mixture import _log_dirichlet_norm, _log_wishart_norm\n"],
    out_dir=out_dir,
)
