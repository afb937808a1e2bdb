//! Bounds checked before brush-parser's recursive code sees a script.
//!
//! brush-parser is a recursive-descent parser (a PEG grammar over tokens,
//! a hand-written tokenizer, and a PEG grammar over the characters of each
//! word). On hostile input each of them recurses once per level of nesting,
//! so an unbounded script could exhaust any stack. What recurses, read from
//! brush-parser 0.4's source:
//!
//! - **the tokenizer**: once per nested `$(`, `${`, `$[` (and `$((`), to
//!   find where the expansion ends; backquotes are scanned in a loop;
//! - **the token grammar**: once per compound command (`if`, `while`,
//!   `until`, `for`, `select`, `case`, `{`, `(`, `[[`, function bodies,
//!   `coproc`), per `(` inside `((...))` and `[[ ( ) ]]`, and per `!`
//!   inside `[[ ]]`; lists, pipelines and `&&`/`||` chains are loops;
//! - **the word grammar**: once per nested `"`, `$(`, `${`, `$((`, `$[`,
//!   backquote and `(` inside a word;
//! - **our lowering** recurses into every `$(...)` and `${x:-...}` by
//!   parsing their text again.
//!
//! The checks here make every one of those depths small before the code
//! that recurses runs:
//!
//! - [`check_size`]: the script is at most [`MAX_SCRIPT_BYTES`], and the
//!   number of `$(`, `${`, `$[` in it (an upper bound of the tokenizer's
//!   depth, whatever the quoting) at most [`MAX_EXPANSIONS`];
//! - [`token_depth`]: over the tokenizer's output — quoting, here-documents
//!   and comments already resolved exactly as the grammar will see them —
//!   the nesting of compound commands (a typed stack: `fi` closes only an
//!   open `if`, and only where the grammar accepts a reserved word),
//!   counted so that it is never below the grammar's own depth;
//! - [`check_word`]: a word is at most [`MAX_WORD_OPENERS`] characters that
//!   can open a level in the word grammar (quote-blind count: an upper
//!   bound of that grammar's depth).
//!
//! Lowering adds the depth of each `$(...)`/`${...}` it enters to the depth
//! of the script around it ([`crate::lower`]), so the total across levels
//! stays within [`MAX_NESTING`]. Whatever these counts might still miss
//! runs on the parser thread's own, large stack ([`crate::PARSER_STACK`]),
//! never on an async worker's.

use brush_parser::Token;

use crate::ScriptError;

/// Deepest nesting of compound commands, subshells, groups and
/// substitutions in one script (all levels added up).
pub const MAX_NESTING: usize = 64;
/// Largest script accepted (the job manifest is at most 100 000 bytes).
pub const MAX_SCRIPT_BYTES: usize = 100_000;
/// Most `$(`, `${`, `$[` in one script.
pub const MAX_EXPANSIONS: usize = 1024;
/// Most characters that can open a level of the word grammar
/// (`$ ( { [ " \``) in one word.
pub const MAX_WORD_OPENERS: usize = 4096;

/// Size and expansion-count bounds, checked on the raw text.
pub(crate) fn check_size(src: &str) -> Result<(), ScriptError> {
    if src.len() > MAX_SCRIPT_BYTES {
        return Err(ScriptError::TooLarge(src.len()));
    }
    // brush-parser's tokenizer takes seconds and gigabytes on a here-doc
    // tag ending in a carriage return or a form feed (`cat <<\r; `, found
    // by fuzzing). Control characters other than tab and newline are never
    // meaningful in a phase script (a CR means CRLF line endings, which
    // break every command anyway), so they are refused up front.
    if let Some(c) = src
        .chars()
        .find(|c| c.is_ascii_control() && !matches!(c, '\t' | '\n'))
    {
        return Err(ScriptError::Syntax(format!(
            "control character U+{:04X} in script (CRLF line endings?)",
            u32::from(c)
        )));
    }
    check_heredoc_tags(src)?;
    let b = src.as_bytes();
    let expansions = b
        .windows(2)
        .filter(|w| w[0] == b'$' && matches!(w[1], b'(' | b'{' | b'['))
        .count();
    if expansions > MAX_EXPANSIONS {
        return Err(ScriptError::TooDeep(format!(
            "{expansions} `$(`, `${{` or `$[` expansions; at most {MAX_EXPANSIONS} are accepted"
        )));
    }
    Ok(())
}

