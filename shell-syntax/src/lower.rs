//! Parses a phase's `exec` string with `brush-parser` and lowers the result
//! into [`ast`](crate::ast), rejecting every construct the interpreter does
//! not run — with the construct named — before anything starts.
//!
//! Why brush-parser: it is maintained (the parser of the `brush` shell),
//! covers POSIX and bash syntax including the word-level grammar we need for
//! quoting and expansions, and is MIT-licensed. `yash-syntax` is a fine
//! POSIX parser too, but GPL-3.0, which Tidepool (MPL-2.0) cannot ship.
//!
//! Every call into brush-parser is preceded by the bounds of
//! [`bounds`](crate::bounds); this module must only be entered on the
//! parser thread ([`crate::parse`]).

use std::cell::Cell;

use brush_parser::ast as b;
use brush_parser::word::{self as bw, WordPiece};
use brush_parser::{ParserOptions, Token};

use crate::ScriptError;
use crate::arith;
use crate::ast::*;
use crate::bounds::{self, MAX_NESTING};

thread_local! {
    /// Nesting depth of the script being lowered on this thread (the
    /// levels around it included): a `$(...)` or `${x:-...}` inside it
    /// starts deeper.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Sets [`DEPTH`] for a scope, restoring it on drop.
struct DepthScope(usize);

impl DepthScope {
    fn enter(depth: usize, what: &str) -> Result<DepthScope, ScriptError> {
        if depth > MAX_NESTING {
            return Err(ScriptError::TooDeep(format!(
                "{what} nested more than {MAX_NESTING} levels deep"
            )));
        }
        Ok(DepthScope(DEPTH.with(|d| d.replace(depth))))
    }
}

impl Drop for DepthScope {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(self.0));
    }
}

pub(crate) fn options() -> ParserOptions {
    ParserOptions {
        enable_extended_globbing: false,
        ..ParserOptions::default()
    }
}

/// Parses and lowers `src`, which sits `base` levels deep.
pub(crate) fn parse_at(src: &str, base: usize) -> Result<Script, ScriptError> {
    bounds::check_size(src)?;
    let opts = options();
    let tokens = tokenize(src, &opts)?;
    bounds::check_io_numbers(&tokens)?;
    bounds::check_expansions(&tokens)?;
    let depth = bounds::token_depth(&tokens, base)?;
    let _scope = DepthScope::enter(base + depth, "`$(...)`")?;
    // The parser is third-party code fed untrusted text; a panic in it must
    // become a rejected script, not a crashed host.
    let parsed = std::panic::catch_unwind(|| brush_parser::parse_tokens(&tokens, &opts));
    let program = match parsed {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return Err(ScriptError::Syntax(e.to_string())),
        Err(_) => return Err(ScriptError::Syntax("parser failed on this input".into())),
    };
    let mut items = Vec::new();
    for cc in &program.complete_commands {
        items.extend(lower_list(cc)?.0);
    }
    Ok(Script(items))
}

fn tokenize(src: &str, opts: &ParserOptions) -> Result<Vec<Token>, ScriptError> {
    let tokens = std::panic::catch_unwind(|| {
        brush_parser::uncached_tokenize_str(src, &opts.tokenizer_options())
    });
    match tokens {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(ScriptError::Syntax(e.to_string())),
        Err(_) => Err(ScriptError::Syntax("parser failed on this input".into())),
    }
}

/// brush-parser's word grammar, after the word-level bound.
fn parse_word(text: &str) -> Result<Vec<bw::WordPieceWithSource>, ScriptError> {
    bounds::check_word(text)?;
    bw::parse(text, &options()).map_err(|e| ScriptError::Syntax(e.to_string()))
}

fn lower_list(list: &b::CompoundList) -> Result<Script, ScriptError> {
    let mut out = Vec::new();
    for b::CompoundListItem(and_or, sep) in &list.0 {
        let background = matches!(sep, b::SeparatorOperator::Async);
        let first = lower_pipeline(&and_or.first)?;
        let mut rest = Vec::new();
        for a in &and_or.additional {
            rest.push(match a {
                b::AndOr::And(p) => (Connector::And, lower_pipeline(p)?),
                b::AndOr::Or(p) => (Connector::Or, lower_pipeline(p)?),
            });
        }
        out.push(AndOr {
            first,
            rest,
            background,
        });
    }
    Ok(Script(out))
}

