//! POSIX shell syntax for job phases: parses a phase's `exec`/`init` script
//! into the small tree ([`ast`]) that the sandbox's interpreter runs,
//! rejecting — with the construct named — everything it does not run.
//!
//! What it guarantees:
//! - **Bounded, whatever the input.** Nesting of every construct the
//!   underlying parser recurses on is counted and refused past
//!   [`MAX_NESTING`] levels ([`ScriptError::TooDeep`]), before that parser
//!   runs (see [`bounds`] for what recurses and how each depth is bounded).
//! - **Never on the caller's stack.** [`parse`] runs on a thread of its own
//!   with a [`PARSER_STACK`]-byte stack, so a tokio worker's small stack is
//!   never what a hostile script meets; a panic in the parser is a
//!   [`ScriptError::Syntax`], not a crash.
//! - **No engine.** It depends on the parser alone (no wasm, no I/O), so the
//!   gateway can check a job's phases when the job is created.
//!
//! [`parse`] blocks its caller until the parse is done (a few microseconds
//! to a few milliseconds); async callers call it from `spawn_blocking`.
//! [`parse_shared`] does the same but remembers the last scripts it
//! parsed ([`recent`] looks one up without blocking): every task of a
//! phase runs the same script, and a parse costs a thread.
//!
//! ```
//! let script = shell_syntax::parse("grep x | wc -l").unwrap();
//! assert_eq!(script.max_pipeline(), 2);
//! let deep = format!("{}true{}", "if true; then ".repeat(500), "; fi".repeat(500));
//! assert!(matches!(
//!     shell_syntax::parse(&deep),
//!     Err(shell_syntax::ScriptError::TooDeep(_))
//! ));
//! ```

pub mod arith;
pub mod ast;
pub mod bounds;
mod brace;
mod error;
mod lower;

pub use ast::Script;
pub use bounds::{MAX_EXPANSIONS, MAX_NESTING, MAX_SCRIPT_BYTES, MAX_WORD_OPENERS};
pub use error::ScriptError;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Stack of the parser thread. Only what a parse touches is ever
/// committed; the size leaves a wide margin over the deepest parse the
/// bounds allow (see the `worst_case_*` tests).
pub const PARSER_STACK: usize = 256 << 20;

/// Parses and lowers a phase script, on a parser thread of its own.
///
/// # Errors
/// [`ScriptError`] naming why the script cannot run.
pub fn parse(src: &str) -> Result<Script, ScriptError> {
    let src = src.to_owned();
    let thread = std::thread::Builder::new()
        .name("shell-parse".into())
        .stack_size(PARSER_STACK)
        .spawn(move || lower::parse_at(&src, 0))
        .map_err(|e| ScriptError::ParserUnavailable(e.to_string()))?;
    thread
        .join()
        .unwrap_or_else(|_| Err(ScriptError::Syntax("parser failed on this input".into())))
}

/// How many parsed scripts [`parse_shared`] keeps.
const RECENT_SCRIPTS: usize = 64;

/// The longest script [`parse_shared`] keeps (phases are mostly one
/// line): what the cache can hold stays a few megabytes of trees even
/// when every entry is a hostile tenant's.
const RECENT_SCRIPT_BYTES: usize = 8 << 10;

/// Scripts [`parse_shared`] parsed, by source, with when each was last
/// used (a counter), so the least recently used one goes first.
struct Recent {
    scripts: HashMap<String, (Arc<Script>, u64)>,
    clock: u64,
}

fn recent_scripts() -> MutexGuard<'static, Recent> {
    static RECENT: OnceLock<Mutex<Recent>> = OnceLock::new();
    RECENT
        .get_or_init(|| {
            Mutex::new(Recent {
                scripts: HashMap::new(),
                clock: 0,
            })
        })
        .lock()
        // The map is consistent whatever a panicking holder did: entries
        // are inserted and removed whole.
        .unwrap_or_else(|e| e.into_inner())
}

/// The script [`parse_shared`] parsed from `src`, if it still holds it.
/// Never blocks on a parse: async callers try this first.
pub fn recent(src: &str) -> Option<Arc<Script>> {
    let mut r = recent_scripts();
    r.clock += 1;
    let now = r.clock;
    let (script, used) = r.scripts.get_mut(src)?;
    *used = now;
    Some(script.clone())
}

