//! Runs shell pipelines of WASI programs with wasmtime, contained and limited.