/// Refuses here-documents whose delimiter is missing (`x << ( y`) or made
/// only of quotes (`<<''`, `<<""`, `<<$''`): brush-parser's tokenizer never
/// returns on some of them (`a <<'' | ` loops; `echo $(x << ( Z;)` grows
/// without bound, gigabytes in seconds; both found by fuzzing). An empty
/// delimiter ends the document at the first empty line, which no phase
/// script needs, and a missing one is a syntax error in any shell.
///
/// Here-documents inside `$(...)` or `$[...]` make the tokenizer queue
/// here-document tokens without consuming input until memory runs out (a
/// 100-byte script: 2 GB; fuzzing, three shapes). Telling "inside" from
/// "after" needs the quoting rules the tokenizer gets wrong, so any
/// here-document after a `$(`, `$[` or backquote is refused: a phase reads
/// its input from stdin, and one that wants a here-document can put it
/// first.
///
/// Quote-blind on purpose (a quote can hide a here-document from a simple
/// scan but not from the tokenizer), so a literal `"<<''"` inside a string
/// is refused too; `<<<` (a here-string) is not a here-document and passes.
fn check_heredoc_tags(src: &str) -> Result<(), ScriptError> {
    let b = src.as_bytes();
    // Where the first `$(`, `$[` or backquote is, found once: scanning the
    // prefix again for every `<<` was quadratic in the script's size.
    let first_subst = b
        .iter()
        .enumerate()
        .position(|(k, c)| *c == b'`' || (*c == b'$' && matches!(b.get(k + 1), Some(b'(' | b'['))))
        .unwrap_or(usize::MAX);
    let mut i = 0;
    while let Some(at) = src[i..].find("<<").map(|p| p + i) {
        let mut j = at + 2;
        if b.get(j) == Some(&b'<') {
            // `<<<`: a here-string.
            i = j + 1;
            continue;
        }
        if b.get(j) == Some(&b'-') {
            j += 1;
        }
        while matches!(b.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        let tag_end = b[j..]
            .iter()
            .position(|c| {
                matches!(
                    c,
                    b' ' | b'\t' | b'\n' | b';' | b'|' | b'&' | b'<' | b'>' | b'(' | b')'
                )
            })
            .map_or(b.len(), |p| p + j);
        let tag = &b[j..tag_end];
        if tag.is_empty() {
            return Err(ScriptError::unsupported(
                "here-document without a delimiter",
                &src[at..],
            ));
        }
        if tag.iter().all(|c| matches!(c, b'\'' | b'"' | b'$')) && tag.iter().any(|c| *c != b'$') {
            return Err(ScriptError::unsupported(
                "here-document with an empty delimiter",
                &src[at..tag_end],
            ));
        }
        // A delimiter is taken literally, but brush-parser's tokenizer reads
        // an expansion in it as one (`<<EOF$(...`), and on an unclosed one
        // grows without bound (fuzzing: 2 GB from 120 bytes).
        let expands = tag.iter().enumerate().any(|(k, c)| {
            *c == b'`' || (*c == b'$' && matches!(b.get(j + k + 1), Some(b'(' | b'[' | b'{')))
        });
        if expands {
            return Err(ScriptError::unsupported(
                "here-document delimiter with an expansion (`$(`, `${`, `$[` or a backquote)",
                &src[at..],
            ));
        }
        // Same test as before: a `$(`/`$[` counts once both its bytes lie
        // before the `<<`, a backquote once it does.
        let subst_before = first_subst < at && (b[first_subst] == b'`' || first_subst + 1 < at);
        if subst_before {
            return Err(ScriptError::unsupported(
                "`<<` (here-document) after a command substitution or arithmetic (`$(...)`, backquotes, `$((...))`, `$[...]`)",
                &src[at..],
            ));
        }
        i = at + 2;
    }
    Ok(())
}

/// Word-grammar bound for one word's text.
pub(crate) fn check_word(word: &str) -> Result<(), ScriptError> {
    let openers = word
        .bytes()
        .filter(|c| matches!(c, b'$' | b'(' | b'{' | b'[' | b'"' | b'`'))
        .count();
    if openers > MAX_WORD_OPENERS {
        return Err(ScriptError::TooDeep(format!(
            "a word with {openers} quotes, brackets and expansions; at most {MAX_WORD_OPENERS} are accepted"
        )));
    }
    // brush-parser unwraps `~+N`/`~-N`/`~N` (directory-stack tilde) into
    // an integer and panics when N does not fit (found by fuzzing). We run
    // only `~` and `~user`: refused before it sees them.
    let after_tilde = word
        .strip_prefix('~')
        .map(|r| r.trim_start_matches(['+', '-']));
    if after_tilde.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit())) {
        return Err(ScriptError::unsupported("tilde expansion `~N`", word));
    }
    // The word grammar tries each `$((` as arithmetic and then again as a
    // command substitution: nested ones cost 2^n. We run no arithmetic, so
    // more than a few (quoted or not) are refused before it runs.
    let arithmetic = word.matches("$((").count() + word.matches("$[").count();
    // Inside arithmetic every `(` is another level the word grammar tries
    // two ways (`$((((...` in a here-document body: >10 s, fuzzing).
    let parens_in_arithmetic = arithmetic > 0 && word.matches('(').count() > MAX_ARITHMETIC_PARENS;
    if arithmetic > MAX_WORD_ARITHMETIC || parens_in_arithmetic {
        return Err(ScriptError::unsupported(
            "arithmetic expansion `$((...))`",
            word,
        ));
    }
    Ok(())
}

