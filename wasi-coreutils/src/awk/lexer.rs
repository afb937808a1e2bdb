//! Tokenizer for awk program text.
//!
//! Decides between `/` as division and `/` as the start of a regular
//! expression from the previous token, as every awk does. Never panics on
//! arbitrary bytes: unknown input becomes a [`ParseError`].

use super::ParseError;

/// Built-in functions (called with or, for `length`, without parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Length,
    Substr,
    Index,
    Split,
    Sub,
    Gsub,
    Match,
    Sprintf,
    Tolower,
    Toupper,
    Int,
    Sqrt,
    Exp,
    Log,
    Sin,
    Cos,
    Atan2,
    Rand,
    Srand,
    System,
    Close,
    Fflush,
}

/// One token of awk source.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Num(f64),
    Str(Vec<u8>),
    Regex(Vec<u8>),
    Name(String),
    /// A user function name immediately followed by `(`.
    FuncName(String),
    Builtin(Builtin),
    Begin,
    End,
    Function,
    If,
    Else,
    While,
    For,
    Do,
    Break,
    Continue,
    Next,
    Nextfile,
    Exit,
    Return,
    Delete,
    In,
    Getline,
    Print,
    Printf,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Semi,
    Newline,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Not,
    Gt,
    Lt,
    Ge,
    Le,
    Eq,
    Ne,
    Match,
    NoMatch,
    And,
    Or,
    Quest,
    Colon,
    Assign,
    AddAssign,
    SubAssign,
    MulAssign,
    DivAssign,
    ModAssign,
    PowAssign,
    Incr,
    Decr,
    Dollar,
    Pipe,
    Append,
    Eof,
}

/// A token and the source line it started on (for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        "BEGIN" => Tok::Begin,
        "END" => Tok::End,
        "function" | "func" => Tok::Function,
        "if" => Tok::If,
        "else" => Tok::Else,
        "while" => Tok::While,
        "for" => Tok::For,
        "do" => Tok::Do,
        "break" => Tok::Break,
        "continue" => Tok::Continue,
        "next" => Tok::Next,
        "nextfile" => Tok::Nextfile,
        "exit" => Tok::Exit,
        "return" => Tok::Return,
        "delete" => Tok::Delete,
        "in" => Tok::In,
        "getline" => Tok::Getline,
        "print" => Tok::Print,
        "printf" => Tok::Printf,
        "length" => Tok::Builtin(Builtin::Length),
        "substr" => Tok::Builtin(Builtin::Substr),
        "index" => Tok::Builtin(Builtin::Index),
        "split" => Tok::Builtin(Builtin::Split),
        "sub" => Tok::Builtin(Builtin::Sub),
        "gsub" => Tok::Builtin(Builtin::Gsub),
        "match" => Tok::Builtin(Builtin::Match),
        "sprintf" => Tok::Builtin(Builtin::Sprintf),
        "tolower" => Tok::Builtin(Builtin::Tolower),
        "toupper" => Tok::Builtin(Builtin::Toupper),
        "int" => Tok::Builtin(Builtin::Int),
        "sqrt" => Tok::Builtin(Builtin::Sqrt),
        "exp" => Tok::Builtin(Builtin::Exp),
        "log" => Tok::Builtin(Builtin::Log),
        "sin" => Tok::Builtin(Builtin::Sin),
        "cos" => Tok::Builtin(Builtin::Cos),
        "atan2" => Tok::Builtin(Builtin::Atan2),
        "rand" => Tok::Builtin(Builtin::Rand),
        "srand" => Tok::Builtin(Builtin::Srand),
        "system" => Tok::Builtin(Builtin::System),
        "close" => Tok::Builtin(Builtin::Close),
        "fflush" => Tok::Builtin(Builtin::Fflush),
        _ => return None,
    })
}

