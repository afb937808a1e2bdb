//! The cluster credential: a random 256-bit secret in a file.
//!
//! The file holds the secret as 64 hex digits (and a newline). It is
//! created with mode 0600 and refused when group or others may read or
//! write it, or when it is not a regular file: a secret others can read
//! is no secret. The secret is never printed ([`ClusterKey`]'s `Debug`
//! hides it) and is only used through keys derived from it per purpose.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Environment variable naming the key file (for `--cluster-key`).
pub const KEY_FILE_ENV: &str = "TIDEPOOL_CLUSTER_KEY_FILE";

/// Bytes of the secret.
const SECRET_LEN: usize = 32;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or creating the file failed.
    #[error("cluster key {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Group or others have access to the file.
    #[error(
        "cluster key {path} is accessible by group or others (mode {mode:o}); \
         it must be readable by its owner only (chmod 600)"
    )]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a regular file.
    #[error("cluster key {0} is not a regular file")]
    NotAFile(PathBuf),
    /// The content is not 64 hex digits.
    #[error("cluster key {0} is not a 256-bit key in hex (64 hex digits)")]
    Malformed(PathBuf),
}

/// The cluster's shared secret. Cheap to clone; `Debug` does not show it.
#[derive(Clone)]
pub struct ClusterKey {
    secret: [u8; SECRET_LEN],
}

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    /// A fresh random key from the operating system's generator.
    pub fn generate() -> ClusterKey {
        use rand::RngCore as _;
        let mut secret = [0u8; SECRET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        ClusterKey { secret }
    }

    /// Reads the key at `path`, refusing a file others may access.
    pub fn load(path: &Path) -> Result<ClusterKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile(path.to_owned()));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let mut secret = [0u8; SECRET_LEN];
        hex::decode_to_slice(text.trim(), &mut secret)
            .map_err(|_| KeyError::Malformed(path.to_owned()))?;
        Ok(ClusterKey { secret })
    }

    /// Creates a new random key at `path` (mode 0600, durably written);
    /// fails if the file exists.
    pub fn create(path: &Path) -> Result<ClusterKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let key = ClusterKey::generate();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        f.write_all(format!("{}\n", hex::encode(key.secret)).as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(key)
    }

    /// The key at `path`, created first if there is none.
    pub fn load_or_create(path: &Path) -> Result<ClusterKey, KeyError> {
        match ClusterKey::create(path) {
            Ok(k) => Ok(k),
            Err(KeyError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                ClusterKey::load(path)
            }
            Err(e) => Err(e),
        }
    }

    /// The key for one purpose: HMAC-SHA256(secret, label). Distinct labels
    /// give independent keys, so a signature made for one purpose is
    /// worthless for another.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        mac.update(b"tidepool cluster-auth v1: ");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn create_load_and_refuse_shared_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cluster.key");
        let k = ClusterKey::create(&path).expect("create");
        let mode = std::fs::metadata(&path).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(
            ClusterKey::create(&path).is_err(),
            "create never overwrites"
        );
        let again = ClusterKey::load_or_create(&path).expect("load");
        assert_eq!(k.secret, again.secret);
        assert!(!format!("{k:?}").contains(&hex::encode(k.secret)));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        assert!(matches!(
            ClusterKey::load(&path),
            Err(KeyError::Permissions { mode: 0o640, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).expect("chmod");
        assert!(matches!(
            ClusterKey::load(&path),
            Err(KeyError::Permissions { .. })
        ));

        let bad = dir.path().join("bad.key");
        std::fs::write(&bad, "not hex\n").expect("write");
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(matches!(
            ClusterKey::load(&bad),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            ClusterKey::load(dir.path()),
            Err(KeyError::NotAFile(_))
        ));
    }

    #[test]
    fn purposes_give_distinct_keys() {
        let k = ClusterKey::generate();
        assert_ne!(k.derive("request"), k.derive("task-grant"));
        assert_ne!(
            k.derive("request"),
            ClusterKey::generate().derive("request")
        );
    }
}