fn lower_pipeline(p: &b::Pipeline) -> Result<Pipeline, ScriptError> {
    if p.timed.is_some() {
        return Err(ScriptError::unsupported("`time`", p.to_string()));
    }
    let cmds = p.seq.iter().map(lower_command).collect::<Result<_, _>>()?;
    Ok(Pipeline { bang: p.bang, cmds })
}

fn lower_command(c: &b::Command) -> Result<Command, ScriptError> {
    let near = || c.to_string();
    match c {
        b::Command::Simple(s) => lower_simple(s),
        b::Command::Compound(cc, redirs) => {
            let redirs = match redirs {
                Some(r) => r.0.iter().map(lower_redir).collect::<Result<_, _>>()?,
                None => Vec::new(),
            };
            let kind = match cc {
                b::CompoundCommand::IfClause(i) => {
                    let mut arms = vec![(lower_list(&i.condition)?, lower_list(&i.then)?)];
                    let mut otherwise = None;
                    for e in i.elses.iter().flatten() {
                        match &e.condition {
                            Some(cond) => arms.push((lower_list(cond)?, lower_list(&e.body)?)),
                            None => otherwise = Some(lower_list(&e.body)?),
                        }
                    }
                    CommandKind::If { arms, otherwise }
                }
                b::CompoundCommand::ForClause(f) => CommandKind::For {
                    var: f.variable_name.clone(),
                    items: f
                        .values
                        .iter()
                        .flatten()
                        .map(lower_words)
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .flatten()
                        .collect(),
                    body: lower_list(&f.body.list)?,
                },
                b::CompoundCommand::WhileClause(w) => CommandKind::While {
                    cond: lower_list(&w.0)?,
                    body: lower_list(&w.1.list)?,
                    until: false,
                },
                b::CompoundCommand::UntilClause(w) => CommandKind::While {
                    cond: lower_list(&w.0)?,
                    body: lower_list(&w.1.list)?,
                    until: true,
                },
                b::CompoundCommand::BraceGroup(g) => CommandKind::Group {
                    body: lower_list(&g.list)?,
                    subshell: false,
                },
                b::CompoundCommand::Subshell(s) => CommandKind::Group {
                    body: lower_list(&s.list)?,
                    subshell: true,
                },
                b::CompoundCommand::CaseClause(_) => {
                    return Err(ScriptError::unsupported("`case`", near()));
                }
                b::CompoundCommand::Arithmetic(a) => {
                    CommandKind::Arith(arith::parse(&a.expr.value)?)
                }
                b::CompoundCommand::ArithmeticForClause(f) => {
                    let part = |e: &Option<b::UnexpandedArithmeticExpr>| {
                        e.as_ref()
                            .filter(|e| !e.value.trim().is_empty())
                            .map(|e| arith::parse(&e.value))
                            .transpose()
                    };
                    CommandKind::ArithFor {
                        init: part(&f.initializer)?,
                        cond: part(&f.condition)?,
                        step: part(&f.updater)?,
                        body: lower_list(&f.body.list)?,
                    }
                }
                b::CompoundCommand::Coprocess(_) => {
                    return Err(ScriptError::unsupported("`coproc`", near()));
                }
            };
            Ok(Command { kind, redirs })
        }
        b::Command::Function(_) => Err(ScriptError::unsupported("function definition", near())),
        b::Command::ExtendedTest(t, redirs) => {
            let redirs = match redirs {
                Some(r) => r.0.iter().map(lower_redir).collect::<Result<_, _>>()?,
                None => Vec::new(),
            };
            Ok(Command {
                kind: CommandKind::Test(lower_test(&t.expr)?),
                redirs,
            })
        }
    }
}

