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
use shell_syntax::ast::{CommandKind, Piece, Redir, Script, TestExpr, Word};

/// How [`Shell::expand_into`] adds an expansion's value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Unquoted values split into fields (command words).
    Split,
    /// One string (assignments, redirection targets).
    Join,
    /// One pattern: unquoted values keep `*`, `?`, `[...]` live
    /// (`[[ x == pattern ]]`).
    Pattern,
}

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
        if self.args.len() == 1 && is_quoted_at(w) {
            // `"$@"` with no positional parameters is no field at all.
            return Ok(Vec::new());
        }
        let mut f = Fields::default();
        self.expand_into(w, io, &mut f, Mode::Split).await?;
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
        self.expand_into(w, io, &mut f, Mode::Join).await?;
        Ok(f.cur)
    }

    /// Expands a word into a pattern: quoted parts escaped, unquoted ones
    /// live (bash's right side of `[[ x == y ]]`).
    async fn expand_pattern(&mut self, w: &Word, io: &Stdio) -> Result<String, Stop> {
        let mut f = Fields::default();
        self.expand_into(w, io, &mut f, Mode::Pattern).await?;
        Ok(f.pat)
    }

    /// `$(< file)`: the file's contents, trailing newlines removed, without
    /// running a command (bash reads the file itself).
    async fn read_file_subst(&mut self, target: &Word, io: &Stdio) -> Result<String, Stop> {
        use tokio::io::AsyncReadExt;
        let path = self.expand_string(target, io).await?;
        let limit = self.ctx.run.limits.args_bytes;
        let file = match self.ctx.fs.open_read(&self.cwd, &path) {
            Ok(f) => f,
            Err(e) => {
                self.complain(io, &format!("{path}: {e}")).await;
                self.status = 1;
                return Ok(String::new());
            }
        };
        let mut out = Vec::new();
        let read = tokio::fs::File::from_std(file)
            .take(limit + 1)
            .read_to_end(&mut out)
            .await;
        if let Err(e) = read {
            self.complain(io, &format!("{path}: {e}")).await;
            self.status = 1;
            return Ok(String::new());
        }
        self.check_size(out.len())?;
        while out.last() == Some(&b'\n') {
            out.pop();
        }
        self.status = 0;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn expand_into<'a>(
        &'a mut self,
        w: &'a Word,
        io: &'a Stdio,
        f: &'a mut Fields,
        mode: Mode,
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
                                self.expand_into(dw, io, &mut sub, Mode::Join).await?;
                                v = Some(sub.cur);
                            }
                        }
                        if name == "@" && *quoted && mode == Mode::Split {
                            // `"$@"`: each positional parameter a field.
                            let args = self.args.clone();
                            for (i, a) in args[1..].iter().enumerate() {
                                if i > 0 {
                                    f.end();
                                }
                                f.push_quoted(a);
                            }
                            self.check_size(f.len())?;
                            continue;
                        }
                        (v.unwrap_or_default(), *quoted)
                    }
                    Piece::Subst { script, quoted } => match file_subst(script) {
                        Some(target) => (self.read_file_subst(target, io).await?, *quoted),
                        None => (self.capture(script, io).await?, *quoted),
                    },
                    Piece::Arith { expr, quoted } => {
                        match shell_syntax::arith::eval(expr, self) {
                            Ok(v) => (v.to_string(), *quoted),
                            Err(msg) => {
                                // bash: an arithmetic error in an expansion
                                // ends a non-interactive shell.
                                self.complain(io, &msg).await;
                                return Err(Stop::Exit(1));
                            }
                        }
                    }
                };
                match mode {
                    _ if quoted => f.push_quoted(&value),
                    Mode::Join => f.push_quoted(&value),
                    Mode::Split => f.push_split(&value),
                    Mode::Pattern => f.push_unquoted(&value),
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
                TestExpr::Binary(op, l, r) if matches!(op.as_str(), "==" | "=" | "!=") => {
                    let a = self.expand_string(l, io).await?;
                    let pat = self.expand_pattern(r, io).await?;
                    Ok(super::glob::matches_string(&pat, &a) == (op != "!="))
                }
                TestExpr::Binary(op, l, r) => {
                    let a = self.expand_string(l, io).await?;
                    let b = self.expand_string(r, io).await?;
                    super::builtins::binary_test(op, &a, &b)
                }
            })
        })
    }
}

/// Whether `w` is `"$@"` (alone in its word).
fn is_quoted_at(w: &Word) -> bool {
    let mut at = false;
    for p in &w.0 {
        match p {
            Piece::Text { text, quoted: true } if text.is_empty() => {}
            Piece::Param {
                name,
                quoted: true,
                default: None,
            } if name == "@" => at = true,
            _ => return false,
        }
    }
    at
}

/// The file of `$(< file)`: a substitution that is one redirection of stdin
/// and nothing else.
fn file_subst(script: &Script) -> Option<&Word> {
    let [ao] = script.0.as_slice() else {
        return None;
    };
    if !ao.rest.is_empty() || ao.background || ao.first.bang {
        return None;
    }
    let [cmd] = ao.first.cmds.as_slice() else {
        return None;
    };
    match (&cmd.kind, cmd.redirs.as_slice()) {
        (CommandKind::Simple { assigns, words }, [Redir::Input(w)])
            if assigns.is_empty() && words.is_empty() =>
        {
            Some(w)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn file_substitution_is_recognised() {
        let s = shell_syntax::parse("echo $(< f.txt) $(cat < f.txt) $(< a < b)").unwrap();
        let CommandKind::Simple { words, .. } = &s.0[0].first.cmds[0].kind else {
            panic!("simple command");
        };
        let subst = |i: usize| match &words[i].0[0] {
            Piece::Subst { script, .. } => file_subst(script).is_some(),
            _ => panic!("substitution"),
        };
        assert!(subst(1));
        assert!(!subst(2));
        assert!(!subst(3));
    }

    #[test]
    fn quoted_at_alone() {
        let w = |src: &str| {
            let s = shell_syntax::parse(src).unwrap();
            let CommandKind::Simple { words, .. } = &s.0[0].first.cmds[0].kind else {
                panic!("simple command");
            };
            is_quoted_at(&words[1])
        };
        assert!(w("echo \"$@\""));
        assert!(!w("echo \"x$@\""));
        assert!(!w("echo $@"));
    }
}
