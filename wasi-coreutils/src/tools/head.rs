//! `head`: not implemented yet.

use std::ffi::OsString;

pub fn main(args: Vec<OsString>) -> i32 {
    crate::common::not_implemented(&args)
}
