//! Signing keys: an Ed25519 key set kept in a JSON file, or the seed's HS256 `JWT_SECRET`.
//!
//! Rotation is safe by construction. Each key in the file carries when it was `created`, when it
//! may start signing (`signs_from`) and, once retired, `retired_at`:
//!
//! - `keys generate` adds a key that is **published at once** (in `/.well-known/jwks.json` and
//!   the verifying set) but signs only from `now + KEY_PUBLISH_SECS`, so every verifier that
//!   caches the JWKS (the edge) has fetched it before the first token it signs exists.
//!   `keys activate` makes it sign now, for when the operator knows every verifier has it.
//! - The **signer** is the newest key (by `created`) whose `signs_from` has passed and that is
//!   not retired. A key that becomes due starts signing by itself, without any action.
//! - `keys retire` stops a key from signing (never the only signer). It keeps verifying, and stays
//!   published, for [`KeyTimes::linger`] — long enough for every token it signed to expire — and
//!   only then leaves the JWKS; `keys prune` deletes such keys from the file.
//!
//! A running origin holds a [`Keyring`], which re-reads the file when a sign or verify finds its
//! last look older than `KEYS_RELOAD_SECS`, so CLI changes apply without a restart. Every write
//! goes through a temporary file in the same directory renamed over the old one (mode 0600),
//! under an exclusive lock on `<file>.lock`: a reader sees the old file or the new one, never half
//! of one, and two CLI runs at once never lose each other's change.
//!
//! Several origin instances share one key file (or copies kept identical): each follows it on
//! its own reload interval, and the publish delay, longer than that interval, is what makes it
//! safe — every instance verifies a new key before any of them signs with it. Two instances
//! starting at once on a missing file create it under the same lock, so they agree on one key.
//!
//! # The file
//! `{"version": 2, "keys": [{"kid", "alg": "EdDSA", "private", "created", "signs_from",
//! "retired_at"?}]}`, times in unix seconds, `private` the 32-byte seed in base64url. The first
//! format (`{"active", "keys": [{"kid", "alg", "private", "created_at"}]}`) is still read: its
//! `active` key signs, and the next write stores it as version 2.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tollgate_shared::digest::sha256_hex;
use tollgate_shared::jwt::{HmacSecret, Jwks, KeySet, SigningKey, VerifyingKey};

use crate::config::Settings;

/// The longest `max-age` the JWKS is served with.
const JWKS_MAX_AGE_CAP: u64 = 300;

/// How long keys wait and linger: the two numbers rotation safety rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTimes {
    /// `KEY_PUBLISH_SECS`: how long a generated key is published before it signs.
    pub publish: i64,
    /// How long a retired key keeps verifying and stays published: the access-token lifetime
    /// (its last token's life), plus the verifiers' clock leeway, plus the reload interval (an
    /// origin that has not yet re-read the file may sign with it that much longer).
    pub linger: i64,
}

