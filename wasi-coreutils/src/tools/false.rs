//! `false`: exits with status 1, ignoring its arguments.

use std::ffi::OsString;

pub fn main(_args: Vec<OsString>) -> i32 {
    1
}
