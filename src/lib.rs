//! Home of the workspace-wide end-to-end tests (`tests/`) and benchmarks (`benches/`).