/// Most `$((` or `$[` in one word. Each is unsupported (a `$((` we accept
/// is `$( (` written without the space), and brush-parser's word grammar
/// backtracks on each in turn: six side by side, not even nested, took
/// 0.85 s in a release build (fuzzing).
const MAX_WORD_ARITHMETIC: usize = 2;
/// Most `(` in a word that has a `$((` or `$[`.
const MAX_ARITHMETIC_PARENS: usize = 8;

/// Most `(` inside one `((...))` (brush-parser tries each both as a
/// nested group and as a plain token).
const MAX_ARITH_PARENS: usize = 4;

/// What opened a level of nesting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    If,
    Loop,
    Brace,
    Paren,
    Test,
}

impl Open {
    fn name(self) -> &'static str {
        match self {
            Open::If => "`if`",
            Open::Loop => "`while`/`until`/`for`",
            Open::Brace => "`{ }`",
            Open::Paren => "`( )`",
            Open::Test => "`[[ ]]`",
        }
    }
}

/// The deepest nesting in `tokens`, refusing at once when `base` (the depth
/// of the script around this one) plus it exceeds [`MAX_NESTING`].
///
/// Over-counting is harmless (a legitimate script would need more than
/// [`MAX_NESTING`] unclosed levels to be refused); under-counting is not,
/// so openers are counted wherever they might open, closers only where
/// the grammar takes them as closers and only for the opener they close.
pub(crate) fn token_depth(tokens: &[Token], base: usize) -> Result<usize, ScriptError> {
    let mut stack: Vec<Open> = Vec::new();
    // Consecutive `!`: each is a level of recursion inside `[[ ]]`.
    let mut bangs = 0usize;
    let mut max = 0usize;
    let mut at = Position::CommandStart;
    // The previous token if it was a `(`: where it ended, and whether a
    // `((` starting there may open arithmetic (it follows `for`, or sits
    // where a command begins).
    let mut prev_open_paren: Option<(usize, bool)> = None;
    let mut prev_was_for = false;
    // Inside `((...))`: the `(` seen in it, and how many are open.
    let mut arith: Option<(usize, usize)> = None;
    // Where the first `)` of a `))` ended: the second must follow at once.
    let mut closing: Option<usize> = None;
    for t in tokens {
        let mut opened = None;
        let is_open_paren = matches!(t, Token::Operator(op, _) if op == "(");
        if let Some(end) = closing.take() {
            let second =
                matches!(t, Token::Operator(op, _) if op == ")") && t.location().start.index == end;
            if !second {
                // `(()`, `((a)(`...: a group that opened like arithmetic
                // but is not, on which brush-parser backtracks
                // exponentially (`(()` eight times: 6 s).
                return Err(ScriptError::unsupported(
                    "arithmetic command `((...))` not closed by `))` (or `( (` with no command between)",
                    "",
                ));
            }
        }
        if let Some((seen, open)) = arith.as_mut() {
            match t {
                Token::Operator(op, _) if op == "(" => {
                    *seen += 1;
                    *open += 1;
                    if *seen > MAX_ARITH_PARENS {
                        return Err(ScriptError::unsupported(
                            format!(
                                "arithmetic command with more than {MAX_ARITH_PARENS} `(` inside `((...))`"
                            ),
                            "",
                        ));
                    }
                }
                Token::Operator(op, loc) if op == ")" => {
                    if *open == 0 {
                        arith = None;
                        closing = Some(loc.end.index);
                    } else {
                        *open -= 1;
                    }
                }
                _ => {}
            }
        } else if let (true, Some((end, may_open))) = (is_open_paren, prev_open_paren) {
            // brush-parser tries `( (` as an arithmetic command first, and
            // on unbalanced input that attempt backtracks exponentially
            // (30 bytes of `(` take minutes): `((` is accepted only as
            // arithmetic (written without a space, after `for` or where a
            // command begins), with at most a few `(` inside, so that
            // attempt stays cheap; any other `( (` is refused before the
            // parser sees it.
            let contiguous = t.location().start.index == end;
            if !(contiguous && may_open) {
                return Err(ScriptError::unsupported(
                    "arithmetic command `((...))` (or `( (` with no command between)",
                    "",
                ));
            }
            arith = Some((0, 0));
        }
        prev_open_paren = match t {
            Token::Operator(op, loc) if op == "(" && arith.is_none() => Some((
                loc.end.index,
                prev_was_for || matches!(at, Position::CommandStart | Position::ListStart),
            )),
            _ => None,
        };
        prev_was_for = matches!(t, Token::Word(w, _) if w == "for")
            && matches!(at, Position::CommandStart | Position::ListStart);
        let next = match t {
            Token::Operator(op, _) => {
                bangs = 0;
                match op.as_str() {
                    "(" => opened = Some(Open::Paren),
                    ")" if stack.last() == Some(&Open::Paren) => {
                        stack.pop();
                    }
                    _ => {}
                }
                if is_redirection(op) {
                    // A file name or here-doc tag follows, never a keyword.
                    Position::Argument
                } else {
                    Position::CommandStart
                }
            }
            Token::Word(w, _) => {
                let w = w.as_str();
                // `!` as an argument (`echo !`) opens nothing.
                if w == "!" && at != Position::Argument {
                    bangs += 1;
                } else {
                    bangs = 0;
                }
                match at {
                    // `function NAME`: the name is no keyword; a compound
                    // command may follow it.
                    Position::Name => Position::CommandStart,
                    Position::Argument if w == "]]" => {
                        if stack.last() == Some(&Open::Test) {
                            stack.pop();
                        }
                        Position::CommandStart
                    }
                    // `for NAME do ...` (no `in`, no separator): count
                    // what follows as a list, whatever came before.
                    Position::Argument if w == "do" => Position::ListStart,
                    Position::Argument => Position::Argument,
                    Position::AfterTime if w == "-p" => Position::CommandStart,
                    Position::CommandStart | Position::ListStart | Position::AfterTime => {
                        let closes = match w {
                            "fi" => Some(Open::If),
                            "done" => Some(Open::Loop),
                            "}" => Some(Open::Brace),
                            "]]" => Some(Open::Test),
                            _ => None,
                        };
                        if let Some(kind) = closes {
                            // Right after `then`/`do`/`{`... the grammar
                            // takes no closer (an empty list is an error):
                            // not popping there only over-counts.
                            if at != Position::ListStart && stack.last() == Some(&kind) {
                                stack.pop();
                            }
                            Position::CommandStart
                        } else {
                            if matches!(w, "case" | "coproc") {
                                // Not run by the interpreter, and brush-parser
                                // backtracks exponentially over nested `case`
                                // items and `coproc` bodies: refused up front.
                                return Err(ScriptError::unsupported(format!("`{w}`"), ""));
                            }
                            opened = match w {
                                "if" => Some(Open::If),
                                "while" | "until" | "for" | "select" => Some(Open::Loop),
                                "{" => Some(Open::Brace),
                                "[[" => Some(Open::Test),
                                _ => None,
                            };
                            match w {
                                "function" => Position::Name,
                                "then" | "else" | "elif" | "do" => Position::ListStart,
                                "time" => Position::AfterTime,
                                "!" | "in" => Position::CommandStart,
                                // `for NAME`, `select NAME`.
                                "for" | "select" => Position::Argument,
                                _ if opened.is_some() => Position::ListStart,
                                _ => Position::Argument,
                            }
                        }
                    }
                }
            }
        };
        if let Some(kind) = opened {
            stack.push(kind);
        }
        let depth = stack.len() + bangs;
        if depth > max {
            max = depth;
            if base + max > MAX_NESTING {
                let what = opened.map_or("`!`", Open::name);
                return Err(ScriptError::TooDeep(format!(
                    "{what} nested more than {MAX_NESTING} levels deep"
                )));
            }
        }
        at = next;
    }
    Ok(max)
}