fn lower_simple(s: &b::SimpleCommand) -> Result<Command, ScriptError> {
    let mut assigns = Vec::new();
    let mut words = Vec::new();
    let mut redirs = Vec::new();
    for item in s.prefix.iter().flat_map(|p| p.0.iter()) {
        match item {
            b::CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                match (&a.name, &a.value, a.append) {
                    (b::AssignmentName::VariableName(n), b::AssignmentValue::Scalar(v), false) => {
                        assigns.push((n.clone(), lower_word(v)?))
                    }
                    _ => {
                        return Err(ScriptError::unsupported(
                            "array or `+=` assignment",
                            w.value.clone(),
                        ));
                    }
                }
            }
            other => lower_item(other, &mut words, &mut redirs)?,
        }
    }
    if let Some(w) = &s.word_or_name {
        words.extend(lower_words(w)?);
    }
    for item in s.suffix.iter().flat_map(|p| p.0.iter()) {
        lower_item(item, &mut words, &mut redirs)?;
    }
    Ok(Command {
        kind: CommandKind::Simple { assigns, words },
        redirs,
    })
}

fn lower_item(
    item: &b::CommandPrefixOrSuffixItem,
    words: &mut Vec<Word>,
    redirs: &mut Vec<Redir>,
) -> Result<(), ScriptError> {
    match item {
        b::CommandPrefixOrSuffixItem::IoRedirect(r) => redirs.push(lower_redir(r)?),
        b::CommandPrefixOrSuffixItem::Word(w) => words.extend(lower_words(w)?),
        // `export A=b`: after the command name an assignment is an ordinary word.
        b::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => words.extend(lower_words(w)?),
        b::CommandPrefixOrSuffixItem::ProcessSubstitution(..) => {
            return Err(ScriptError::unsupported(
                "process substitution `<(...)`",
                item.to_string(),
            ));
        }
    }
    Ok(())
}

fn fd_of(fd: Option<i32>, default: i32, near: &dyn Fn() -> String) -> Result<u8, ScriptError> {
    match fd.unwrap_or(default) {
        n @ 0..=2 => Ok(n as u8),
        n => Err(ScriptError::unsupported(
            format!("file descriptor {n}"),
            near(),
        )),
    }
}

fn lower_redir(r: &b::IoRedirect) -> Result<Redir, ScriptError> {
    let near = || r.to_string();
    match r {
        b::IoRedirect::File(fd, kind, target) => {
            let file = |t: &b::IoFileRedirectTarget| match t {
                b::IoFileRedirectTarget::Filename(w) => lower_word(w),
                _ => Err(ScriptError::unsupported("redirection target", near())),
            };
            match kind {
                b::IoFileRedirectKind::Read => {
                    if fd_of(*fd, 0, &near)? != 0 {
                        return Err(ScriptError::unsupported(
                            "input redirection of fd 1 or 2",
                            near(),
                        ));
                    }
                    Ok(Redir::Input(file(target)?))
                }
                b::IoFileRedirectKind::Write
                | b::IoFileRedirectKind::Clobber
                | b::IoFileRedirectKind::Append => {
                    let fd = fd_of(*fd, 1, &near)?;
                    if fd == 0 {
                        return Err(ScriptError::unsupported(
                            "output redirection of stdin",
                            near(),
                        ));
                    }
                    Ok(Redir::Output {
                        fd,
                        target: file(target)?,
                        append: matches!(kind, b::IoFileRedirectKind::Append),
                    })
                }
                b::IoFileRedirectKind::DuplicateOutput => {
                    let fd = fd_of(*fd, 1, &near)?;
                    let to = match target {
                        b::IoFileRedirectTarget::Fd(n) => Some(*n),
                        b::IoFileRedirectTarget::Duplicate(w) => w.value.parse().ok(),
                        _ => None,
                    };
                    match (fd, to) {
                        (1 | 2, Some(to @ 1..=2)) => Ok(Redir::Dup { fd, to: to as u8 }),
                        _ => Err(ScriptError::unsupported(
                            "descriptor duplication other than `2>&1`/`1>&2`",
                            near(),
                        )),
                    }
                }
                b::IoFileRedirectKind::DuplicateInput => {
                    Err(ScriptError::unsupported("`<&` input duplication", near()))
                }
                b::IoFileRedirectKind::ReadAndWrite => {
                    Err(ScriptError::unsupported("`<>` redirection", near()))
                }
            }
        }
        b::IoRedirect::HereDocument(fd, doc) => {
            fd_of(*fd, 0, &near)?;
            let word = if doc.requires_expansion {
                bounds::check_heredoc_body(&doc.doc.value)?;
                let pieces = bw::parse_heredoc(&doc.doc.value, &options())
                    .map_err(|e| ScriptError::Syntax(e.to_string()))?;
                lower_pieces(&pieces, true, &doc.doc.value)?
            } else {
                Word::literal(&doc.doc.value)
            };
            Ok(Redir::InputText(word))
        }
        b::IoRedirect::HereString(fd, w) => {
            fd_of(*fd, 0, &near)?;
            let mut word = lower_word(w)?;
            word.0.push(Piece::Text {
                text: "\n".into(),
                quoted: true,
            });
            Ok(Redir::InputText(word))
        }
        b::IoRedirect::OutputAndError(w, append) => Ok(Redir::Both {
            target: lower_word(w)?,
            append: *append,
        }),
    }
}

