//! Content types as Manta normalised them: a `Content-Type` that is not
//! `type/subtype` was taken for a file extension and looked up (muskie's
//! `cleanupContentType` ran `mime.lookup` on it), so `jpg` is stored as
//! `image/jpeg`, and anything not found (`argle/`, `/*`) as
//! `application/octet-stream`.
//!
//! Guarantees: [`normalize`] never panics and always returns a valid
//! `type/subtype` (possibly with the parameters the client sent) that is
//! a valid header value. The table holds the common extensions, not the
//! whole IANA registry muskie's lookup had.

use crate::headers::DEFAULT_CONTENT_TYPE;

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+.^_`|~-".contains(c))
}

/// Whether `ct` (parameters allowed) starts with a well-formed `type/subtype`.
pub fn is_media_type(ct: &str) -> bool {
    let media = ct.split(';').next().unwrap_or("").trim();
    match media.split_once('/') {
        Some((t, s)) => (is_token(t) && is_token(s) && t != "*") || (t == "*" && s == "*"),
        None => false,
    }
}

/// The type of a file extension (case-insensitive), if known.
pub fn by_extension(ext: &str) -> Option<&'static str> {
    let t = match ext.to_ascii_lowercase().as_str() {
        "txt" | "text" | "conf" | "def" | "list" | "log" | "in" | "ini" => "text/plain",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "md" | "markdown" => "text/x-markdown",
        "ics" | "ifb" => "text/calendar",
        "yaml" | "yml" => "text/yaml",
        "xml" | "xsl" => "application/xml",
        "js" => "application/javascript",
        "json" | "map" => "application/json",
        "pdf" => "application/pdf",
        "ps" | "eps" | "ai" => "application/postscript",
        "rtf" => "application/rtf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/x-gzip",
        "bz2" | "bz" => "application/x-bzip2",
        "xz" => "application/x-xz",
        "tar" => "application/x-tar",
        "7z" => "application/x-7z-compressed",
        "rar" => "application/x-rar-compressed",
        "jar" => "application/java-archive",
        "wasm" => "application/wasm",
        "sh" => "application/x-sh",
        "exe" | "dll" | "msi" => "application/x-msdownload",
        "iso" => "application/x-iso9660-image",
        "doc" | "dot" => "application/msword",
        "xls" => "application/vnd.ms-excel",
        "ppt" => "application/vnd.ms-powerpoint",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "bin" | "dms" | "lha" | "lzh" | "class" | "so" | "dmg" | "img" => {
            "application/octet-stream"
        }
        "jpg" | "jpeg" | "jpe" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "svg" | "svgz" => "image/svg+xml",
        "tif" | "tiff" => "image/tiff",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "mp3" | "mpga" => "audio/mpeg",
        "wav" => "audio/x-wav",
        "ogg" | "oga" => "audio/ogg",
        "flac" => "audio/x-flac",
        "mid" | "midi" => "audio/midi",
        "mp4" | "mp4v" | "mpg4" => "video/mp4",
        "mpeg" | "mpg" | "mpe" => "video/mpeg",
        "mov" | "qt" => "video/quicktime",
        "avi" => "video/x-msvideo",
        "webm" => "video/webm",
        "woff" => "application/font-woff",
        "ttf" => "application/x-font-ttf",
        "eml" | "mime" => "message/rfc822",
        _ => return None,
    };
    Some(t)
}

/// The content type Manta would store for the value `ct` a client sent.
pub fn normalize(ct: &str) -> String {
    let ct = ct.trim();
    if is_media_type(ct) {
        return ct.to_owned();
    }
    // node-mime's lookup: everything up to the last `.`, `/` or `\` goes.
    let ext = ct.rsplit(['.', '/', '\\']).next().unwrap_or("");
    by_extension(ext).unwrap_or(DEFAULT_CONTENT_TYPE).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn manta_cases() {
        assert_eq!(normalize("jpg"), "image/jpeg");
        assert_eq!(normalize("JPG"), "image/jpeg");
        assert_eq!(normalize("photo.PNG"), "image/png");
        assert_eq!(normalize("argle/"), "application/octet-stream");
        assert_eq!(normalize("/*"), "application/octet-stream");
        assert_eq!(normalize("argle"), "application/octet-stream");
        assert_eq!(normalize("text/plain"), "text/plain");
        assert_eq!(
            normalize("text/plain; charset=utf-8"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(normalize("a/b/c"), "application/octet-stream");
        assert_eq!(normalize("*/*"), "*/*");
    }

    proptest! {
        #[test]
        fn always_a_media_type(s in "[ -~]{0,30}") {
            let n = normalize(&s);
            prop_assert!(is_media_type(&n), "{n}");
            if http::HeaderValue::from_str(&s).is_ok() {
                prop_assert!(http::HeaderValue::from_str(&n).is_ok());
            }
        }
    }
}