/// brush-parser unwraps an I/O number (`12>file`) into an `i32` and panics
/// when it does not fit (found by fuzzing). We run only fds 0-2, so larger
/// ones are refused here, before it sees them.
pub(crate) fn check_io_numbers(tokens: &[Token]) -> Result<(), ScriptError> {
    for pair in tokens.windows(2) {
        let (Token::Word(w, wl), Token::Operator(op, ol)) = (&pair[0], &pair[1]) else {
            continue;
        };
        let contiguous = wl.end.index == ol.start.index;
        if contiguous
            && op.starts_with(['<', '>'])
            && !w.is_empty()
            && w.bytes().all(|b| b.is_ascii_digit())
            && w.parse::<i32>().is_err()
        {
            return Err(ScriptError::unsupported(format!("file descriptor {w}"), ""));
        }
    }
    Ok(())
}

/// Expansions we do not run, refused in each word's text before
/// brush-parser's grammars see them.
///
/// brush-parser backtracks for seconds on a few hundred bytes of array
/// subscripts inside `${...}` (`${e[ -f ${d/ ...}`, 110 bytes: 11 s) and on
/// `$[...]` arithmetic around words that look like array assignments (a
/// 1.4 KB script: 3 s); both found by fuzzing. Neither runs here (only
/// `$X`, `${X}`, `${X:-y}` and `${X-y}` do), so they are refused up front,
/// with the same message lowering would give, in linear time.
///
/// The scan follows quoting as the word grammar does (nothing expands
/// inside `'...'` or `$'...'`, a backslash escapes the next character, and
/// `$(...)` and backquotes open a fresh quoting context), so a literal
/// `'${a[1]}'` is still accepted.
///
/// A here-document body comes from the tokenizer as the word after its
/// delimiter (`<<`, delimiter, body, end tag): it is scanned as a body is
/// read ([`check_heredoc_body`]'s rules), or not at all when the
/// delimiter is quoted (nothing in it expands).
pub(crate) fn check_expansions(tokens: &[Token]) -> Result<(), ScriptError> {
    let mut heredoc_tag: Option<bool> = None;
    let mut after_heredoc_op = false;
    for t in tokens {
        match t {
            Token::Operator(op, _) => {
                after_heredoc_op = op == "<<" || op == "<<-";
            }
            Token::Word(w, _) if after_heredoc_op => {
                after_heredoc_op = false;
                heredoc_tag = Some(w.contains(['\'', '"', '\\']));
                check_word_expansions(w)?;
            }
            Token::Word(w, _) => match heredoc_tag.take() {
                Some(true) => {}
                Some(false) => scan_expansions(w, Quoting::HereDocument)?,
                None => {
                    check_word_expansions(w)?;
                    check_subscript_brackets(w)?;
                }
            },
        }
    }
    Ok(())
}

