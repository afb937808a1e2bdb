//! wasi-coreutils: a busybox-style multi-call program for `wasm32-wasip1`.
//!
//! Dispatches on the basename of argv[0] (`grep ...`), or on argv[1] when
//! called as `wasi-coreutils TOOL ...`. Tools behave like the GNU tools in
//! the C locale for the options they support, and fail with status 2 and a
//! clear message for options they do not.

mod awk;
mod common;
mod files;
mod json;
mod registry;
mod sed;
mod tools;
mod util;

use std::ffi::OsString;

fn main() {
    follow_shell_cwd();
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let name = common::tool_name(&args);
    let code = match registry::find(&name) {
        Some(tool) => tool(args),
        None if args.len() > 1 => {
            args.remove(0);
            let sub = common::tool_name(&args);
            match registry::find(&sub) {
                Some(tool) => tool(args),
                None => common::usage_error("wasi-coreutils", format!("{sub}: applet not found")),
            }
        }
        None => common::usage_error("wasi-coreutils", "usage: wasi-coreutils TOOL [ARGS]..."),
    };
    std::process::exit(code);
}

/// WASI has no working directory of its own: wasi-libc starts every
/// program at `/`. The task shell exports `PWD` (and updates it on `cd`),
/// so relative paths resolve where the shell's own redirections resolve
/// them — as RustPython and other WASI programs do.
fn follow_shell_cwd() {
    if let Some(pwd) = std::env::var_os("PWD")
        && std::path::Path::new(&pwd).is_absolute()
        && pwd != "/"
    {
        let _ = std::env::set_current_dir(pwd);
    }
}
