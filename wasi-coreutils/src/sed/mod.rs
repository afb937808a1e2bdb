//! The `sed` implementation (script parser and stream editor), plus the
//! POSIX regular-expression translation that `awk` shares.

pub mod posix_re;
