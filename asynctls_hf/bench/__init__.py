"""Benchmarks that need a CUDA GPU: `python -m asynctls_hf.bench.ops_bench`."""
