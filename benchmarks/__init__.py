"""JAX vs PyTorch benchmarks of bugnist-jax: `python -m benchmarks.run --suite=quick`."""
