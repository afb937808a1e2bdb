//! Word expansion: parameters, `$(...)`, quoting and field splitting, and
//! `[[ ... ]]` evaluation (which expands its operands without splitting).
//!
//! Splitting follows POSIX with the default `IFS` (space, tab, newline):
//! only unquoted expansions split, and an unquoted expansion that yields
//! nothing yields no field. Fields then undergo pathname expansion
//! ([`super::glob`]): unquoted `*`, `?` and `[...]`, from the script's
//! text or from unquoted expansions, are patterns; quoted ones are not.

use futures::future::BoxFuture;

use super::interp::{Shell, Stop};
use crate::stage::Stdio;
use shell_syntax::ast::{Piece, TestExpr, Word};

fn is_ifs(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n')
}

#[derive(Default)]
struct Fields {
    /// Finished fields, each with its glob pattern when it has an unquoted
    /// pattern character.
    done: Vec<(String, Option<String>)>,
    cur: String,
    /// `cur` as a pattern: quoted characters escaped.
    pat: String,
    /// `pat` has unquoted `*`, `?` or `[`.
    active: bool,
    has: bool,
}

impl Fields {
    fn push_quoted(&mut self, s: &str) {
        self.cur.push_str(s);
        super::glob::escape(s, &mut self.pat);
        self.has = true;
    }

    /// Unquoted text: its pattern characters are live; a backslash is not
    /// an escape here (the parser already removed quoting).
    fn push_unquoted(&mut self, s: &str) {
        self.cur.push_str(s);
        for c in s.chars() {
            match c {
                '*' | '?' | '[' => {
                    self.active = true;
                    self.pat.push(c);
                }
                ']' => self.pat.push(c),
                c => super::glob::escape(c.encode_utf8(&mut [0; 4]), &mut self.pat),
            }
        }
        self.has = true;
    }

    fn end(&mut self) {
        if self.has {
            let pat = std::mem::take(&mut self.pat);
            self.done
                .push((std::mem::take(&mut self.cur), self.active.then_some(pat)));
            self.has = false;
            self.active = false;
        } else {
            self.pat.clear();
        }
    }

    fn push_split(&mut self, v: &str) {
        if v.is_empty() {
            return;
        }
        if v.starts_with(is_ifs) {
            self.end();
        }
        for (i, part) in v.split(is_ifs).filter(|p| !p.is_empty()).enumerate() {
            if i > 0 {
                self.end();
            }
            self.push_unquoted(part);
        }
        if v.ends_with(is_ifs) {
            self.end();
        }
    }

    fn len(&self) -> usize {
        self.cur.len() + self.done.iter().map(|d| d.0.len() + 1).sum::<usize>()
    }
}

impl Shell {
    /// Expands a word into fields (command arguments, `for` lists).
    pub(crate) async fn expand_fields(
        &mut self,
        w: &Word,
        io: &Stdio,
    ) -> Result<Vec<String>, Stop> {
        let mut f = Fields::default();
        self.expand_into(w, io, &mut f, false).await?;
        f.end();
        let mut out = Vec::with_capacity(f.done.len());
        for (text, pat) in f.done {
            let found = match pat {
                Some(pat) => {
                    let (fs, cwd) = (self.ctx.fs.clone(), self.cwd.clone());
                    tokio::task::spawn_blocking(move || super::glob::expand(&fs, &cwd, &pat))
                        .await
                        .unwrap_or_default()
                }
                None => Vec::new(),
            };
            if found.is_empty() {
                out.push(text);
            } else {
                out.extend(found);
            }
            self.check_size(out.iter().map(|s| s.len() + 1).sum())?;
        }
        Ok(out)
    }

    /// Expands a word into one string, without splitting (assignments,
    /// redirection targets, here-documents, test operands).
    pub(crate) async fn expand_string(&mut self, w: &Word, io: &Stdio) -> Result<String, Stop> {
        let mut f = Fields::default();
        self.expand_into(w, io, &mut f, true).await?;
        Ok(f.cur)
    }

    fn expand_into<'a>(
        &'a mut self,
        w: &'a Word,
        io: &'a Stdio,
        f: &'a mut Fields,
        no_split: bool,
    ) -> BoxFuture<'a, Result<(), Stop>> {
        Box::pin(async move {
            for piece in &w.0 {
                let (value, quoted) = match piece {
                    Piece::Text { text, quoted } => (text.clone(), *quoted),
                    Piece::Param {
                        name,
                        quoted,
                        default,
                    } => {
                        let mut v = self.lookup(name);
                        if let Some((dw, colon)) = default {
                            let use_default = match &v {
                                None => true,
                                Some(s) => *colon && s.is_empty(),
                            };
                            if use_default {
                                let mut sub = Fields::default();
                                self.expand_into(dw, io, &mut sub, true).await?;
                                v = Some(sub.cur);
                            }
                        }
                        (v.unwrap_or_default(), *quoted)
                    }
                    Piece::Subst { script, quoted } => (self.capture(script, io).await?, *quoted),
                };
                if quoted || no_split {
                    f.push_quoted(&value);
                } else {
                    f.push_split(&value);
                }
                self.check_size(f.len())?;
            }
            Ok(())
        })
    }

    /// Evaluates `[[ ... ]]`: `Ok(Err(msg))` is a usage error (status 2).
    pub(crate) fn eval_test<'a>(
        &'a mut self,
        e: &'a TestExpr,
        io: &'a Stdio,
    ) -> BoxFuture<'a, Result<Result<bool, String>, Stop>> {
        Box::pin(async move {
            Ok(match e {
                TestExpr::And(l, r) => match self.eval_test(l, io).await? {
                    Ok(true) => self.eval_test(r, io).await?,
                    other => other,
                },
                TestExpr::Or(l, r) => match self.eval_test(l, io).await? {
                    Ok(false) => self.eval_test(r, io).await?,
                    other => other,
                },
                TestExpr::Not(x) => self.eval_test(x, io).await?.map(|b| !b),
                TestExpr::Unary(op, w) => {
                    let v = self.expand_string(w, io).await?;
                    super::builtins::unary_test(self, op, &v)
                }
                TestExpr::Binary(op, l, r) => {
                    let a = self.expand_string(l, io).await?;
                    let b = self.expand_string(r, io).await?;
                    match op.as_str() {
                        "==" => Ok(glob_match(&b, &a)),
                        "!=" => Ok(!glob_match(&b, &a)),
                        _ => super::builtins::binary_test(op, &a, &b),
                    }
                }
            })
        })
    }
}

/// Shell pattern match (`*`, `?`, `[...]` not supported as classes: literal)
/// for `[[ a == pattern ]]`.
pub(crate) fn glob_match(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splitting() {
        let mut f = Fields::default();
        f.push_quoted("a");
        f.push_split("b c ");
        f.push_quoted("d");
        f.end();
        let done: Vec<&str> = f.done.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(done, ["ab", "c", "d"]);
        let mut f = Fields::default();
        f.push_split("   ");
        f.end();
        assert!(f.done.is_empty());
    }

    #[test]
    fn globbing() {
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(!glob_match("abc", "abd"));
    }

    proptest! {
        #[test]
        fn literal_patterns_match_only_themselves(a in "[a-z]{0,8}", b in "[a-z]{0,8}") {
            prop_assert_eq!(glob_match(&a, &b), a == b);
            prop_assert!(glob_match("*", &b));
        }
    }
}
