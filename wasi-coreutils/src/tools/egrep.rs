//! `egrep`: `grep -E`, as GNU's `egrep` script runs it (messages name
//! `grep`; GNU's obsolescence warning on stderr is not printed).

use std::ffi::OsString;

pub fn main(args: Vec<OsString>) -> i32 {
    super::grep::main(as_grep(args, "-E"))
}

/// `args` with `grep` as argv[0] and `flag` before the caller's arguments.
pub(crate) fn as_grep(args: Vec<OsString>, flag: &str) -> Vec<OsString> {
    let mut out = vec![OsString::from("grep"), OsString::from(flag)];
    out.extend(args.into_iter().skip(1));
    out
}
