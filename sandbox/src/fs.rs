//! The guest's view of the filesystem and host-side access to it.
//!
//! Guests see the scratch directory mounted read-write at `/` (so `/tmp/x`,
//! `./x` and `x` all land in scratch) and read-only directories at their
//! guest paths: for map phases the input directory (by default
//! [`DEFAULT_INPUT_GUEST_DIR`]), for jobs with assets `/assets`. A path
//! under a read-only mount's guest path is always that mount's, never
//! scratch's, so nothing there can be written. Nothing else of the host exists:
//! `/etc/passwd` is simply `<scratch>/etc/passwd`, which does not exist.
//!
//! The host opens files for the shell (redirections, `test -f`, `cd`)
//! through the same rules: the path is normalised lexically (`..` never
//! climbs above `/`), mapped to a mount, and opened with cap-primitives
//! relative to the mount's directory handle, which refuses any symlink or
//! `..` step that would leave it. This is the same confinement wasmtime-wasi
//! applies to guests.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use cap_primitives::fs::{FollowSymlinks, Metadata, OpenOptions};

/// Where the input directory appears to guests unless told otherwise.
pub const DEFAULT_INPUT_GUEST_DIR: &str = "/manta/input";

struct Mount {
    guest: String,
    dir: File,
}

/// The mounts of one run.
pub(crate) struct FsLayout {
    pub(crate) scratch_host: PathBuf,
    scratch: Mount,
    /// Read-only mounts with their host directories, longest guest path
    /// first (so the most specific mount wins).
    read_only: Vec<(PathBuf, Mount)>,
}

fn open_dir(path: &Path) -> io::Result<File> {
    cap_primitives::fs::open_ambient_dir(path, cap_primitives::ambient_authority())
}

impl FsLayout {
    /// Scratch at `/` and `read_only` (host directory, guest path) mounts.
    pub(crate) fn new(scratch: &Path, read_only: &[(&Path, &str)]) -> io::Result<FsLayout> {
        let mut ro = Vec::new();
        for (host, guest) in read_only {
            let mount = Mount {
                guest: normalize("/", guest),
                dir: open_dir(host)?,
            };
            ro.push((host.to_path_buf(), mount));
        }
        ro.sort_by_key(|(_, m)| std::cmp::Reverse(m.guest.len()));
        Ok(FsLayout {
            scratch_host: scratch.to_path_buf(),
            scratch: Mount {
                guest: "/".into(),
                dir: open_dir(scratch)?,
            },
            read_only: ro,
        })
    }

    /// The read-only mounts: host directory and guest path.
    pub(crate) fn read_only_mounts(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.read_only
            .iter()
            .map(|(host, m)| (host.as_path(), m.guest.as_str()))
    }

    /// The mount holding `path` and the path relative to it; the bool is
    /// whether the mount is writable.
    fn locate(&self, cwd: &str, path: &str) -> (&Mount, PathBuf, bool) {
        let abs = normalize(cwd, path);
        for (_, m) in &self.read_only {
            if let Some(rest) = strip_dir_prefix(&abs, &m.guest) {
                return (m, rel_path(rest), false);
            }
        }
        (&self.scratch, rel_path(&abs), true)
    }

    pub(crate) fn open_read(&self, cwd: &str, path: &str) -> io::Result<File> {
        let (m, rel, _) = self.locate(cwd, path);
        let mut o = OpenOptions::new();
        o.read(true);
        cap_primitives::fs::open(&m.dir, &rel, &o)
    }