/// [`parse`], remembering the result for the next caller with the same
/// source (the last [`RECENT_SCRIPTS`] scripts, least recently used
/// evicted first, and only scripts of at most [`RECENT_SCRIPT_BYTES`]).
/// Parsing is a pure function of the source, so a shared
/// result is exactly what a fresh parse would give; rejected scripts are
/// not kept.
///
/// # Errors
/// [`ScriptError`] naming why the script cannot run.
pub fn parse_shared(src: &str) -> Result<Arc<Script>, ScriptError> {
    if let Some(s) = recent(src) {
        return Ok(s);
    }
    let script = Arc::new(parse(src)?);
    if src.len() > RECENT_SCRIPT_BYTES {
        return Ok(script);
    }
    let mut r = recent_scripts();
    r.clock += 1;
    let now = r.clock;
    if r.scripts.len() >= RECENT_SCRIPTS
        && let Some(oldest) = r
            .scripts
            .iter()
            .min_by_key(|(_, (_, used))| *used)
            .map(|(k, _)| k.clone())
    {
        r.scripts.remove(&oldest);
    }
    r.scripts.insert(src.to_owned(), (script.clone(), now));
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn too_deep(src: &str, what: &str) {
        match parse(src) {
            Err(ScriptError::TooDeep(m)) => assert!(
                m.contains(what) || m.contains("expansions; at most"),
                "{what}: got {m}"
            ),
            Err(ScriptError::TooLarge(_)) if src.len() > MAX_SCRIPT_BYTES => {}
            other => panic!(
                "{}: expected TooDeep naming {what}, got {other:?}",
                &src[..40]
            ),
        }
    }

    /// `n` levels of each construct the parser recurses on.
    fn nested(kind: &str, n: usize) -> String {
        match kind {
            "if" => format!("{}true{}", "if true; then ".repeat(n), "; fi".repeat(n)),
            "elif" => format!(
                "{}true{}",
                "if a; then b; elif true; then ".repeat(n),
                "; else c; fi".repeat(n)
            ),
            "while" => format!("{}true{}", "while true; do ".repeat(n), "; done".repeat(n)),
            "until" => format!("{}true{}", "until true; do ".repeat(n), "; done".repeat(n)),
            "for" => format!("{}true{}", "for x in a; do ".repeat(n), "; done".repeat(n)),
            "for-do" => format!("{}true{}", "for x do ".repeat(n), "; done".repeat(n)),
            "brace" => format!("{}true{}", "{ ".repeat(n), "; }".repeat(n)),
            "subshell" => format!("{}true{}", "( true; ".repeat(n), ")".repeat(n)),
            "function" => format!("{}true{}", "f() { ".repeat(n), "; }".repeat(n)),
            "function-kw" => format!("{}true{}", "function f { ".repeat(n), "; }".repeat(n)),
            // (`( (` is refused as arithmetic, so `!` between.)
            "test-paren" => format!("[[ {}x{} ]]", "! ( ".repeat(n), " )".repeat(n)),
            "test-bang" => format!("[[ {}x ]]", "! ".repeat(n)),
            "subst" => format!("echo {}x{}", "$(echo ".repeat(n), ")".repeat(n)),
            "backquote" => {
                // Each level escapes the backquotes of the next.
                let mut s = "x".to_owned();
                for _ in 0..n.min(12) {
                    s = format!("echo `{}`", s.replace('\\', "\\\\").replace('`', "\\`"));
                }
                s
            }
            "dq-subst" => format!("echo {}x{}", "\"$(echo ".repeat(n), ")\"".repeat(n)),
            "param" => format!("echo {}x{}", "${a:-".repeat(n), "}".repeat(n)),
            "mixed" => format!(
                "{}true{}",
                "if a; then while b; do ( { echo $(".repeat(n),
                ") ; } ); done; fi".repeat(n)
            ),
            _ => unreachable!(),
        }
    }

    const KINDS: [&str; 17] = [
        "if",
        "elif",
        "while",
        "until",
        "for",
        "for-do",
        "brace",
        "subshell",
        "function",
        "function-kw",
        "test-paren",
        "test-bang",
        "subst",
        "dq-subst",
        "param",
        "mixed",
        "backquote",
    ];

    #[test]
    fn shared_parses_are_reused_and_bounded() {
        let a = parse_shared("echo keep | wc -c").unwrap();
        assert!(Arc::ptr_eq(&a, &parse_shared("echo keep | wc -c").unwrap()));
        assert_eq!(a.max_pipeline(), 2);
        for i in 0..2 * RECENT_SCRIPTS {
            parse_shared(&format!("echo {i}")).unwrap();
            // Used all along: never the least recently used one.
            assert!(recent("echo keep | wc -c").is_some(), "evicted at {i}");
        }
        assert!(recent_scripts().scripts.len() <= RECENT_SCRIPTS);
        assert!(recent("echo 0").is_none());
        let long = format!("echo {}", "x".repeat(RECENT_SCRIPT_BYTES));
        assert!(parse_shared(&long).is_ok());
        assert!(recent(&long).is_none());
        // Rejected scripts are errors every time, and not kept.
        assert!(parse_shared("if true").is_err());
        assert!(recent("if true").is_none());
    }

    #[test]
    fn deep_nesting_of_every_construct_is_refused_by_name() {
        for (kind, what) in [
            ("if", "`if`"),
            ("elif", "`if`"),
            ("while", "`while`"),
            ("until", "`until`"),
            ("for", "`for`"),
            ("for-do", "`for`"),
            ("brace", "`{ }`"),
            ("subshell", "`( )`"),
            ("function", "nested more than 64"),
            ("function-kw", "`{ }`"),
            ("test-paren", "nested more than 64"),
            ("test-bang", "`!`"),
            ("subst", "`$(...)`"),
            ("dq-subst", "`$(...)`"),
            ("param", "`${x:-...}`"),
            ("mixed", "nested"),
        ] {
            for n in [MAX_NESTING + 1, 500, 5000] {
                too_deep(&nested(kind, n), what);
            }
        }
    }

    #[test]
    fn the_issue_reproducer_is_refused() {
        // Issue 12: 9 KB of 500 nested `if` aborted `tidepool up`.
        let src = format!(
            "{}echo x{}",
            "if true; then ".repeat(500),
            "; fi".repeat(500)
        );
        assert!(src.len() > 8_000);
        too_deep(&src, "`if` nested more than 64 levels deep");
    }

    #[test]
    fn nesting_within_the_bound_parses() {
        for kind in KINDS {
            // Deep, but within the bound (each level of these counts once
            // or twice: compound command plus list, or `$(` plus quote).
            let src = nested(kind, 12);
            match parse(&src) {
                Ok(_) => {}
                // Functions and `[[ ! ]]`... are valid shell we do not run.
                Err(ScriptError::Unsupported { .. }) => {}
                Err(e) => panic!("{kind}: {e}"),
            }
        }
        parse(&nested("if", MAX_NESTING)).unwrap();
        parse(&nested("brace", MAX_NESTING)).unwrap();
    }

    #[test]
    fn keywords_as_words_neither_open_nor_close() {
        // Arguments named like keywords open nothing (so many sequential
        // ones are fine) ...
        let many = "echo if while for { [[ !; grep -w fi x; ".repeat(200);
        parse(&many).unwrap();
        let seq = "if a; then b; fi; while c; do d; done; { e; }; (f); ".repeat(200);
        parse(&seq).unwrap();
        let heredoc = "cat <<EOF\nif\nif\nwhile\n(\nEOF\n".repeat(100);
        parse(&heredoc).unwrap();
        // ... and closers in argument, file-name or function-name position
        // close nothing: nesting through them is still counted.
        for level in [
            "if a; then echo fi; ",
            "if a; then echo >fi; ",
            "if a; then x=fi; ",
            "if a; then function fi { :; }; ",
            "if a; then time -p if b; then :; fi; ",
            "while a; do echo done; ",
            "{ echo }; ",
        ] {
            let src = format!("{}:", level.repeat(100));
            match parse(&src) {
                Err(ScriptError::TooDeep(_)) => {}
                other => panic!("{level}: expected TooDeep, got {other:?}"),
            }
        }
    }

    #[test]
    fn exponential_backtracking_inputs_are_refused_fast() {
        // brush-parser backtracks exponentially on unbalanced `((` and on
        // nested `case` without `;;`; both are refused before it runs.
        let t = std::time::Instant::now();
        for src in [
            "(".repeat(60),
            format!("(( {}", "(".repeat(60)),
            format!("for (( {}", "(".repeat(60)),
            // `((` opening something that is not arithmetic.
            "(()".repeat(12),
            "((a)".repeat(20),
            format!("{}x", "((a) ".repeat(20)),
            format!("{}true{}", "case x in x) ".repeat(40), " esac".repeat(40)),
        ] {
            assert!(
                matches!(parse(&src), Err(ScriptError::Unsupported { .. })),
                "{src}"
            );
        }
        // Generous: each is microseconds; the unrefused inputs take hours.
        assert!(t.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn size_and_expansion_counts_are_bounded() {
        let big = "x".repeat(MAX_SCRIPT_BYTES + 1);
        assert!(matches!(parse(&big), Err(ScriptError::TooLarge(_))));
        let many = "echo ${a}".repeat(MAX_EXPANSIONS + 1);
        assert!(matches!(parse(&many), Err(ScriptError::TooDeep(_))));
        parse(&"echo ${a}; ".repeat(MAX_EXPANSIONS)).unwrap();
        let word = format!("echo '{}'", "(".repeat(MAX_WORD_OPENERS + 1));
        assert!(matches!(parse(&word), Err(ScriptError::TooDeep(_))));
    }

    /// Fuzzing finding: brush-parser panicked (`unwrap` of an `i32`) on a
    /// file descriptor number that does not fit.
    #[test]
    fn huge_file_descriptor_numbers_are_refused_not_panicked() {
        for src in ["echo 99999999999>x", "cat 4294967296<x", "a 2147483648>&1"] {
            match parse(src) {
                Err(ScriptError::Unsupported { construct, .. }) => {
                    assert!(construct.contains("file descriptor"), "{src}: {construct}")
                }
                other => panic!("{src}: {other:?}"),
            }
        }
        // Not a descriptor: separated from the operator.
        parse("echo 99999999999 > x").unwrap();
    }

    /// Fuzzing finding: a here-doc tag ending in CR (or FF) made
    /// brush-parser's tokenizer run for seconds and grow to gigabytes.
    #[test]
    fn control_characters_are_refused_fast() {
        // Refused by the up-front check (its message), not by the tokenizer
        // after its blow-up.
        for src in [
            "cat <<\r; ",
            "c0ife\x01\0<<\r;\0 ",
            "wc -l\r\n",
            "c<<\x0c\x0c\x0c;\x0c\x0co ${a-$:{e]",
        ] {
            assert!(
                matches!(parse(src), Err(ScriptError::Syntax(m)) if m.contains("control character")),
                "{src:?}"
            );
        }
    }

    /// Array subscripts and `$[` send brush-parser's grammars into seconds
    /// of backtracking (fuzzing: `fuzz/corpus/*/seed-regress-*`); they are refused by the
    /// quote-aware pre-check, before the parser runs.
    #[test]
    fn unsupported_expansions_are_refused_before_the_parser() {
        for src in [
            include_str!("../../fuzz/corpus/shell_parse/seed-regress-05b6f6ca"),
            "echo ${e[1]}",
            "echo \"${a[@]}\"",
            "echo ${#x}",
            "echo ${x:=y}",
            "echo ${x/a/b}",
            "echo $(echo ${x%y})",
            "echo `echo ${!x}`",
            "echo $[1+2]",
            "echo \"$[1]\"",
            "echo ${x:-${y[1]}}",
        ] {
            let tokens =
                brush_parser::uncached_tokenize_str(src, &lower::options().tokenizer_options())
                    .expect("tokenizes");
            assert!(
                matches!(
                    bounds::check_expansions(&tokens),
                    Err(ScriptError::Unsupported { .. })
                ),
                "{src:?}"
            );
            assert!(
                matches!(parse(src), Err(ScriptError::Unsupported { .. })),
                "{src:?}"
            );
        }
        let manifest: serde_json::Value = serde_json::from_str(include_str!(
            "../../fuzz/corpus/job_manifest/seed-regress-e37b3c58"
        ))
        .unwrap();
        let exec = manifest["phases"][0]["exec"].as_str().unwrap();
        assert!(
            matches!(parse(exec), Err(ScriptError::Unsupported { construct, .. }) if construct.contains("$["))
        );
    }

    /// Fuzzing finding: brush-parser's tokenizer never returns on
    /// `a <<'' | ` (a quote-only here-doc delimiter, then an operator that
    /// wants more input).
    #[test]
    fn quote_only_heredoc_delimiters_are_refused_before_the_tokenizer() {
        for src in [
            "a <<''<=   |&&| ",
            " iu$n tru<<'' _-[| a ",
            "cat <<\"\" | x",
            "cat <<- $'' ;",
        ] {
            assert!(
                matches!(bounds::check_size(src), Err(ScriptError::Unsupported { construct, .. }) if construct.contains("empty delimiter")),
                "{src:?}"
            );
        }
        // And a missing one: the tokenizer's memory grows without bound.
        for src in ["echo $(x << ( Z;)5 ", "x <<- ( y", "x <<", "x <<;"] {
            assert!(
                matches!(bounds::check_size(src), Err(ScriptError::Unsupported { construct, .. }) if construct.contains("without a delimiter")),
                "{src:?}"
            );
        }
        // Inside (or after) a command substitution: the tokenizer queues
        // here-document tokens until memory runs out.
        for src in [
            "x=1; ec[cho \"$} $(e<<-  h[Da4 $'tdiq x -\\ \\'&n x -(`\\  > ot\">.u0\\'&%tt1' ",
            "if. tr[T[Token::Wo$(w...p rute; eph <<-    !   @nif ; ru)e;hp",
            "echo $(cat <<EOF\nx\nEOF\n)",
            "x=`date`; cat <<EOF\n$x\nEOF\n",
            "echo $((1<<2))",
            // (Fuzzing: the message's excerpt once cut inside a character.)
            "e+$$(,e+$['_keempty pipeline<<\u{4d1}e<<\u{4d1}::Word(whil>bfaoke<<+$$(,e",
        ] {
            assert!(
                matches!(bounds::check_size(src), Err(ScriptError::Unsupported { construct, .. }) if construct.contains("after a command substitution")),
                "{src:?}"
            );
        }
        for src in [
            "cat <<EOF | wc -l\n$(date)\nEOF\n",
            "cat <<<'' | wc -c",
            "cat <<'EOF'\nx\nEOF\n",
            "cat <<\"E\"\nx\nE\n",
            "cat <<$x\nx\n$x\n",
        ] {
            assert!(bounds::check_size(src).is_ok(), "{src:?}");
        }
        // Fuzzing (2 GB from 120 bytes): an expansion in the delimiter.
        for src in [
            "if true; then\t$x echo=o cat <<EaORx$(\t;\t e\tRx$(\t$x11\t",
            "cat <<E$(x\n",
            "cat <<E${x}\nx\n",
            "cat <<-`x`\n",
            "cat << $[1\n",
        ] {
            assert!(
                matches!(bounds::check_size(src), Err(ScriptError::Unsupported { construct, .. }) if construct.contains("delimiter with an expansion")),
                "{src:?}"
            );
        }
    }

    /// Fuzzing finding: `echo a[p\:n[p\:n[...` costs the token grammar
    /// twice as much per `[` (it tries the word as an array assignment).
    #[test]
    fn bracket_heavy_subscript_words_are_refused_before_the_parser() {
        let slow = format!("echo a[{}", "p\\:n[".repeat(20));
        let tokens =
            brush_parser::uncached_tokenize_str(&slow, &lower::options().tokenizer_options())
                .expect("tokenizes");
        assert!(
            matches!(bounds::check_expansions(&tokens), Err(ScriptError::Unsupported { construct, .. }) if construct.contains("array element")),
        );
        for ok in [
            "ls f[0-9][0-9].txt",
            "grep 'a[b[c[d[e[f[g[h[i[j' x",
            "echo [[[[[[[[[[[[",
        ] {
            let tokens =
                brush_parser::uncached_tokenize_str(ok, &lower::options().tokenizer_options())
                    .expect("tokenizes");
            assert!(bounds::check_expansions(&tokens).is_ok(), "{ok:?}");
        }
    }

    /// Fuzzing finding: six `$((` in one word (with `${a:-` around) cost
    /// the word grammar 0.85 s; past two the word is refused before it runs.
    #[test]
    fn arithmetic_heavy_words_are_refused_before_the_word_grammar() {
        let word = "${a:-x$((1@[e$((1@+1)cae)c+2o $((2 $(( [T $(( [W $(( [Tok}";
        assert!(matches!(
            bounds::check_word(word),
            Err(ScriptError::Unsupported { construct, .. }) if construct.contains("arithmetic")
        ));
        // Or one, then a run of `(` (in a here-document body: >10 s).
        let heredoc = format!("hallo c[e$(({}1-+1)c)-)h", "(".repeat(80));
        assert!(matches!(
            bounds::check_word(&heredoc),
            Err(ScriptError::Unsupported { construct, .. }) if construct.contains("arithmetic")
        ));
        // One or two (a `$( (` subshell written without the space) pass.
        assert!(bounds::check_word("$((echo a) ; echo b)").is_ok());
    }

    /// Fuzzing findings: an unclosed `$(` followed by `(`s costs the word
    /// grammar 2^n (four `$(a(` then 16 `(`: over a minute), in a
    /// here-document body and in a word the tokenizer let through alike
    /// (`${x-...}` with `$(` left open: 17 s). It is refused before the
    /// grammar runs; closed ones, parentheses and all, still parse.
    #[test]
    fn parens_in_unclosed_substitutions_are_bounded() {
        let slow = [
            format!("{}{}", "$(a(".repeat(4), "(".repeat(16)),
            format!("x $(a{}", "<(".repeat(30)),
            "$(a(((((((()".repeat(50),
        ];
        for body in &slow {
            let src = format!("cat <<EOF\n{body}\nEOF\n");
            match parse(&src) {
                Err(ScriptError::Syntax(m)) => {
                    assert!(m.contains("unterminated command substitution"), "{m}")
                }
                other => panic!("{src:?}: {other:?}"),
            }
            // (On a command line the tokenizer finds the open quote first.)
            let src = format!("echo \"{body}\"");
            assert!(matches!(parse(&src), Err(ScriptError::Syntax(_))), "{src}");
        }
        // The fuzzer's own input: no here-document, a double-quoted word.
        let found = "= |print0||x ;[y\"\\hell>|$x\nc[e$(k11[@ech[:OF\nhello $(+c[e$(k11[@$]\nOF\nhello c$+([e$(k11[@$`\nEO11[@ech[:OF\nhello $(+c[e$(k11[@$]\nOF\nhello c$+([e$(k11O-\"\\'\"s";
        assert!(parse(found).is_err());
        // The same parens without a command substitution are text, and a
        // few with one still parse.
        parse(&format!("cat <<EOF\n{}\nEOF\n", "(a) ".repeat(100))).unwrap();
        parse("cat <<EOF\nat $(date) ($(hostname)) (UTC)\nEOF\n").unwrap();
        parse("echo \"$(date) ($(hostname)) (UTC)\"").unwrap();
        let closed = format!("echo \"$(echo a; {} echo b)\"", "(true); ".repeat(40));
        parse(&closed).unwrap();
        parse(&format!("cat <<EOF\n{closed} it's (\nEOF\n")).unwrap();
        // A quoted delimiter means no expansion at all: no bound.
        parse(&format!("cat <<'EOF'\n$(a{}\nEOF\n", "(".repeat(100))).unwrap();
    }

    #[test]
    fn supported_and_quoted_expansions_pass_the_pre_check() {
        for src in [
            "echo ${x} ${x:-a} ${x-b} ${1} ${10} ${?} ${#} ${@} ${*} ${-} ${!} ${$}",
            "echo \"${x:-${y}}\" $(echo ${z})",
            "echo '${a[1]}' '$[1]'",
            "echo $'\\'${a[1]}'",
            "echo \\${a[1]} \\$[1]",
            "echo \"it's ${x}\"",
            "awk '{ print $1 }' | sed 's/${x}/$[y]/'",
            "echo $( (echo a) ) ${x}",
            "echo `echo '${a[1]}'`",
        ] {
            let tokens =
                brush_parser::uncached_tokenize_str(src, &lower::options().tokenizer_options())
                    .expect("tokenizes");
            assert!(bounds::check_expansions(&tokens).is_ok(), "{src:?}");
        }
    }

    /// Fuzzing finding: brush-parser panicked on a `~-N` whose N does not
    /// fit an integer.
    #[test]
    fn directory_stack_tildes_are_refused_not_panicked() {
        for src in [
            "~-111055555555555555555555555555555555511",
            "echo ~+99999999999999999999",
            "echo ~1",
        ] {
            assert!(
                matches!(parse(src), Err(ScriptError::Unsupported { .. })),
                "{src}"
            );
        }
        parse("echo ~ ~/x").unwrap();
    }

    /// The deepest recursion the bounds let through (the tokenizer at
    /// [`MAX_EXPANSIONS`] nested `$(`, the word grammar at
    /// [`MAX_WORD_OPENERS`]) fits a quarter of [`PARSER_STACK`].
    #[test]
    fn worst_case_fits_a_quarter_of_the_parser_stack() {
        let inputs = [
            format!(
                "echo {}x{}",
                "$(echo ".repeat(MAX_EXPANSIONS),
                ")".repeat(MAX_EXPANSIONS)
            ),
            format!(
                "echo {}x{}",
                "${a:-".repeat(MAX_EXPANSIONS),
                "}".repeat(MAX_EXPANSIONS)
            ),
            format!(
                "echo {}x{}",
                "\"$(echo ".repeat(MAX_EXPANSIONS),
                ")\"".repeat(MAX_EXPANSIONS)
            ),
            format!(
                "echo $({}a{})",
                "( ".repeat(MAX_WORD_OPENERS / 2 - 2),
                " )".repeat(MAX_WORD_OPENERS / 2 - 2)
            ),
        ];
        for src in inputs {
            let r = std::thread::Builder::new()
                .stack_size(PARSER_STACK / 4)
                .spawn(move || lower::parse_at(&src, 0).map(|_| ()))
                .unwrap()
                .join()
                .unwrap();
            assert!(r.is_err(), "refused, not overflowed: {r:?}");
        }
    }

    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "if a; then ",
            "; fi",
            "while a; do ",
            "until a; do ",
            "; done",
            "for x in a; do ",
            "for x do ",
            "{ ",
            "; }",
            "(",
            ")",
            "( ",
            " )",
            "$(",
            "${a:-",
            "}",
            "`",
            "\"",
            "'",
            "[[ ",
            " ]]",
            "! ",
            "case x in a) ",
            ";;",
            " esac",
            "f() ",
            "function g ",
            "<<E\n",
            "\nE\n",
            " | ",
            " && ",
            " || ",
            "; ",
            "\n",
            "echo x",
            "\\",
            "$((",
            "))",
            "time -p ",
            "coproc ",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Random nestings of every recursive construct: an answer, never
        /// a panic, an overflow or a hang.
        #[test]
        fn random_nestings_never_crash(parts in prop::collection::vec(fragment(), 0..400)) {
            let src: String = parts.concat();
            let _ = parse(&src);
        }

        /// The same fragments repeated far past the bound.
        #[test]
        fn deep_repetitions_never_crash(
            open in prop::collection::vec(fragment(), 1..4),
            close in prop::collection::vec(fragment(), 0..3),
            n in 60usize..3000,
        ) {
            let src = format!("{}x{}", open.concat().repeat(n), close.concat().repeat(n));
            let _ = parse(&src);
        }
    }
}