/// Most `[` in a word that starts like an array element (`name[`).
const MAX_SUBSCRIPT_BRACKETS: usize = 8;

/// brush-parser's token grammar tries every word that starts with `name[`
/// as an array-element assignment, and on nested `[` with backslashes
/// that attempt doubles in cost with each `[` (20 of them: 2 s, found by
/// fuzzing). We run no arrays; a glob such as `f[0-9].txt` needs a few
/// brackets, so past [`MAX_SUBSCRIPT_BRACKETS`] such a word is refused.
fn check_subscript_brackets(word: &str) -> Result<(), ScriptError> {
    let name = word
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    let starts_like_subscript = name > 0
        && !word.as_bytes()[0].is_ascii_digit()
        && word.as_bytes().get(name) == Some(&b'[');
    if starts_like_subscript && word.matches('[').count() > MAX_SUBSCRIPT_BRACKETS {
        return Err(ScriptError::unsupported(
            format!(
                "more than {MAX_SUBSCRIPT_BRACKETS} `[` in a word that starts like an array element (`name[`); quote it"
            ),
            word,
        ));
    }
    Ok(())
}

/// The bounds [`check_expansions`] applies to each word, for the body of
/// an expanding here-document, where quotes and parentheses are text and
/// only `$`, backquotes and backslashes are special.
pub(crate) fn check_heredoc_body(body: &str) -> Result<(), ScriptError> {
    check_word(body)?;
    scan_expansions(body, Quoting::HereDocument)
}

