//! Helpers shared by the file tools (and `jq`/`json`): GNU-style error text
//! for I/O errors and short-option parsing.

use std::io;

/// The strerror-like text GNU tools print for an I/O error
/// (`No such file or directory`), without Rust's ` (os error N)` suffix.
pub fn io_msg(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "No such file or directory".to_string(),
        io::ErrorKind::PermissionDenied => "Permission denied".to_string(),
        io::ErrorKind::AlreadyExists => "File exists".to_string(),
        io::ErrorKind::IsADirectory => "Is a directory".to_string(),
        io::ErrorKind::NotADirectory => "Not a directory".to_string(),
        io::ErrorKind::DirectoryNotEmpty => "Directory not empty".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

pub mod copy;
pub mod datefmt;
pub mod glob;
pub mod gz;
pub mod hashsum;
pub mod paths;

use std::ffi::OsString;

/// A long option: its name, the short letter it stands for (or a private
/// code point for long-only options), and whether it takes a value.
pub type LongOpt = (&'static str, char, bool);

/// Parsed command line: options in order (letter, value) and operands.
#[derive(Debug, Default)]
pub struct Parsed {
    pub opts: Vec<(char, Option<String>)>,
    pub operands: Vec<OsString>,
}

impl Parsed {
    /// True if option `c` was given.
    pub fn has(&self, c: char) -> bool {
        self.opts.iter().any(|(o, _)| *o == c)
    }
    /// The last value of option `c`.
    pub fn value(&self, c: char) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(o, _)| *o == c)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// GNU-style option parsing: options may follow operands, `--` ends them,
/// `-` is an operand, short flags cluster (`-rf`), a short option's value
/// may be attached (`-w0`) or the next word, `--long=value` or `--long value`.
/// `flags` lists the short letters without values, `valued` those with.
/// Returns the GNU-style complaint for an unknown or incomplete option.
pub fn getopt(
    args: &[OsString],
    flags: &str,
    valued: &str,
    longs: &[LongOpt],
) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut i = 1;
    let mut only_operands = false;
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        i += 1;
        if only_operands || a == "-" || !a.starts_with('-') {
            p.operands.push(args[i - 1].clone());
            continue;
        }
        if a == "--" {
            only_operands = true;
            continue;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            // GNU accepts unambiguous prefixes of long options.
            let exact = longs.iter().find(|l| l.0 == name);
            let cands: Vec<&LongOpt> = longs.iter().filter(|l| l.0.starts_with(name)).collect();
            let opt = match (exact, cands.len()) {
                (Some(l), _) => l,
                (None, 1) => cands[0],
                (None, 0) => return Err(format!("unrecognized option '--{name}'")),
                _ => return Err(format!("option '--{name}' is ambiguous")),
            };
            let value = if opt.2 {
                match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = args.get(i).map(|v| v.to_string_lossy().into_owned());
                        i += 1;
                        Some(v.ok_or_else(|| format!("option '--{}' requires an argument", opt.0))?)
                    }
                }
            } else {
                if inline.is_some() {
                    return Err(format!("option '--{}' doesn't allow an argument", opt.0));
                }
                None
            };
            p.opts.push((opt.1, value));
            continue;
        }
        let chars: Vec<char> = a[1..].chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k];
            k += 1;
            if valued.contains(c) {
                let rest: String = chars[k..].iter().collect();
                let v = if !rest.is_empty() {
                    rest
                } else {
                    let v = args.get(i).map(|v| v.to_string_lossy().into_owned());
                    i += 1;
                    v.ok_or_else(|| format!("option requires an argument -- '{c}'"))?
                };
                p.opts.push((c, Some(v)));
                break;
            } else if flags.contains(c) {
                p.opts.push((c, None));
            } else {
                return Err(format!("invalid option -- '{c}'"));
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn getopt_clusters_values_and_permutes() {
        let p = getopt(
            &os(&["t", "a", "-rw5", "b", "--wrap=7", "--", "-x"]),
            "r",
            "w",
            &[("wrap", 'w', true)],
        )
        .unwrap();
        assert!(p.has('r'));
        assert_eq!(p.value('w'), Some("7"));
        assert_eq!(p.operands, os(&["a", "b", "-x"]));
        assert!(getopt(&os(&["t", "-z"]), "r", "", &[]).is_err());
        assert!(getopt(&os(&["t", "-w"]), "", "w", &[]).is_err());
        let p = getopt(&os(&["t", "--wr", "3"]), "", "w", &[("wrap", 'w', true)]).unwrap();
        assert_eq!(p.value('w'), Some("3"));
    }
}
