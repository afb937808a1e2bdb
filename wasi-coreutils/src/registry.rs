//! Name-to-entry-point table for the multi-call binary.

use std::ffi::OsString;

use crate::tools;

/// A tool's entry point: takes its argv (argv[0] = tool name), returns the exit status.
pub type Main = fn(Vec<OsString>) -> i32;

/// Every tool this binary provides, sorted by name.
pub const TOOLS: &[(&str, Main)] = &[
    ("awk", tools::awk::main),
    ("base64", tools::base64::main),
    ("basename", tools::basename::main),
    ("cat", tools::cat::main),
    ("cmp", tools::cmp::main),
    ("comm", tools::comm::main),
    ("cp", tools::cp::main),
    ("cut", tools::cut::main),
    ("date", tools::date::main),
    ("diff", tools::diff::main),
    ("dirname", tools::dirname::main),
    ("echo", tools::echo::main),
    ("egrep", tools::egrep::main),
    ("env", tools::env::main),
    ("false", tools::r#false::main),
    ("fgrep", tools::fgrep::main),
    ("find", tools::find::main),
    ("fold", tools::fold::main),
    ("grep", tools::grep::main),
    ("gunzip", tools::gunzip::main),
    ("gzip", tools::gzip::main),
    ("head", tools::head::main),
    ("join", tools::join::main),
    ("jq", tools::jq::main),
    ("json", tools::json::main),
    ("ls", tools::ls::main),
    ("md5sum", tools::md5sum::main),
    ("mkdir", tools::mkdir::main),
    ("mv", tools::mv::main),
    ("nl", tools::nl::main),
    ("paste", tools::paste::main),
    ("printf", tools::printf::main),
    ("rev", tools::rev::main),
    ("rm", tools::rm::main),
    ("sed", tools::sed::main),
    ("seq", tools::seq::main),
    ("sha1sum", tools::sha1sum::main),
    ("sha256sum", tools::sha256sum::main),
    ("sleep", tools::sleep::main),
    ("sort", tools::sort::main),
    ("split", tools::split::main),
    ("tac", tools::tac::main),
    ("tail", tools::tail::main),
    ("tar", tools::tar::main),
    ("tee", tools::tee::main),
    ("touch", tools::touch::main),
    ("tr", tools::tr::main),
    ("true", tools::r#true::main),
    ("uniq", tools::uniq::main),
    ("wc", tools::wc::main),
    ("yes", tools::yes::main),
    ("zcat", tools::zcat::main),
];

/// Looks a tool up by name.
pub fn find(name: &str) -> Option<Main> {
    TOOLS
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| TOOLS[i].1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_is_sorted_and_unique() {
        assert!(super::TOOLS.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
