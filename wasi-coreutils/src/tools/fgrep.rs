//! `fgrep`: `grep -F`, as GNU's `fgrep` script runs it.

use std::ffi::OsString;

pub fn main(args: Vec<OsString>) -> i32 {
    super::grep::main(super::egrep::as_grep(args, "-F"))
}
