//! `sed`: entry point; the implementation lives in `crate::sed`.

use std::ffi::OsString;

pub fn main(args: Vec<OsString>) -> i32 {
    crate::sed::main(args)
}
