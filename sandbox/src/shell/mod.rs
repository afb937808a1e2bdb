//! shell-on-wasm: a POSIX shell subset whose commands are wasm programs.
//!
//! [`lower`] parses and rejects what we do not run; [`interp`] runs the
//! rest, with [`expand`] for words ([`glob`] for pathname expansion) and
//! [`builtins`] for commands the shell itself implements.

mod ast;
mod builtins;
mod expand;
mod glob;
mod interp;
mod lower;

pub(crate) use interp::{PhaseCtx, Shell, Stop, coreutils_tools};
pub(crate) use lower::parse;
