//! JSON support shared by the `jq` and `json` tools: number layouts of the
//! two reference implementations and the jq 1.6 value printer.

pub mod cond;
pub mod jqread;
pub mod jqwrite;
pub mod jsval;
pub mod numfmt;
