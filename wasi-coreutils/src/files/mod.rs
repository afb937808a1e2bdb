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
