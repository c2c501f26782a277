"""Fixtures that scikit-learn's own conftest.py gives its tests, for the vendored ones.

``global_dtype`` runs each test with float64 and float32 data (scikit-learn skips float32 unless
SKLEARN_RUN_FLOAT32_TESTS=1; here float32 always runs, since it is the GPU's precision), and
``global_random_seed`` is 42, or the seeds SKLEARN_TESTS_GLOBAL_RANDOM_SEED names ("all", "a-b"
or one number in 0..99), as in scikit-learn.
"""

import os

import numpy as np
import pytest


@pytest.fixture(params=[np.float32, np.float64])
def global_dtype(request):
    yield request.param


def pytest_generate_tests(metafunc):
    if "global_random_seed" not in metafunc.fixturenames:
        return
    var = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED")
    if var is None:
        seeds = [42]
    elif var == "all":
        seeds = list(range(100))
    elif "-" in var:
        start, stop = var.split("-")
        seeds = list(range(int(start), int(stop) + 1))
    else:
        seeds = [int(var)]
    metafunc.parametrize("global_random_seed", seeds)


def gpu_required():
    """With CI=true (or 1) or GMM_REQUIRE_GPU=1 a missing GPU fails a test instead of skipping it,
    as in the Rust tests."""
    return os.environ.get("CI") in ("true", "1") or os.environ.get("GMM_REQUIRE_GPU") == "1"


def have_gpu():
    """Whether a GPU adapter exists; with CI=true (or GMM_REQUIRE_GPU=1) its absence fails."""
    import gmm_gpu

    if gmm_gpu.adapters():
        return True
    if gpu_required():
        pytest.fail("a GPU adapter is required here (CI=true or GMM_REQUIRE_GPU=1); none found")
    pytest.skip("no GPU adapter (install mesa-vulkan-drivers for lavapipe)")
