//! shell-on-wasm: a POSIX shell subset whose commands are wasm programs.
//!
//! The `shell-syntax` crate parses and rejects what we do not run (on its
//! own parser thread, nesting bounded); [`interp`] runs the
//! rest, with [`expand`] for words ([`glob`] for pathname expansion) and
//! [`builtins`] for commands the shell itself implements.

mod builtins;
mod expand;
mod glob;
mod interp;

pub(crate) use interp::{PhaseCtx, Shell, coreutils_tools};
