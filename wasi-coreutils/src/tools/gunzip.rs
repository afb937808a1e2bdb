//! `gunzip`: see `crate::files::gz` for what is supported.

use std::ffi::OsString;

pub fn main(args: Vec<OsString>) -> i32 {
    crate::files::gz::main(args, crate::files::gz::Mode::Gunzip)
}