fn lower_test(e: &b::ExtendedTestExpr) -> Result<TestExpr, ScriptError> {
    use b::BinaryPredicate as BP;
    use b::UnaryPredicate as UP;
    let near = || e.to_string();
    Ok(match e {
        b::ExtendedTestExpr::And(l, r) => {
            TestExpr::And(Box::new(lower_test(l)?), Box::new(lower_test(r)?))
        }
        b::ExtendedTestExpr::Or(l, r) => {
            TestExpr::Or(Box::new(lower_test(l)?), Box::new(lower_test(r)?))
        }
        b::ExtendedTestExpr::Not(x) => TestExpr::Not(Box::new(lower_test(x)?)),
        b::ExtendedTestExpr::Parenthesized(x) => lower_test(x)?,
        b::ExtendedTestExpr::UnaryTest(p, w) => {
            let op = match p {
                UP::FileExists => "-e",
                UP::FileExistsAndIsDir => "-d",
                UP::FileExistsAndIsRegularFile => "-f",
                UP::FileExistsAndIsNotZeroLength => "-s",
                UP::FileExistsAndIsReadable => "-r",
                UP::FileExistsAndIsWritable => "-w",
                UP::FileExistsAndIsExecutable => "-x",
                UP::StringHasZeroLength => "-z",
                UP::StringHasNonZeroLength => "-n",
                _ => return Err(ScriptError::unsupported("`[[` test operator", near())),
            };
            TestExpr::Unary(op.into(), lower_word(w)?)
        }
        b::ExtendedTestExpr::BinaryTest(p, l, r) => {
            let op = match p {
                BP::StringExactlyMatchesPattern => "==",
                BP::StringDoesNotExactlyMatchPattern => "!=",
                BP::StringExactlyMatchesString => "=",
                BP::StringDoesNotExactlyMatchString => "!=",
                BP::LeftSortsBeforeRight => "<",
                BP::LeftSortsAfterRight => ">",
                BP::ArithmeticEqualTo => "-eq",
                BP::ArithmeticNotEqualTo => "-ne",
                BP::ArithmeticLessThan => "-lt",
                BP::ArithmeticLessThanOrEqualTo => "-le",
                BP::ArithmeticGreaterThan => "-gt",
                BP::ArithmeticGreaterThanOrEqualTo => "-ge",
                _ => return Err(ScriptError::unsupported("`[[` test operator", near())),
            };
            TestExpr::Binary(op.into(), lower_word(l)?, lower_word(r)?)
        }
    })
}

/// A command or `for` word after brace expansion: one or more words.
fn lower_words(w: &b::Word) -> Result<Vec<Word>, ScriptError> {
    crate::brace::expand(&w.value)?
        .iter()
        .map(|text| {
            let pieces = parse_word(text)?;
            lower_pieces(&pieces, false, text)
        })
        .collect()
}

fn lower_word(w: &b::Word) -> Result<Word, ScriptError> {
    let pieces = parse_word(&w.value)?;
    lower_pieces(&pieces, false, &w.value)
}

fn lower_pieces(
    pieces: &[bw::WordPieceWithSource],
    quoted: bool,
    near: &str,
) -> Result<Word, ScriptError> {
    let mut out = Vec::new();
    for p in pieces {
        lower_piece(&p.piece, quoted, near, &mut out)?;
    }
    Ok(Word(out))
}

