//! Which SSH key `tidepool up` registers for its account: the one given, the
//! user's own (`~/.ssh/id_*.pub`, where the Manta CLI will look for its
//! private half), or a fresh Ed25519 pair kept under the data directory.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where the account key came from, for the instructions `up` prints.
pub enum KeySource {
    /// `--key FILE`.
    Given(PathBuf),
    /// The first `~/.ssh/id_*.pub`.
    Home(PathBuf),
    /// Generated (or generated on an earlier start) under the data directory;
    /// the private key is the path without `.pub`.
    Generated(PathBuf),
}

impl KeySource {
    /// The public key file.
    pub fn public_file(&self) -> &Path {
        match self {
            KeySource::Given(p) | KeySource::Home(p) | KeySource::Generated(p) => p,
        }
    }
}

/// Chooses the key as `tidepool up` documents it.
pub fn resolve(given: Option<PathBuf>, data: &Path) -> Result<KeySource> {
    if let Some(p) = given {
        return Ok(KeySource::Given(p));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let ssh = Path::new(&home).join(".ssh");
        if let Ok(rd) = std::fs::read_dir(&ssh) {
            let mut found: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    name.starts_with("id_") && name.ends_with(".pub")
                })
                .collect();
            found.sort();
            if let Some(p) = found.into_iter().next() {
                return Ok(KeySource::Home(p));
            }
        }
    }
    let dir = data.join("keys");
    let private = dir.join("id_ed25519");
    let public = dir.join("id_ed25519.pub");
    if !public.exists() {
        generate_ed25519(&private, &public)?;
    }
    Ok(KeySource::Generated(public))
}

fn generate_ed25519(private: &Path, public: &Path) -> Result<()> {
    use ssh_key::{Algorithm, LineEnding, PrivateKey};
    let dir = private.parent().expect("key path has a parent");
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut key =
        PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519).context("generate key")?;
    key.set_comment("tidepool");
    key.write_openssh_file(private, LineEnding::LF)
        .with_context(|| format!("write {}", private.display()))?;
    key.public_key()
        .write_openssh_file(public)
        .with_context(|| format!("write {}", public.display()))?;
    Ok(())
}
