//! Shared copying logic of `cp` and `mv` (the latter falls back to copying
//! when a rename is not possible). Symlinks inside a recursive copy are
//! recreated as symlinks, never followed, so a copy cannot reach outside
//! the tree it was given.

use std::fs;
use std::io;
use std::path::Path;

use crate::files::io_msg;

/// Creates a symlink at `dst` with the same target text as `src`.
fn copy_link(src: &Path, dst: &Path) -> io::Result<()> {
    let target = fs::read_link(src)?;
    make_symlink(&target, dst)
}

/// Creates a symbolic link. Stable Rust offers no safe way to do this on
/// WASI (`std::os::wasi::fs::symlink_path` is unstable and this workspace
/// denies `unsafe`), so there it fails with `Unsupported` rather than
/// silently copying the target.
pub fn make_symlink(target: &Path, at: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, at)
    }
    #[cfg(not(unix))]
    {
        let _ = (target, at);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "creating symbolic links is not supported in the wasm sandbox",
        ))
    }
}

/// Copies `src` to `dst` (recursively when `recursive`); reports errors as
/// `tool: message` on stderr and returns false if anything failed.
pub fn copy(tool: &str, src: &Path, dst: &Path, recursive: bool, top: bool) -> bool {
    let meta = match if top {
        fs::metadata(src)
    } else {
        fs::symlink_metadata(src)
    } {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{tool}: cannot stat '{}': {}", src.display(), io_msg(&e));
            return false;
        }
    };
    if meta.file_type().is_symlink() {
        let _ = fs::remove_file(dst);
        return match copy_link(src, dst) {
            Ok(()) => true,
            Err(e) => {
                eprintln!(
                    "{tool}: cannot create symbolic link '{}': {}",
                    dst.display(),
                    io_msg(&e)
                );
                false
            }
        };
    }
    if meta.is_dir() {
        if !recursive {
            eprintln!(
                "{tool}: -r not specified; omitting directory '{}'",
                src.display()
            );
            return false;
        }
        // A relative name's parent is "", which means the current directory.
        let parent = dst
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let (Ok(s), Ok(d)) = (fs::canonicalize(src), fs::canonicalize(parent))
            && d.starts_with(&s)
        {
            eprintln!(
                "{tool}: cannot copy a directory, '{}', into itself, '{}'",
                src.display(),
                dst.display()
            );
            return false;
        }
        if !dst.is_dir()
            && let Err(e) = fs::create_dir(dst)
        {
            eprintln!(
                "{tool}: cannot create directory '{}': {}",
                dst.display(),
                io_msg(&e)
            );
            return false;
        }
        let mut ok = true;
        let mut children: Vec<_> = match fs::read_dir(src) {
            Ok(rd) => rd.filter_map(Result::ok).map(|d| d.file_name()).collect(),
            Err(e) => {
                eprintln!("{tool}: cannot access '{}': {}", src.display(), io_msg(&e));
                return false;
            }
        };
        children.sort();
        for c in children {
            ok &= copy(tool, &src.join(&c), &dst.join(&c), recursive, false);
        }
        return ok;
    }
    match fs::copy(src, dst) {
        Ok(_) => true,
        Err(e) => {
            eprintln!(
                "{tool}: cannot create regular file '{}': {}",
                dst.display(),
                io_msg(&e)
            );
            false
        }
    }
}