fn lower_piece(
    p: &WordPiece,
    quoted: bool,
    near: &str,
    out: &mut Vec<Piece>,
) -> Result<(), ScriptError> {
    match p {
        WordPiece::Text(t) => {
            if !quoted {
                reject_globs(t, near)?;
            }
            out.push(Piece::Text {
                text: t.clone(),
                quoted,
            });
        }
        WordPiece::SingleQuotedText(t) => out.push(Piece::Text {
            text: t.clone(),
            quoted: true,
        }),
        WordPiece::AnsiCQuotedText(t) => out.push(Piece::Text {
            text: ansi_c_unescape(t),
            quoted: true,
        }),
        WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
            // `""` must still produce an (empty) field.
            out.push(Piece::Text {
                text: String::new(),
                quoted: true,
            });
            for i in inner {
                lower_piece(&i.piece, true, near, out)?;
            }
        }
        WordPiece::TildeExpansion(t) => match t {
            bw::TildeExpr::Home => out.push(Piece::Param {
                name: "HOME".into(),
                quoted: true,
                default: None,
            }),
            bw::TildeExpr::UserHome(u) => out.push(Piece::Text {
                text: format!("~{u}"),
                quoted: true,
            }),
            _ => return Err(ScriptError::unsupported("tilde expansion", near)),
        },
        WordPiece::ParameterExpansion(e) => out.push(lower_param(e, quoted, near)?),
        WordPiece::CommandSubstitution(s) | WordPiece::BackquotedCommandSubstitution(s) => {
            out.push(Piece::Subst {
                script: parse_at(s, DEPTH.with(Cell::get) + 1)?,
                quoted,
            });
        }
        WordPiece::EscapeSequence(s) => {
            let text: String = s.chars().skip(1).collect();
            // `\<newline>` is a line continuation.
            if text != "\n" {
                out.push(Piece::Text { text, quoted: true });
            }
        }
        WordPiece::ArithmeticExpression(e) => out.push(Piece::Arith {
            expr: arith::parse(&e.value)?,
            quoted,
        }),
    }
    Ok(())
}

fn param_name(p: &bw::Parameter, near: &str) -> Result<String, ScriptError> {
    use bw::SpecialParameter as S;
    Ok(match p {
        bw::Parameter::Named(n) => n.clone(),
        bw::Parameter::Positional(n) => n.to_string(),
        bw::Parameter::Special(s) => match s {
            S::LastExitStatus => "?",
            S::PositionalParameterCount => "#",
            S::ProcessId => "$",
            S::ShellName => "0",
            S::AllPositionalParameters { .. } => "@",
            S::CurrentOptionFlags => "-",
            S::LastBackgroundProcessId => "!",
        }
        .to_owned(),
        _ => return Err(ScriptError::unsupported("array parameter", near)),
    })
}

fn lower_param(e: &bw::ParameterExpr, quoted: bool, near: &str) -> Result<Piece, ScriptError> {
    match e {
        bw::ParameterExpr::Parameter {
            parameter,
            indirect: false,
        } => Ok(Piece::Param {
            name: param_name(parameter, near)?,
            quoted,
            default: None,
        }),
        bw::ParameterExpr::UseDefaultValues {
            parameter,
            indirect: false,
            test_type,
            default_value,
        } => {
            let value = default_value.as_deref().unwrap_or("");
            let _scope = DepthScope::enter(DEPTH.with(Cell::get) + 1, "`${x:-...}`")?;
            let pieces = parse_word(value)?;
            let word = lower_pieces(&pieces, quoted, near)?;
            let colon = matches!(test_type, bw::ParameterTestType::UnsetOrNull);
            Ok(Piece::Param {
                name: param_name(parameter, near)?,
                quoted,
                default: Some((word, colon)),
            })
        }
        _ => Err(ScriptError::unsupported(
            "parameter expansion operator `${...}` (only `$X`, `${X}`, `${X:-y}`, `${X-y}`)",
            near,
        )),
    }
}

/// Unquoted brace patterns left in a word would be expanded by bash where
/// this word is not brace-expanded (assignments, redirections, tests) or
/// not the way bash would; running them literally would be a silent wrong
/// answer. (Command and `for` words are brace-expanded before they get
/// here; pathname expansion happens when words are expanded.)
fn reject_globs(t: &str, near: &str) -> Result<(), ScriptError> {
    if let Some(open) = t.find('{') {
        let rest = &t[open..];
        if rest.contains('}') && (rest.contains(',') || rest.contains("..")) {
            return Err(ScriptError::unsupported("brace expansion (quote it)", near));
        }
    }
    Ok(())
}