/// One quoting context of [`check_word_expansions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// Unquoted, or inside `$(...)` with this many open `(`.
    Plain(usize),
    Double,
    Backquote,
    /// The top level of a here-document body.
    HereDocument,
}

fn check_word_expansions(word: &str) -> Result<(), ScriptError> {
    scan_expansions(word, Quoting::Plain(0))
}

/// Refuses the expansions we do not run, and a `$(` that is never closed.
///
/// An unclosed `$(` is a syntax error to any shell, but brush-parser's word
/// grammar finds that out by trying every `(` after it both ways: `$(a(`
/// then 16 `(` took 0.6 s, four `$(a(` then 16 `(` over a minute, and a
/// few `$(` left open inside `${x-...}` 17 s (fuzzing; in here-document
/// bodies and in words the tokenizer lets through). Refused here, in
/// linear time, before that grammar runs.
fn scan_expansions(word: &str, root: Quoting) -> Result<(), ScriptError> {
    let b = word.as_bytes();
    let mut stack = vec![root];
    let mut i = 0;
    while i < b.len() {
        let top = *stack.last().unwrap_or(&root);
        let c = b[i];
        match c {
            b'\\' => {
                i += 2;
                continue;
            }
            b'\'' | b'"' | b'(' | b')' if top == Quoting::HereDocument => {}
            b'\'' if top != Quoting::Double => {
                // Single quotes run to the next quote; nothing inside
                // expands.
                i = skip_single_quoted(b, i + 1, false);
            }
            b'"' if top == Quoting::Double => {
                stack.pop();
            }
            b'"' => stack.push(Quoting::Double),
            b'`' if top == Quoting::Backquote => {
                stack.pop();
            }
            b'`' => stack.push(Quoting::Backquote),
            b'(' => {
                if let Quoting::Plain(n) = top
                    && let Some(t) = stack.last_mut()
                {
                    *t = Quoting::Plain(n + 1);
                }
            }
            b')' => match top {
                Quoting::Plain(0) if stack.len() > 1 => {
                    stack.pop();
                }
                Quoting::Plain(n) if n > 0 => {
                    if let Some(t) = stack.last_mut() {
                        *t = Quoting::Plain(n - 1);
                    }
                }
                _ => {}
            },
            b'$' => match b.get(i + 1) {
                // `$$` (the shell's pid), not a `$` before what follows.
                Some(b'$') => {
                    i += 2;
                    continue;
                }
                // `$'...'`, whose `\'` does not end it.
                Some(b'\'') if !matches!(top, Quoting::Double | Quoting::HereDocument) => {
                    i = skip_single_quoted(b, i + 2, true);
                }
                Some(b'(') => {
                    stack.push(Quoting::Plain(0));
                    i += 2;
                    continue;
                }
                Some(b'[') => {
                    return Err(ScriptError::unsupported(
                        "arithmetic expansion `$[...]`",
                        word,
                    ));
                }
                Some(b'{') if !supported_parameter(&b[i + 2..]) => {
                    return Err(ScriptError::unsupported(
                        "parameter expansion operator `${...}` (only `$X`, `${X}`, `${X:-y}`, `${X-y}`)",
                        word,
                    ));
                }
                _ => {}
            },
            _ => {}
        }
        i += 1;
    }
    if stack.iter().skip(1).any(|q| matches!(q, Quoting::Plain(_))) {
        return Err(ScriptError::Syntax(format!(
            "unterminated command substitution `$(` in `{}`",
            crate::error::excerpt(word.to_owned())
        )));
    }
    Ok(())
}

