//! `sha256sum`: see `crate::files::hashsum` for what is supported.

use std::ffi::OsString;

pub fn main(args: Vec<OsString>) -> i32 {
    crate::files::hashsum::main(args, crate::files::hashsum::Algo::Sha256)
}