/// Unescapes one backslash sequence of an awk string; `i` is just past `\`.
/// Returns the byte(s) and the new index.
pub fn unescape(src: &[u8], mut i: usize, out: &mut Vec<u8>) -> usize {
    let Some(&c) = src.get(i) else {
        out.push(b'\\');
        return i;
    };
    i += 1;
    match c {
        b'n' => out.push(b'\n'),
        b't' => out.push(b'\t'),
        b'r' => out.push(b'\r'),
        b'\\' => out.push(b'\\'),
        b'"' => out.push(b'"'),
        b'/' => out.push(b'/'),
        b'a' => out.push(7),
        b'b' => out.push(8),
        b'f' => out.push(12),
        b'v' => out.push(11),
        b'0'..=b'7' => {
            let mut v = u32::from(c - b'0');
            let mut n = 1;
            while n < 3 {
                match src.get(i) {
                    Some(&d @ b'0'..=b'7') => {
                        v = v * 8 + u32::from(d - b'0');
                        i += 1;
                        n += 1;
                    }
                    _ => break,
                }
            }
            out.push((v & 0xff) as u8);
        }
        b'x' if src.get(i).is_some_and(u8::is_ascii_hexdigit) => {
            let mut v = 0u32;
            let mut n = 0;
            while n < 2 {
                match src.get(i) {
                    Some(d) if d.is_ascii_hexdigit() => {
                        v = v * 16 + (*d as char).to_digit(16).unwrap_or(0);
                        i += 1;
                        n += 1;
                    }
                    _ => break,
                }
            }
            out.push(v as u8);
        }
        // gawk keeps the backslash for unknown escapes (with a warning).
        other => {
            out.push(b'\\');
            out.push(other);
        }
    }
    i
}

