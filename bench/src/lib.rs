//! Benchmarks live in benches/ and in the scripts beside them.
