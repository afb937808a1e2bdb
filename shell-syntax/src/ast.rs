//! The subset of POSIX shell the sandbox runs, as a small tree.
//!
//! Everything in this tree is supported by the sandbox's interpreter:
//! anything the parser accepts but this tree cannot express was rejected
//! while lowering, before the run started. Its depth is at most
//! [`MAX_NESTING`](crate::MAX_NESTING) levels, so the interpreter may walk
//! it recursively. The enums are deliberately not `#[non_exhaustive]`: the
//! interpreter must match every construct, and a new one must fail to
//! compile there until it is handled.

pub use crate::arith::Arith;

/// A sequence of and-or lists (`a; b && c`).
#[derive(Debug, Clone, Default)]
pub struct Script(pub Vec<AndOr>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connector {
    And,
    Or,
}

#[derive(Debug, Clone)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Connector, Pipeline)>,
    /// Ended by `&`: run as a background job of the shell.
    pub background: bool,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub bang: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub kind: CommandKind,
    pub redirs: Vec<Redir>,
}

#[derive(Debug, Clone)]
pub enum CommandKind {
    /// `NAME=value... word...`
    Simple {
        assigns: Vec<(String, Word)>,
        words: Vec<Word>,
    },
    /// `if c; then t; elif c2; then t2; else e; fi`
    If {
        arms: Vec<(Script, Script)>,
        otherwise: Option<Script>,
    },
    /// `for v in words; do body; done` (no `in`: no positional parameters, so no iterations)
    For {
        var: String,
        items: Vec<Word>,
        body: Script,
    },
    /// `while`/`until cond; do body; done`
    While {
        cond: Script,
        body: Script,
        until: bool,
    },
    /// `{ ...; }` or `( ... )` (a subshell keeps its variable changes to itself)
    Group { body: Script, subshell: bool },
    /// `[[ expr ]]`
    Test(TestExpr),
    /// `for ((init; cond; step)); do body; done` (a missing condition is true)
    ArithFor {
        init: Option<Arith>,
        cond: Option<Arith>,
        step: Option<Arith>,
        body: Script,
    },
    /// `((expr))`: status 0 when the value is not zero
    Arith(Arith),
}

/// `[[ ... ]]` expressions.
#[derive(Debug, Clone)]
pub enum TestExpr {
    And(Box<TestExpr>, Box<TestExpr>),
    Or(Box<TestExpr>, Box<TestExpr>),
    Not(Box<TestExpr>),
    Unary(String, Word),
    Binary(String, Word, Word),
}

/// A word: pieces concatenated, then (for unquoted expansions) split on blanks.
#[derive(Debug, Clone, Default)]
pub struct Word(pub Vec<Piece>);

#[derive(Debug, Clone)]
pub enum Piece {
    /// Literal text; `quoted` text is never split.
    Text { text: String, quoted: bool },
    /// `$NAME`, `${NAME}`, `$?`, `${NAME:-default}`.
    Param {
        name: String,
        quoted: bool,
        default: Option<(Word, bool)>,
    },
    /// `$(...)` or `` `...` ``.
    Subst { script: Script, quoted: bool },
    /// `$((...))`
    Arith { expr: Arith, quoted: bool },
}

#[derive(Debug, Clone)]
pub enum Redir {
    /// `[fd]< file`
    Input(Word),
    /// `<<< word` and here-documents: the expanded text is stdin.
    InputText(Word),
    /// `[fd]> file`, `[fd]>> file` (fd 1 or 2).
    Output { fd: u8, target: Word, append: bool },
    /// `&> file`, `&>> file`
    Both { target: Word, append: bool },
    /// `2>&1` (fd=2, to=1) or `1>&2` / `>&2` (fd=1, to=2).
    Dup { fd: u8, to: u8 },
}

impl Script {
    /// The longest pipeline anywhere in the script, including in `$(...)`.
    pub fn max_pipeline(&self) -> usize {
        self.0.iter().map(AndOr::max_pipeline).max().unwrap_or(0)
    }
}

impl AndOr {
    fn max_pipeline(&self) -> usize {
        std::iter::once(&self.first)
            .chain(self.rest.iter().map(|(_, p)| p))
            .map(Pipeline::max_pipeline)
            .max()
            .unwrap_or(0)
    }
}

impl Pipeline {
    fn max_pipeline(&self) -> usize {
        let inner = self
            .cmds
            .iter()
            .map(Command::max_pipeline)
            .max()
            .unwrap_or(0);
        inner.max(self.cmds.len())
    }
}

impl Command {
    fn max_pipeline(&self) -> usize {
        let from_words = |ws: &[Word]| ws.iter().map(Word::max_pipeline).max().unwrap_or(0);
        let redirs = self
            .redirs
            .iter()
            .map(|r| match r {
                Redir::Input(w)
                | Redir::InputText(w)
                | Redir::Output { target: w, .. }
                | Redir::Both { target: w, .. } => w.max_pipeline(),
                Redir::Dup { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        let own = match &self.kind {
            CommandKind::Simple { assigns, words } => from_words(words).max(
                assigns
                    .iter()
                    .map(|(_, w)| w.max_pipeline())
                    .max()
                    .unwrap_or(0),
            ),
            CommandKind::If { arms, otherwise } => arms
                .iter()
                .map(|(c, t)| c.max_pipeline().max(t.max_pipeline()))
                .chain(otherwise.iter().map(Script::max_pipeline))
                .max()
                .unwrap_or(0),
            CommandKind::For { items, body, .. } => from_words(items).max(body.max_pipeline()),
            CommandKind::While { cond, body, .. } => cond.max_pipeline().max(body.max_pipeline()),
            CommandKind::Group { body, .. } => body.max_pipeline(),
            CommandKind::ArithFor { body, .. } => body.max_pipeline(),
            CommandKind::Test(_) | CommandKind::Arith(_) => 0,
        };
        own.max(redirs)
    }
}

impl Word {
    fn max_pipeline(&self) -> usize {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Subst { script, .. } => script.max_pipeline(),
                Piece::Param {
                    default: Some((w, _)),
                    ..
                } => w.max_pipeline(),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// A word made of one literal (used by builtins that synthesize commands).
    pub fn literal(s: &str) -> Word {
        Word(vec![Piece::Text {
            text: s.to_owned(),
            quoted: true,
        }])
    }
}
