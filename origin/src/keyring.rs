//! Signing keys: an Ed25519 key set kept in a JSON file, or the seed's HS256 `JWT_SECRET`.
//!
//! `keys generate` appends a key and makes it the active signer; older keys stay in the file and
//! keep verifying, so rotation logs nobody out. Retire a key by deleting it from the file once
//! the access-token lifetime has passed since the rotation.

use std::path::Path;

use anyhow::Context as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tollgate_shared::jwt::{HmacSecret, KeySet, SigningKey, VerifyingKey};

#[derive(Serialize, Deserialize)]
struct KeyFile {
    active: String,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    alg: String,
    /// The 32-byte Ed25519 seed, base64url.
    private: String,
    created_at: i64,
}

/// The key that signs new tokens and the set that verifies them.
#[derive(Debug, Clone)]
pub struct Keyring {
    pub signing: SigningKey,
    pub verifying: KeySet,
}

impl Keyring {
    /// Loads the key file (creating it with one fresh key if missing and `create` is set). With
    /// `jwt_secret`, HS256 signs and the file's keys, if any, still verify.
    pub fn load(path: &Path, jwt_secret: Option<HmacSecret>, create: bool) -> anyhow::Result<Self> {
        let file = if path.exists() {
            Some(read(path)?)
        } else if create && jwt_secret.is_none() {
            generate(path)?;
            Some(read(path)?)
        } else {
            None
        };
        let mut verifying = KeySet::new();
        let mut active = None;
        if let Some(file) = &file {
            for stored in &file.keys {
                let key = decode(stored).with_context(|| {
                    format!("Failed to read key {} of {}", stored.kid, path.display())
                })?;
                verifying.insert(stored.kid.clone(), VerifyingKey::EdDSA(key.verifying_key()));
                if stored.kid == file.active {
                    active = Some(SigningKey::EdDSA {
                        kid: stored.kid.clone(),
                        key,
                    });
                }
            }
        }
        let signing = match jwt_secret {
            Some(secret) => {
                let kid = secret.kid();
                verifying.insert(kid.clone(), VerifyingKey::HS256(secret.clone()));
                SigningKey::HS256 { kid, secret }
            }
            None => active.with_context(|| {
                format!(
                    "No active signing key in {} (run `tollgate-origin keys generate`)",
                    path.display()
                )
            })?,
        };
        Ok(Self { signing, verifying })
    }
}

/// Adds a fresh Ed25519 key to the file (creating it) and makes it active. Returns its kid.
pub fn generate(path: &Path) -> anyhow::Result<String> {
    let mut file = if path.exists() {
        read(path)?
    } else {
        KeyFile {
            active: String::new(),
            keys: Vec::new(),
        }
    };
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let digest = Sha256::digest(key.verifying_key().as_bytes());
    let kid: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let kid = format!("ed25519-{kid}");
    file.keys.push(StoredKey {
        kid: kid.clone(),
        alg: "EdDSA".into(),
        private: URL_SAFE_NO_PAD.encode(key.to_bytes()),
        created_at: crate::domain::now(),
    });
    file.active = kid.clone();
    write(path, &file)?;
    Ok(kid)
}

fn read(path: &Path) -> anyhow::Result<KeyFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("Failed to read key file {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("Key file {} is not valid", path.display()))
}

fn write(path: &Path, file: &KeyFile) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(file)?;
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("Failed to write key file {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("Failed to write key file {}", path.display()))
}

fn decode(stored: &StoredKey) -> anyhow::Result<ed25519_dalek::SigningKey> {
    anyhow::ensure!(
        stored.alg == "EdDSA",
        "unsupported algorithm {}",
        stored.alg
    );
    let bytes = URL_SAFE_NO_PAD.decode(&stored.private)?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("private key is not 32 bytes"))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_old_keys_verifying() {
        let dir = std::env::temp_dir().join(format!("tollgate-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("keys.json");
        let first = Keyring::load(&path, None, true).expect("created");
        let kid2 = generate(&path).expect("rotated");
        let second = Keyring::load(&path, None, false).expect("reloaded");
        assert_eq!(second.signing.kid(), kid2);
        assert_ne!(first.signing.kid(), kid2);
        assert!(second.verifying.get(first.signing.kid()).is_some());
        assert_eq!(second.verifying.to_jwks().keys.len(), 2);
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(!format!("{second:?}").contains(&text[..20]));
        std::fs::remove_dir_all(dir).ok();
    }
}