/// Where the single-quoted text starting at `from` ends: at its closing
/// quote (or the end of `b`); in `$'...'` (`ansi`) a backslash escapes.
fn skip_single_quoted(b: &[u8], mut from: usize, ansi: bool) -> usize {
    while from < b.len() && b[from] != b'\'' {
        from += if ansi && b[from] == b'\\' { 2 } else { 1 };
    }
    from
}

/// Whether `rest` (what follows `${`) starts a parameter expansion we run:
/// a name, a positional number or a special parameter, then `}`, `:-`
/// or `-`.
fn supported_parameter(rest: &[u8]) -> bool {
    let name = match rest.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count(),
        Some(c) if c.is_ascii_digit() => rest.iter().take_while(|c| c.is_ascii_digit()).count(),
        Some(b'?' | b'#' | b'$' | b'@' | b'*' | b'-' | b'!') => 1,
        _ => return false,
    };
    let after = &rest[name..];
    after.starts_with(b"}") || after.starts_with(b":-") || after.starts_with(b"-")
}

/// Where a token stands, as far as reserved words go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Where a command (so a reserved word) may begin.
    CommandStart,
    /// Right after a keyword that opens a list (`then`, `do`, `{`...): a
    /// command may begin, a closer may not.
    ListStart,
    /// After `function`: a name.
    Name,
    /// After `time`: `-p`, or a command.
    AfterTime,
    /// Inside a simple command (or after a redirection): plain words.
    Argument,
}

fn is_redirection(op: &str) -> bool {
    matches!(
        op,
        "<" | ">" | ">>" | ">|" | "<<" | "<<-" | "<&" | ">&" | "<>" | "&>" | "&>>" | "<<<"
    )
}