/// Splits `src` into tokens.
pub fn lex(src: &[u8]) -> Result<Vec<Token>, ParseError> {
    let mut toks: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let err = |line: usize, msg: &str| ParseError {
        fatal: false,
        line,
        msg: msg.to_string(),
    };
    while i < src.len() {
        let c = src[i];
        let start_line = line;
        let tok = match c {
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'\\' if src.get(i + 1) == Some(&b'\n') => {
                i += 2;
                line += 1;
                continue;
            }
            b'\\' if src.get(i + 1) == Some(&b'\r') && src.get(i + 2) == Some(&b'\n') => {
                i += 3;
                line += 1;
                continue;
            }
            b'#' => {
                while i < src.len() && src[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\n' => {
                i += 1;
                line += 1;
                Tok::Newline
            }
            b'"' => {
                i += 1;
                let mut s = Vec::new();
                loop {
                    match src.get(i) {
                        None | Some(b'\n') => return Err(err(line, "unterminated string")),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            if src.get(i + 1) == Some(&b'\n') {
                                i += 2;
                                line += 1;
                            } else {
                                i = unescape(src, i + 1, &mut s);
                            }
                        }
                        Some(&b) => {
                            s.push(b);
                            i += 1;
                        }
                    }
                }
                Tok::Str(s)
            }
            b'/' if regex_allowed(toks.last().map(|t| &t.tok)) => {
                i += 1;
                let mut s = Vec::new();
                let mut in_bracket = false;
                loop {
                    match src.get(i) {
                        None | Some(b'\n') => {
                            return Err(err(line, "unterminated regexp"));
                        }
                        Some(b'/') if !in_bracket => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if src.get(i + 1) == Some(&b'/') => {
                            s.push(b'/');
                            i += 2;
                        }
                        Some(b'\\') => {
                            s.push(b'\\');
                            if let Some(&n) = src.get(i + 1) {
                                s.push(n);
                            }
                            i += 2;
                        }
                        Some(b'[') if !in_bracket => {
                            in_bracket = true;
                            s.push(b'[');
                            i += 1;
                            if src.get(i) == Some(&b'^') {
                                s.push(b'^');
                                i += 1;
                            }
                            if src.get(i) == Some(&b']') {
                                s.push(b']');
                                i += 1;
                            }
                        }
                        Some(b'[') if src.get(i + 1) == Some(&b':') => {
                            // A class name inside a bracket: copy through `:]`.
                            let end = src[i..]
                                .windows(2)
                                .position(|w| w == b":]")
                                .map(|p| i + p + 2)
                                .unwrap_or(i + 1);
                            s.extend_from_slice(&src[i..end]);
                            i = end;
                        }
                        Some(b']') if in_bracket => {
                            in_bracket = false;
                            s.push(b']');
                            i += 1;
                        }
                        Some(&b) => {
                            s.push(b);
                            i += 1;
                        }
                    }
                }
                Tok::Regex(s)
            }
            b'0'..=b'9' | b'.' if c != b'.' || src.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (n, len) = super::value::parse_number_prefix(&src[i..]);
                // Hex constants (gawk non-POSIX extension) are not supported.
                i += len.max(1);
                Tok::Num(n)
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let s = i;
                while i < src.len() && (src[i].is_ascii_alphanumeric() || src[i] == b'_') {
                    i += 1;
                }
                let word = std::str::from_utf8(&src[s..i]).unwrap_or("").to_string();
                match keyword(&word) {
                    Some(t) => t,
                    None if src.get(i) == Some(&b'(') => Tok::FuncName(word),
                    None => Tok::Name(word),
                }
            }
            _ => {
                let two = src.get(i + 1).copied();
                let three = src.get(i + 2).copied();
                let (t, n) = match (c, two) {
                    (b'*', Some(b'*')) if three == Some(b'=') => (Tok::PowAssign, 3),
                    (b'*', Some(b'*')) => (Tok::Caret, 2),
                    (b'&', Some(b'&')) => (Tok::And, 2),
                    (b'|', Some(b'|')) => (Tok::Or, 2),
                    (b'>', Some(b'>')) => (Tok::Append, 2),
                    (b'>', Some(b'=')) => (Tok::Ge, 2),
                    (b'<', Some(b'=')) => (Tok::Le, 2),
                    (b'=', Some(b'=')) => (Tok::Eq, 2),
                    (b'!', Some(b'=')) => (Tok::Ne, 2),
                    (b'!', Some(b'~')) => (Tok::NoMatch, 2),
                    (b'+', Some(b'+')) => (Tok::Incr, 2),
                    (b'-', Some(b'-')) => (Tok::Decr, 2),
                    (b'+', Some(b'=')) => (Tok::AddAssign, 2),
                    (b'-', Some(b'=')) => (Tok::SubAssign, 2),
                    (b'*', Some(b'=')) => (Tok::MulAssign, 2),
                    (b'/', Some(b'=')) => (Tok::DivAssign, 2),
                    (b'%', Some(b'=')) => (Tok::ModAssign, 2),
                    (b'^', Some(b'=')) => (Tok::PowAssign, 2),
                    (b'{', _) => (Tok::LBrace, 1),
                    (b'}', _) => (Tok::RBrace, 1),
                    (b'(', _) => (Tok::LParen, 1),
                    (b')', _) => (Tok::RParen, 1),
                    (b'[', _) => (Tok::LBracket, 1),
                    (b']', _) => (Tok::RBracket, 1),
                    (b';', _) => (Tok::Semi, 1),
                    (b',', _) => (Tok::Comma, 1),
                    (b'+', _) => (Tok::Plus, 1),
                    (b'-', _) => (Tok::Minus, 1),
                    (b'*', _) => (Tok::Star, 1),
                    (b'/', _) => (Tok::Slash, 1),
                    (b'%', _) => (Tok::Percent, 1),
                    (b'^', _) => (Tok::Caret, 1),
                    (b'!', _) => (Tok::Not, 1),
                    (b'>', _) => (Tok::Gt, 1),
                    (b'<', _) => (Tok::Lt, 1),
                    (b'~', _) => (Tok::Match, 1),
                    (b'?', _) => (Tok::Quest, 1),
                    (b':', _) => (Tok::Colon, 1),
                    (b'=', _) => (Tok::Assign, 1),
                    (b'$', _) => (Tok::Dollar, 1),
                    (b'|', _) => (Tok::Pipe, 1),
                    _ => {
                        return Err(err(
                            line,
                            &format!("invalid char '{}' in expression", c.escape_ascii()),
                        ));
                    }
                };
                i += n;
                t
            }
        };
        toks.push(Token {
            tok,
            line: start_line,
        });
    }
    toks.push(Token {
        tok: Tok::Eof,
        line,
    });
    Ok(toks)
}

/// `/` starts a regex unless the previous token ends an operand.
fn regex_allowed(prev: Option<&Tok>) -> bool {
    !matches!(
        prev,
        Some(
            Tok::Num(_)
                | Tok::Str(_)
                | Tok::Name(_)
                | Tok::RParen
                | Tok::RBracket
                | Tok::Dollar
                | Tok::Incr
                | Tok::Decr
                | Tok::Builtin(Builtin::Length)
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn regex_versus_division() {
        assert_eq!(toks("a / 2")[1], Tok::Slash);
        assert_eq!(toks("/a[/]b/")[0], Tok::Regex(b"a[/]b".to_vec()));
        assert_eq!(toks("x ~ /\\//")[2], Tok::Regex(b"/".to_vec()));
    }

    #[test]
    fn strings_and_numbers() {
        assert_eq!(toks(r#""a\tb\101""#)[0], Tok::Str(b"a\tbA".to_vec()));
        assert_eq!(toks("1.5e3")[0], Tok::Num(1500.0));
        assert_eq!(toks("f(")[0], Tok::FuncName("f".into()));
        assert_eq!(toks("f (")[0], Tok::Name("f".into()));
    }
}
