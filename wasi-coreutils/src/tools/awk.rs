//! `awk`: entry point; the implementation lives in `crate::awk`.

use std::ffi::OsString;

pub fn main(args: Vec<OsString>) -> i32 {
    crate::awk::main(args)
}