impl KeyTimes {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            publish: to_i64(settings.key_publish),
            linger: to_i64(settings.access_ttl)
                .saturating_add(tollgate_shared::jwt::DEFAULT_LEEWAY_SECS)
                .saturating_add(to_i64(settings.keys_reload)),
        }
    }

    /// The `max-age` of the JWKS response: a third of the publish delay, at most 300 s. A
    /// verifier that caches the response for its `max-age` and then keeps the parsed keys for as
    /// long again still learns of a new key before it signs (with room for the origin's own
    /// reload interval).
    pub fn jwks_max_age(&self) -> u64 {
        (u64::try_from(self.publish).unwrap_or(0) / 3).min(JWKS_MAX_AGE_CAP)
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Where a key is in its life, as `keys list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published and verifying; signs from `signs_from`.
    Next,
    /// The key new tokens are signed with.
    Signing,
    /// Verifying and published but not signing: retired (until its linger has passed) or
    /// superseded by a newer signer (until it is retired).
    Retiring,
    /// Past its linger: no longer verifies or published; `keys prune` deletes it.
    Retired,
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Next => "next",
            Self::Signing => "signing",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
        })
    }
}

/// One key as `keys list` shows it: public facts only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub kid: String,
    pub state: KeyState,
    pub created: i64,
    pub signs_from: i64,
    pub retired_at: Option<i64>,
    /// When it leaves the JWKS (retired keys only).
    pub published_until: Option<i64>,
}

/// The key that signs new tokens and the set that verifies them, at one moment.
#[derive(Debug)]
pub struct KeyView {
    pub signing: SigningKey,
    pub verifying: KeySet,
}

impl KeyView {
    /// The public JWKS: every published Ed25519 key; HMAC secrets never appear.
    pub fn jwks(&self) -> Jwks {
        self.verifying.to_jwks()
    }
}

/// The live key set of a running origin: the file as last read, re-read when it changes.
pub struct Keyring {
    path: PathBuf,
    hmac: Option<HmacSecret>,
    times: KeyTimes,
    reload: Duration,
    loaded: RwLock<Loaded>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("hs256", &self.hmac.is_some())
            .field("times", &self.times)
            .finish_non_exhaustive()
    }
}

struct Loaded {
    /// SHA-256 of the file's bytes at the last look (good or bad), so a change is noticed once.
    digest: [u8; 32],
    /// The keys of the last good read.
    keys: Vec<Key>,
    checked: Instant,
    view: Arc<KeyView>,
    /// The view holds for `now` in `[from, until)`: no key becomes due or leaves in between.
    from: i64,
    until: i64,
}

/// A key from the file, decoded.
#[derive(Clone)]
struct Key {
    meta: StoredKey,
    secret: ed25519_dalek::SigningKey,
}

impl Keyring {
    /// Loads the key file, creating it with one key that signs at once if it is missing and
    /// `create` is set. With `jwt_secret`, HS256 signs and the file's keys, if any, still
    /// verify (no file is created).
    pub fn open(settings: &Settings, create: bool) -> anyhow::Result<Self> {
        let path = settings.keys_file.clone();
        let hmac = settings.jwt_secret.clone();
        let times = KeyTimes::from_settings(settings);
        let now = crate::domain::now();
        if create && hmac.is_none() && !path.exists() {
            update(&path, |file| {
                if file.keys.is_empty() {
                    file.keys.push(new_key(now, now));
                }
                Ok(())
            })?;
        }
        let bytes = read_bytes(&path)?;
        let keys = match &bytes {
            Some(bytes) => decode_all(&parse(bytes, &path)?, &path)?,
            None => Vec::new(),
        };
        let (view, from, until) = build_view(&keys, hmac.as_ref(), times, now)
            .with_context(|| format!("No signing key in {}", path.display()))?;
        Ok(Self {
            loaded: RwLock::new(Loaded {
                digest: digest(bytes.as_deref()),
                keys,
                checked: Instant::now(),
                view,
                from,
                until,
            }),
            path,
            hmac,
            times,
            reload: Duration::from_secs(settings.keys_reload),
        })
    }

    pub fn times(&self) -> KeyTimes {
        self.times
    }

    /// The signer and verifying set now.
    pub fn view(&self) -> Arc<KeyView> {
        self.view_at(crate::domain::now())
    }

    /// The signer and verifying set at `now`, re-reading the file first if the last look is
    /// older than the reload interval. A file that cannot be read or parsed, or that would leave
    /// no signer, is logged and ignored: the last good keys stay in force.
    pub fn view_at(&self, now: i64) -> Arc<KeyView> {
        {
            let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
            if loaded.checked.elapsed() < self.reload && (loaded.from..loaded.until).contains(&now)
            {
                return Arc::clone(&loaded.view);
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        if loaded.checked.elapsed() >= self.reload {
            self.reread(&mut loaded, now);
        }
        if !(loaded.from..loaded.until).contains(&now) {
            // Built from keys that already gave a view, so it cannot fail; keep the old one if
            // it somehow does.
            if let Some((view, from, until)) =
                build_view(&loaded.keys, self.hmac.as_ref(), self.times, now)
            {
                loaded.view = view;
                loaded.from = from;
                loaded.until = until;
            }
        }
        Arc::clone(&loaded.view)
    }

    fn reread(&self, loaded: &mut Loaded, now: i64) {
        loaded.checked = Instant::now();
        let bytes = match read_bytes(&self.path) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(
                    error = %format!("{e:#}"),
                    "Failed to re-read the key file; keeping the keys in force"
                );
                return;
            }
        };
        let digest = digest(bytes.as_deref());
        if digest == loaded.digest {
            return;
        }
        loaded.digest = digest;
        let fresh = bytes
            .as_deref()
            .map(|b| parse(b, &self.path).and_then(|f| decode_all(&f, &self.path)))
            .unwrap_or_else(|| Ok(Vec::new()))
            .and_then(|keys| {
                let (view, from, until) = build_view(&keys, self.hmac.as_ref(), self.times, now)
                    .context("it leaves no key that signs")?;
                Ok((keys, view, from, until))
            });
        match fresh {
            Ok((keys, view, from, until)) => {
                tracing::info!(
                    keys = keys.len(),
                    signer = view.signing.kid(),
                    "key file re-read"
                );
                loaded.keys = keys;
                loaded.view = view;
                loaded.from = from;
                loaded.until = until;
            }
            Err(e) => tracing::error!(
                error = %format!("{e:#}"),
                path = %self.path.display(),
                "Key file changed but is not usable; keeping the keys in force"
            ),
        }
    }
}

/// The view at `now` and the range of `now` it holds for; `None` without a signer.
fn build_view(
    keys: &[Key],
    hmac: Option<&HmacSecret>,
    times: KeyTimes,
    now: i64,
) -> Option<(Arc<KeyView>, i64, i64)> {
    let metas: Vec<&StoredKey> = keys.iter().map(|k| &k.meta).collect();
    let mut verifying = KeySet::new();
    for key in keys {
        if key.meta.published(times, now) {
            verifying.insert(
                key.meta.kid.clone(),
                VerifyingKey::EdDSA(key.secret.verifying_key()),
            );
        }
    }
    let signing = match hmac {
        Some(secret) => {
            let kid = secret.kid();
            verifying.insert(kid.clone(), VerifyingKey::HS256(secret.clone()));
            SigningKey::HS256 {
                kid,
                secret: secret.clone(),
            }
        }
        None => {
            let key = &keys[signer(&metas, now)?];
            SigningKey::EdDSA {
                kid: key.meta.kid.clone(),
                key: key.secret.clone(),
            }
        }
    };
    let (from, until) = steady_range(&metas, times, now);
    Some((Arc::new(KeyView { signing, verifying }), from, until))
}

/// The moments around `now` where some key becomes due or leaves the JWKS.
fn steady_range(keys: &[&StoredKey], times: KeyTimes, now: i64) -> (i64, i64) {
    let edges = keys.iter().flat_map(|k| {
        [
            Some(k.signs_from),
            k.retired_at.map(|r| r.saturating_add(times.linger)),
        ]
        .into_iter()
        .flatten()
    });
    let (mut from, mut until) = (i64::MIN, i64::MAX);
    for edge in edges {
        if edge <= now {
            from = from.max(edge);
        } else {
            until = until.min(edge);
        }
    }
    (from, until)
}

/// The index of the signer at `now`: the newest key (by `created`, then file order) whose
/// `signs_from` has passed and that is not retired.
fn signer(keys: &[&StoredKey], now: i64) -> Option<usize> {
    keys.iter()
        .enumerate()
        .filter(|(_, k)| k.signs_from <= now && k.retired_at.is_none())
        .max_by_key(|(i, k)| (k.created, *i))
        .map(|(i, _)| i)
}

/// Every key's state at `now`, in file order.
fn states(keys: &[StoredKey], times: KeyTimes, now: i64) -> Vec<KeyStatus> {
    let metas: Vec<&StoredKey> = keys.iter().collect();
    let signer = signer(&metas, now);
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let published_until = k.retired_at.map(|r| r.saturating_add(times.linger));
            let state = match published_until {
                Some(until) if now >= until => KeyState::Retired,
                Some(_) => KeyState::Retiring,
                None if k.signs_from > now => KeyState::Next,
                None if signer == Some(i) => KeyState::Signing,
                None => KeyState::Retiring,
            };
            KeyStatus {
                kid: k.kid.clone(),
                state,
                created: k.created,
                signs_from: k.signs_from,
                retired_at: k.retired_at,
                published_until,
            }
        })
        .collect()
}

// ---- The CLI's operations: each one reads, changes and atomically rewrites the file. ----

/// `keys generate`: adds a fresh key, published now, signing from `now + publish` (or at once
/// when the file has no key yet). Returns its kid.
pub fn generate(path: &Path, times: KeyTimes, now: i64) -> anyhow::Result<String> {
    update(path, |file| {
        let signs_from = if file.keys.is_empty() {
            now
        } else {
            now.saturating_add(times.publish)
        };
        let key = new_key(now, signs_from);
        let kid = key.kid.clone();
        file.keys.push(key);
        Ok(kid)
    })
}

/// `keys activate`: makes a key sign now instead of waiting for its `signs_from`.
pub fn activate(path: &Path, kid: &str, now: i64) -> anyhow::Result<()> {
    update(path, |file| {
        let i = find(file, kid)?;
        anyhow::ensure!(
            file.keys[i].retired_at.is_none(),
            "key {kid} is retired; generate a new key instead"
        );
        file.keys[i].signs_from = file.keys[i].signs_from.min(now);
        let metas: Vec<&StoredKey> = file.keys.iter().collect();
        if let Some(j) = signer(&metas, now).filter(|&j| j != i) {
            anyhow::bail!(
                "key {} is newer and already signs; retire it to fall back to {kid}",
                file.keys[j].kid
            );
        }
        Ok(())
    })
}

/// `keys retire`: stops a key from signing; it keeps verifying until its linger has passed.
/// Refused for the only key that could sign now. Returns the signer afterwards.
pub fn retire(path: &Path, kid: &str, now: i64) -> anyhow::Result<String> {
    update(path, |file| {
        let i = find(file, kid)?;
        anyhow::ensure!(
            file.keys[i].retired_at.is_none(),
            "key {kid} is already retired"
        );
        file.keys[i].retired_at = Some(now);
        let metas: Vec<&StoredKey> = file.keys.iter().collect();
        match signer(&metas, now) {
            Some(j) => Ok(file.keys[j].kid.clone()),
            None => anyhow::bail!(
                "key {kid} is the only key that signs; `keys generate` and `keys activate` \
                 another first"
            ),
        }
    })
}

/// `keys prune`: deletes retired keys whose linger has passed. Returns their kids.
pub fn prune(path: &Path, times: KeyTimes, now: i64) -> anyhow::Result<Vec<String>> {
    update(path, |file| {
        let gone: Vec<String> = states(&file.keys, times, now)
            .into_iter()
            .filter(|s| s.state == KeyState::Retired)
            .map(|s| s.kid)
            .collect();
        file.keys.retain(|k| !gone.contains(&k.kid));
        Ok(gone)
    })
}

/// `keys list`: every key's public facts and state at `now`. Reads without the lock: writes
/// replace the file whole, so a read sees one version or the other.
pub fn list(path: &Path, times: KeyTimes, now: i64) -> anyhow::Result<Vec<KeyStatus>> {
    let bytes = read_bytes(path)?.with_context(|| format!("No key file at {}", path.display()))?;
    let file = parse(&bytes, path)?;
    Ok(states(&file.keys, times, now))
}

fn find(file: &KeyFile, kid: &str) -> anyhow::Result<usize> {
    file.keys
        .iter()
        .position(|k| k.kid == kid)
        .with_context(|| format!("no key {kid} in the key file"))
}

fn new_key(created: i64, signs_from: i64) -> StoredKey {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let digest = sha256_hex(key.verifying_key().as_bytes());
    StoredKey {
        kid: format!("ed25519-{}", &digest[..16]),
        alg: "EdDSA".into(),
        private: URL_SAFE_NO_PAD.encode(key.to_bytes()),
        created,
        signs_from,
        retired_at: None,
    }
}

// ---- The file. ----

const FORMAT_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    keys: Vec<StoredKey>,
}

#[derive(Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    alg: String,
    /// The 32-byte Ed25519 seed, base64url.
    private: String,
    created: i64,
    signs_from: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<i64>,
}

impl StoredKey {
    /// In the JWKS and the verifying set: until its linger after retirement has passed.
    fn published(&self, times: KeyTimes, now: i64) -> bool {
        self.retired_at
            .is_none_or(|r| now < r.saturating_add(times.linger))
    }
}

/// The first format: one `active` key signs, the others only verify.
#[derive(Deserialize)]
struct KeyFileV1 {
    active: String,
    keys: Vec<StoredKeyV1>,
}

#[derive(Deserialize)]
struct StoredKeyV1 {
    kid: String,
    alg: String,
    private: String,
    created_at: i64,
}

impl KeyFileV1 {
    /// Every key verifies and signs from its creation, as before. Keys newer than `active`
    /// (only a hand edit makes those) would take over signing under the new rule, so they are
    /// marked retired as of the migration instead: they keep verifying for their linger.
    fn migrate(self, now: i64) -> anyhow::Result<KeyFile> {
        let active = self
            .keys
            .iter()
            .enumerate()
            .find(|(_, k)| k.kid == self.active)
            .map(|(i, k)| (k.created_at, i))
            .with_context(|| format!("the active key {} is not in the file", self.active))?;
        let keys = self
            .keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| StoredKey {
                retired_at: ((k.created_at, i) > active).then_some(now),
                kid: k.kid,
                alg: k.alg,
                private: k.private,
                created: k.created_at,
                signs_from: k.created_at,
            })
            .collect();
        Ok(KeyFile {
            version: FORMAT_VERSION,
            keys,
        })
    }
}

fn parse(bytes: &[u8], path: &Path) -> anyhow::Result<KeyFile> {
    let invalid = |e: serde_json::Error| {
        anyhow::anyhow!("Key file {} is not valid: {}", path.display(), redact(&e))
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
    let file = if value.get("active").is_some() {
        serde_json::from_slice::<KeyFileV1>(bytes)
            .map_err(invalid)?
            .migrate(crate::domain::now())
            .with_context(|| format!("Key file {} is not valid", path.display()))?
    } else {
        let file: KeyFile = serde_json::from_slice(bytes).map_err(invalid)?;
        anyhow::ensure!(
            file.version == FORMAT_VERSION,
            "Key file {} has version {}, this origin reads {FORMAT_VERSION}",
            path.display(),
            file.version
        );
        file
    };
    let mut kids: Vec<&str> = file.keys.iter().map(|k| k.kid.as_str()).collect();
    kids.sort_unstable();
    if let Some(w) = kids.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!("Key file {} has key {} twice", path.display(), w[0]);
    }
    Ok(file)
}

/// serde's message, unless it quotes a value from the file, which could be a private key: these
/// messages reach the logs.
fn redact(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if message.contains('"') {
        format!(
            "a value of the wrong type at line {} column {}",
            e.line(),
            e.column()
        )
    } else {
        message
    }
}

fn decode_all(file: &KeyFile, path: &Path) -> anyhow::Result<Vec<Key>> {
    file.keys
        .iter()
        .map(|meta| {
            let secret = decode(meta).with_context(|| {
                format!("Failed to read key {} of {}", meta.kid, path.display())
            })?;
            Ok(Key {
                meta: meta.clone(),
                secret,
            })
        })
        .collect()
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

fn digest(bytes: Option<&[u8]>) -> [u8; 32] {
    bytes.map_or([0; 32], |b| Sha256::digest(b).into())
}

/// The file's bytes, or `None` if there is no file.
fn read_bytes(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("Failed to read key file {}", path.display())),
    }
}

/// Reads the file (an empty set if missing), applies `change`, and replaces the file with the
/// result, all under an exclusive lock on `<file>.lock`. Nothing is written if `change` fails.
fn update<T>(
    path: &Path,
    change: impl FnOnce(&mut KeyFile) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let _lock = lock(path)?;
    let mut file = match read_bytes(path)? {
        Some(bytes) => parse(&bytes, path)?,
        None => KeyFile {
            version: FORMAT_VERSION,
            keys: Vec::new(),
        },
    };
    let out = change(&mut file)?;
    write(path, &file)?;
    Ok(out)
}

/// Holds an exclusive advisory lock on `<file>.lock` until dropped (closing the file frees it).
fn lock(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .with_context(|| format!("Failed to open lock file {}", lock_path.display()))?;
    fs4::FileExt::lock(&file).with_context(|| format!("Failed to lock {}", lock_path.display()))?;
    Ok(file)
}

/// Writes a temporary file (mode 0600) beside `path`, syncs it, and renames it over `path`.
fn write(path: &Path, file: &KeyFile) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(file)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // `tempfile` creates it with mode 0600 and a unique name.
    let mut tmp = tempfile::Builder::new()
        .prefix(".tollgate-keys-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("Failed to create a temporary file in {}", dir.display()))?;
    tmp.write_all(&text)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("Failed to write {}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("Failed to replace key file {}", path.display()))?;
    // Make the rename itself durable.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn private_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut opts = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMES: KeyTimes = KeyTimes {
        publish: 900,
        linger: 960,
    };

    fn temp_path() -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("tollgate-keys-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let path = dir.join("keys.json");
        (dir, path)
    }

    fn state_of(path: &Path, kid: &str, now: i64) -> KeyState {
        list(path, TIMES, now)
            .expect("list")
            .into_iter()
            .find(|s| s.kid == kid)
            .map(|s| s.state)
            .expect("kid listed")
    }

    fn keys_at(path: &Path, now: i64) -> (String, Vec<String>) {
        let file = parse(&std::fs::read(path).expect("file"), path).expect("parse");
        let keys = decode_all(&file, path).expect("decode");
        let (view, _, _) = build_view(&keys, None, TIMES, now).expect("a signer");
        let kids = view.jwks().keys.into_iter().map(|k| k.kid).collect();
        (view.signing.kid().to_owned(), kids)
    }

    #[test]
    fn a_key_is_published_first_signs_when_due_and_lingers_after_retirement() {
        let (dir, path) = temp_path();
        let t0 = 1_000_000;
        let first = generate(&path, TIMES, t0).expect("first");
        assert_eq!(state_of(&path, &first, t0), KeyState::Signing);
        let second = generate(&path, TIMES, t0 + 10).expect("second");
        // Published before it signs.
        assert_eq!(
            keys_at(&path, t0 + 10),
            (first.clone(), vec![first.clone(), second.clone()])
        );
        assert_eq!(state_of(&path, &second, t0 + 909), KeyState::Next);
        // Due: signs by itself; the first only verifies now.
        assert_eq!(keys_at(&path, t0 + 910).0, second);
        assert_eq!(state_of(&path, &first, t0 + 910), KeyState::Retiring);
        let r = t0 + 1000;
        assert_eq!(retire(&path, &first, r).expect("retired"), second);
        assert_eq!(state_of(&path, &first, r + 959), KeyState::Retiring);
        assert_eq!(keys_at(&path, r + 959).1.len(), 2);
        assert_eq!(state_of(&path, &first, r + 960), KeyState::Retired);
        assert_eq!(keys_at(&path, r + 960).1, vec![second.clone()]);
        assert!(prune(&path, TIMES, r + 959).expect("prune").is_empty());
        assert_eq!(prune(&path, TIMES, r + 960).expect("prune"), vec![first]);
        assert_eq!(list(&path, TIMES, r + 960).expect("list").len(), 1);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn activate_signs_at_once_and_the_only_signer_cannot_be_retired() {
        let (dir, path) = temp_path();
        let t0 = 1_000_000;
        let first = generate(&path, TIMES, t0).expect("first");
        let err = retire(&path, &first, t0 + 1).expect_err("only signer");
        assert!(err.to_string().contains("only key that signs"), "{err}");
        let second = generate(&path, TIMES, t0 + 1).expect("second");
        // A next key does not count as a signer yet.
        retire(&path, &first, t0 + 2).expect_err("second is not due");
        activate(&path, &second, t0 + 2).expect("activated");
        assert_eq!(keys_at(&path, t0 + 2).0, second);
        // The older key cannot be activated over the newer signer.
        let err = activate(&path, &first, t0 + 3).expect_err("newer signs");
        assert!(err.to_string().contains(&second), "{err}");
        assert_eq!(retire(&path, &first, t0 + 3).expect("retired"), second);
        retire(&path, &first, t0 + 4).expect_err("already retired");
        activate(&path, &first, t0 + 4).expect_err("retired keys stay retired");
        activate(&path, "ed25519-nope", t0 + 4).expect_err("unknown kid");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_first_file_format_is_read_and_rewritten_as_version_2() {
        let (dir, path) = temp_path();
        let seed = |b: u8| URL_SAFE_NO_PAD.encode([b; 32]);
        let v1 = serde_json::json!({
            "active": "b",
            "keys": [
                {"kid": "a", "alg": "EdDSA", "private": seed(1), "created_at": 100},
                {"kid": "b", "alg": "EdDSA", "private": seed(2), "created_at": 200},
                {"kid": "c", "alg": "EdDSA", "private": seed(3), "created_at": 300},
            ]
        });
        std::fs::write(&path, serde_json::to_vec(&v1).expect("json")).expect("write");
        let now = crate::domain::now();
        // The active key signs; the older verifies; the newer (a hand edit) is retired now.
        let (signer, kids) = keys_at(&path, now);
        assert_eq!(signer, "b");
        assert_eq!(kids, ["a", "b", "c"]);
        assert_eq!(state_of(&path, "c", now), KeyState::Retiring);
        let kid = generate(&path, TIMES, now).expect("generate migrates");
        let text = std::fs::read_to_string(&path).expect("file");
        let stored: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(stored["version"], 2);
        assert_eq!(stored["keys"][1]["signs_from"], 200);
        assert!(stored["keys"][2]["retired_at"].is_i64());
        assert_eq!(stored["keys"][3]["kid"], kid.as_str());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let (dir, path) = temp_path();
        for (text, reason) in [
            ("{", "not valid"),
            (r#"{"version": 3, "keys": []}"#, "version 3"),
            (r#"{"active": "x", "keys": []}"#, "not valid"),
        ] {
            std::fs::write(&path, text).expect("write");
            let err = list(&path, TIMES, 0).expect_err("refused");
            assert!(format!("{err:#}").contains(reason), "{text}: {err:#}");
        }
        let twice = r#"{"version": 2, "keys": [
            {"kid": "a", "alg": "EdDSA", "private": "", "created": 1, "signs_from": 1},
            {"kid": "a", "alg": "EdDSA", "private": "", "created": 1, "signs_from": 1}]}"#;
        std::fs::write(&path, twice).expect("write");
        assert!(format!("{:#}", list(&path, TIMES, 0).expect_err("dup")).contains("twice"));
        // A private key in the wrong place is not quoted back (errors reach the logs).
        let misplaced = r#"{"version": 2, "keys": [
            {"kid": "a", "alg": "EdDSA", "private": "", "created": "c2VjcmV0LXNlZWQ", "signs_from": 1}]}"#;
        std::fs::write(&path, misplaced).expect("write");
        let err = format!("{:#}", list(&path, TIMES, 0).expect_err("refused"));
        assert!(err.contains("line 2") && !err.contains("c2VjcmV0"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn the_jwks_max_age_stays_below_the_publish_delay() {
        assert_eq!(TIMES.jwks_max_age(), 300);
        let short = KeyTimes {
            publish: 60,
            linger: 1,
        };
        assert_eq!(short.jwks_max_age(), 20);
    }
}