    pub(crate) fn open_write(&self, cwd: &str, path: &str, append: bool) -> io::Result<File> {
        let (m, rel, writable) = self.locate(cwd, path);
        if !writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "read-only file system",
            ));
        }
        let mut o = OpenOptions::new();
        o.write(true).create(true).append(append).truncate(!append);
        cap_primitives::fs::open(&m.dir, &rel, &o)
    }

    /// Whether `path` lies in a writable mount (scratch, not a read-only one).
    pub(crate) fn open_write_allowed(&self, cwd: &str, path: &str) -> bool {
        self.locate(cwd, path).2
    }

    /// The names in a directory, for pathname expansion (names that are
    /// not UTF-8 cannot be shell words and are left out).
    pub(crate) fn list_dir(&self, cwd: &str, path: &str) -> io::Result<Vec<String>> {
        let (m, rel, _) = self.locate(cwd, path);
        let rd = if rel == Path::new(".") {
            cap_primitives::fs::read_base_dir(&m.dir)?
        } else {
            cap_primitives::fs::read_dir(&m.dir, &rel)?
        };
        Ok(rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect())
    }

    /// Whether `path` is a directory above a read-only mount (e.g. `/manta`
    /// for `/manta/input`): it exists for guests even if scratch lacks it.
    pub(crate) fn leads_to_mount(&self, cwd: &str, path: &str) -> bool {
        let abs = normalize(cwd, path);
        self.read_only
            .iter()
            .any(|(_, m)| m.guest != abs && strip_dir_prefix(&m.guest, &abs).is_some())
    }

    /// Metadata following symlinks (within the mount), as `test -f` wants.
    pub(crate) fn metadata(&self, cwd: &str, path: &str) -> io::Result<Metadata> {
        let (m, rel, _) = self.locate(cwd, path);
        cap_primitives::fs::stat(&m.dir, &rel, FollowSymlinks::Yes)
    }

    /// Bytes used by regular files in scratch (symlinks are not followed).
    pub(crate) fn scratch_usage(&self) -> u64 {
        fn walk(dir: &Path, total: &mut u64, depth: usize) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let Ok(md) = e.path().symlink_metadata() else {
                    continue;
                };
                if md.is_dir() && depth < 256 {
                    walk(&e.path(), total, depth + 1);
                } else if md.is_file() {
                    *total = total.saturating_add(md.len());
                }
            }
        }
        let mut total = 0;
        walk(&self.scratch_host, &mut total, 0);
        total
    }
}

/// Makes `path` absolute against `cwd` and removes `.`, `..` and repeated
/// slashes without touching the filesystem; `..` at the root stays at the
/// root, as in any chroot.
pub(crate) fn normalize(cwd: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{cwd}/{path}")
    };
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn strip_dir_prefix<'a>(abs: &'a str, dir: &str) -> Option<&'a str> {
    if dir == "/" {
        return Some(abs);
    }
    let rest = abs.strip_prefix(dir)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn rel_path(rest: &str) -> PathBuf {
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        PathBuf::from(".")
    } else {
        PathBuf::from(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalize_clamps_at_root() {
        assert_eq!(normalize("/", "../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize("/a/b", "../c/./d//e"), "/a/c/d/e");
        assert_eq!(normalize("/a", "/x/.."), "/");
        assert_eq!(normalize("/", ""), "/");
    }

    #[test]
    fn input_mount_is_read_only_and_scratch_is_confined() {
        let scratch = tempfile::tempdir().unwrap();
        let input = tempfile::tempdir().unwrap();
        std::fs::write(input.path().join("obj"), b"data").unwrap();
        let fs = FsLayout::new(scratch.path(), &[(input.path(), "/manta/input")]).unwrap();
        assert!(fs.open_read("/", "/manta/input/obj").is_ok());
        assert!(fs.open_write("/", "/manta/input/obj", false).is_err());
        // `/etc/passwd` is looked up inside scratch, where it does not exist.
        assert_eq!(
            fs.open_read("/", "/etc/passwd").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // A symlink planted in scratch that points outside is refused.
        std::os::unix::fs::symlink("/etc/passwd", scratch.path().join("evil")).unwrap();
        assert!(fs.open_read("/", "evil").is_err());
        assert!(fs.open_write("/", "evil", false).is_err());
        std::os::unix::fs::symlink("/etc", scratch.path().join("evildir")).unwrap();
        assert!(fs.open_read("/", "evildir/passwd").is_err());
        fs.open_write("/", "../../out", false).unwrap();
        assert!(scratch.path().join("out").is_file());
    }

    proptest! {
        #[test]
        fn normalized_paths_are_absolute_and_clean(cwd in "(/[a-z.]{0,3}){0,3}", p in "[a-z./]{0,12}") {
            let n = normalize(if cwd.is_empty() { "/" } else { &cwd }, &p);
            prop_assert!(n.starts_with('/'));
            prop_assert!(!n.split('/').any(|c| c == ".." || c == "."));
            prop_assert!(!n.contains("//"));
        }
    }
}
