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

/// A media type or range: `type`, `subtype` (lowercase) and parameters
/// (lowercase names).
type MediaParts = (String, String, Vec<(String, String)>);

/// The parts of a media type or media range; `None` when it is not one.
fn media_parts(s: &str) -> Option<MediaParts> {
    let mut parts = s.split(';');
    let (t, sub) = parts.next()?.trim().split_once('/')?;
    let (t, sub) = (
        t.trim().to_ascii_lowercase(),
        sub.trim().to_ascii_lowercase(),
    );
    if !is_token(&t) || !is_token(&sub) {
        return None;
    }
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect();
    Some((t, sub, params))
}

/// Whether an `Accept` value admits `content_type`, the way restify's
/// `req.accepts` (the `negotiator` module) decided it for muskie: the most
/// specific matching range decides, and it must have `q > 0`. Ranges that
/// do not parse match nothing.
pub fn accepts(accept: &str, content_type: &str) -> bool {
    let Some((ct, csub, cparams)) = media_parts(content_type) else {
        // A stored type that is not a media type cannot be negotiated.
        return true;
    };
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let Some((t, sub, params)) = media_parts(range) else {
            continue;
        };
        let mut q = 1.0f32;
        let mut other = Vec::new();
        for (k, v) in params {
            if k == "q" {
                q = v.parse().unwrap_or(0.0);
            } else {
                other.push((k, v));
            }
        }
        let type_ok = t == "*" || t == ct;
        let sub_ok = sub == "*" || sub == csub;
        let params_ok = other.iter().all(|(k, v)| {
            cparams
                .iter()
                .any(|(ck, cv)| ck == k && cv.eq_ignore_ascii_case(v))
        });
        if !(type_ok && sub_ok && params_ok) {
            continue;
        }
        let specificity =
            (u8::from(t == ct) << 2) | (u8::from(sub == csub) << 1) | u8::from(!other.is_empty());
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.is_some_and(|(_, q)| q > 0.0)
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

    #[test]
    fn negotiation() {
        assert!(accepts("*/*", "text/plain"));
        assert!(accepts("text/*", "text/plain; charset=utf-8"));
        assert!(accepts("application/json, */*", "image/png"));
        assert!(accepts("image/png;q=0.5", "image/png"));
        assert!(!accepts("application/json", "text/plain"));
        assert!(!accepts("image/*", "text/plain"));
        assert!(!accepts("text/plain;q=0, */*", "text/plain"));
        assert!(accepts("text/plain;q=0, */*", "text/html"));
        assert!(!accepts(
            "text/plain; charset=latin1",
            "text/plain; charset=utf-8"
        ));
        assert!(!accepts("garbage", "text/plain"));
    }

    proptest! {
        #[test]
        fn accepts_never_panics(a in "[ -~]{0,40}", c in "[ -~]{0,30}") {
            let _ = accepts(&a, &c);
        }

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