fn ansi_c_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('a') => out.push('\x07'),
            Some('b') => out.push('\x08'),
            Some('e' | 'E') => out.push('\x1b'),
            Some('f') => out.push('\x0c'),
            Some('v') => out.push('\x0b'),
            Some('0') => out.push('\0'),
            Some('x') => {
                let mut hex = String::new();
                while hex.len() < 2 && it.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                    hex.extend(it.next());
                }
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if b.is_ascii() => out.push(b as char),
                    _ => {
                        out.push_str("\\x");
                        out.push_str(&hex);
                    }
                }
            }
            Some(c @ ('\\' | '\'' | '"' | '?')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;
    use proptest::prelude::*;

    fn rejects(src: &str, construct: &str) {
        match parse(src) {
            Err(ScriptError::Unsupported { construct: c, .. }) => {
                assert!(c.contains(construct), "{src}: got {c}")
            }
            other => panic!("{src}: expected rejection naming {construct}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_supported_subset() {
        for src in [
            "grep -w /login | awk '{print $1}' | sort | uniq -c | sort -rn | head",
            "a && b || c; d",
            "x=1; echo \"$x\" ${x} ${y:-def} $(echo hi) `echo hi` > out 2>&1",
            "if true; then echo a; elif false; then echo b; else echo c; fi",
            "for f in a b c; do echo $f; done",
            "while false; do :; done; until true; do :; done",
            "[ -f x ] && [[ $a == b ]] && test -n \"$a\"",
            "cat < in >> out 2> err",
            "export A=b; cd /tmp; exit 3",
            "sort -t $'\\t' -k2",
            "(echo a; echo b) | { cat; }",
            "sleep 1 & wait $!; a & b && c &",
            "for ((i=0; i<3; i++)); do echo $i; done; for ((i=0; ; )) { :; }",
            "((i += 2)) && echo $((i * (3 + 1))) \"$(( 2**10 ))\"",
        ] {
            parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        }
    }

    #[test]
    fn rejects_unsupported_constructs_by_name() {
        rejects("f() { echo; }", "function");
        rejects("case x in a) echo;; esac", "case");
        rejects("echo $((1+$(echo 2)))", "inside arithmetic");
        rejects("( (echo a) )", "arithmetic command");
        rejects("x ((a))", "arithmetic command");
        rejects("for ((((((((i=0;;)))))))); do :; done", "inside `((...))`");
        rejects(&"(()".repeat(8), "not closed by `))`");
        rejects("((a)(b))", "not closed by `))`");
        rejects("cat <(echo)", "process substitution");
        rejects("a={x,y} true", "brace expansion");
        rejects("echo hi 3> x", "file descriptor 3");
        rejects("echo ${x/a/b}", "parameter expansion");
        rejects("time ls", "time");
    }

    #[test]
    fn background_jobs_and_arithmetic_lower() {
        let s = parse("a & b; c &").unwrap();
        let bg: Vec<bool> = s.0.iter().map(|a| a.background).collect();
        assert_eq!(bg, [true, false, true]);
        let s = parse("for ((i=0; i<3; i++)); do echo $((i*2)); done").unwrap();
        assert!(matches!(
            &s.0[0].first.cmds[0].kind,
            CommandKind::ArithFor {
                init: Some(_),
                cond: Some(_),
                step: Some(_),
                ..
            }
        ));
        // (brush-parser reads `;;` as one token: `for ((;;))` is refused.)
        let s = parse("for (( ; ; )); do :; done").unwrap();
        assert!(matches!(
            &s.0[0].first.cmds[0].kind,
            CommandKind::ArithFor {
                init: None,
                cond: None,
                step: None,
                ..
            }
        ));
    }

    #[test]
    fn counts_pipeline_stages() {
        let s = parse("a | b | c; d | e").unwrap();
        assert_eq!(s.max_pipeline(), 3);
        let s = parse("echo $(a | b | c | d)").unwrap();
        assert_eq!(s.max_pipeline(), 4);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn parse_never_panics(src in "[a-z $|&;<>(){}'\"`\\\\=*?\\[\\]!#-]{0,40}") {
            let _ = parse(&src);
        }
    }
}
