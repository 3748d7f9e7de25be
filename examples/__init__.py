"""Example models trained on scikit-learn's bundled datasets, for ``make up``, the tests and the
benchmarks."""
