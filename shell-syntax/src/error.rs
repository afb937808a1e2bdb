//! Why a phase script was rejected.

/// Why a phase script was rejected before running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// Not valid shell syntax.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// Valid shell, but a construct this shell does not run.
    #[error("unsupported shell construct: {construct}{}", fmt_near(.near))]
    Unsupported {
        /// The construct, named as a user would recognise it.
        construct: String,
        /// The start of the text it was found in (may be empty).
        near: String,
    },
    /// Constructs nested deeper than the parser is allowed to go (see
    /// [`MAX_NESTING`](crate::MAX_NESTING)), or more expansions than it
    /// takes: refused before the parser runs, so hostile input cannot
    /// exhaust its stack.
    #[error("script too deeply nested: {0}")]
    TooDeep(String),
    /// The script is larger than [`MAX_SCRIPT_BYTES`](crate::MAX_SCRIPT_BYTES).
    #[error("script is {0} bytes; at most {max} are accepted", max = crate::MAX_SCRIPT_BYTES)]
    TooLarge(usize),
    /// The parser thread could not be started (host resources).
    #[error("shell parser unavailable: {0}")]
    ParserUnavailable(String),
}

fn fmt_near(near: &str) -> String {
    if near.is_empty() {
        String::new()
    } else {
        format!(" (in `{near}`)")
    }
}

impl ScriptError {
    pub(crate) fn unsupported(construct: impl Into<String>, near: impl Into<String>) -> Self {
        ScriptError::Unsupported {
            construct: construct.into(),
            near: excerpt(near.into()),
        }
    }
}

/// The start of `text`, at most 60 bytes, for an error message.
pub(crate) fn excerpt(mut text: String) -> String {
    if text.len() > 60 {
        let cut = (0..=60)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}
