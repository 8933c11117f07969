//! Benchmarks: `bench/run` (with the `keyfob-bench` binary) and the criterion benches.
