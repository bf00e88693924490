//! Ed25519 through the platform's WebCrypto (`crypto.subtle`), in place of compiled-in curve
//! code: workerd runs it natively (BoringSSL), several times faster than Ed25519 in wasm, and it
//! keeps ~100 KB of curve arithmetic out of the Worker (issue 8 §6 has the figures). The JOSE
//! rules are not here: `tollgate_shared::jwt` parses and checks everything but the signature
//! ([`jwt::parse_jws`](tollgate_shared::jwt::parse_jws), [`jwt::signing_input`]), and only the
//! primitive is the platform's.
//!
//! Imported keys are kept per isolate (importing costs more than a verify), keyed by the public
//! key's bytes, so a JWKS refetch or a new deployment's keys simply add entries.

use std::cell::RefCell;
use std::collections::HashMap;

use tollgate_shared::jwt;
use worker::js_sys::{self, Array, Uint8Array};
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;

const ED25519: &str = "Ed25519";

/// PKCS#8 v1 wrapper of an Ed25519 seed (RFC 8410 §7): this prefix and the 32 seed bytes.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// An edge assertion key: `kid`, the private seed and the public key it must match. `Debug`
/// never prints the seed.
#[derive(Clone)]
pub(crate) struct EdgeSigner {
    pub kid: String,
    seed: [u8; 32],
    pub public: [u8; 32],
}

impl std::fmt::Debug for EdgeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl EdgeSigner {
    pub fn new(kid: String, seed: [u8; 32], public: [u8; 32]) -> Self {
        Self { kid, seed, public }
    }

    /// The compact JWS of the signing `input` ([`jwt::signing_input`]), signed with this key.
    pub async fn sign(&self, input: String) -> Result<String, CryptoError> {
        let key = self.private_key().await?;
        let signature = sign(&key, input.as_bytes()).await?;
        Ok(jwt::append_signature(input, &signature))
    }

    /// Whether an earlier request imported (and checked) this key, so [`Self::start`] can sign
    /// without an await first.
    pub fn is_imported(&self) -> bool {
        SIGNERS.with(|s| s.borrow().contains_key(&self.public))
    }

    /// Starts signing `input` with the imported key, for the JS entry to await: a promise of
    /// the signature's bytes (an `ArrayBuffer`), which [`jwt::append_signature`] adds to
    /// `input`. An error if the key was not imported ([`Self::is_imported`]).
    pub fn start(&self, input: &str) -> Result<js_sys::Promise, CryptoError> {
        let key = SIGNERS.with(|s| s.borrow().get(&self.public).cloned());
        let key = key.ok_or_else(|| CryptoError(format!("key {} not imported", self.kid)))?;
        subtle()?
            .sign_with_str_and_u8_array(ED25519, &key, input.as_bytes())
            .map_err(|e| CryptoError::failed("sign", &e))
    }

    /// The imported private key. The first import checks that the configured public key `x`
    /// is this seed's (a signature by the seed must verify under `x`): upstreams verify with
    /// `x`, so a mismatch would make every assertion fail there, and it is refused here instead.
    async fn private_key(&self) -> Result<web_sys::CryptoKey, CryptoError> {
        if let Some(key) = SIGNERS.with(|s| s.borrow().get(&self.public).cloned()) {
            return Ok(key);
        }
        let mut pkcs8 = PKCS8_PREFIX.to_vec();
        pkcs8.extend_from_slice(&self.seed);
        let key = import(&Uint8Array::from(&pkcs8[..]), "pkcs8", "sign").await?;
        let probe = b"tollgate-edge key check";
        let signature = sign(&key, probe).await?;
        if !verify_ed25519(&self.public, probe, &signature).await? {
            return Err(CryptoError(format!(
                "EDGE_SIGNING_KEYS: key {}: x does not match d",
                self.kid
            )));
        }
        SIGNERS.with(|s| s.borrow_mut().insert(self.public, key.clone()));
        Ok(key)
    }
}

/// A WebCrypto call failed (a key it would not import, a rejected promise): for logs.
#[derive(Debug)]
pub(crate) struct CryptoError(pub String);

impl std::fmt::Display for CryptoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl CryptoError {
    /// The WebCrypto call `what` failed with `e`.
    pub fn failed(what: &str, e: &JsValue) -> Self {
        Self(format!("WebCrypto {what}: {}", crate::proxy::describe(e)))
    }
}

thread_local! {
    static VERIFIERS: RefCell<HashMap<[u8; 32], web_sys::CryptoKey>> = RefCell::new(HashMap::new());
    static SIGNERS: RefCell<HashMap<[u8; 32], web_sys::CryptoKey>> = RefCell::new(HashMap::new());
}

fn subtle() -> Result<web_sys::SubtleCrypto, CryptoError> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    global
        .crypto()
        .map(|c| c.subtle())
        .map_err(|e| CryptoError::failed("unavailable", &e))
}

async fn import(
    data: &Uint8Array,
    format: &str,
    usage: &str,
) -> Result<web_sys::CryptoKey, CryptoError> {
    let usages = Array::of1(&JsValue::from_str(usage));
    let promise = subtle()?
        .import_key_with_str(format, data, ED25519, false, &usages)
        .map_err(|e| CryptoError::failed("importKey", &e))?;
    let key = JsFuture::from(promise)
        .await
        .map_err(|e| CryptoError::failed("importKey", &e))?;
    key.dyn_into()
        .map_err(|e| CryptoError::failed("importKey", &e))
}

async fn sign(key: &web_sys::CryptoKey, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let promise = subtle()?
        .sign_with_str_and_u8_array(ED25519, key, data)
        .map_err(|e| CryptoError::failed("sign", &e))?;
    let signature = JsFuture::from(promise)
        .await
        .map_err(|e| CryptoError::failed("sign", &e))?;
    Ok(Uint8Array::new(&signature).to_vec())
}

/// Whether `signature` is a valid Ed25519 signature of `data` by `public`. A signature of the
/// wrong length is simply invalid; an error means the check could not be made (fail closed).
pub(crate) async fn verify_ed25519(
    public: &[u8; 32],
    data: &[u8],
    signature: &[u8],
) -> Result<bool, CryptoError> {
    if signature.len() != 64 {
        return Ok(false);
    }
    let cached = VERIFIERS.with(|v| v.borrow().get(public).cloned());
    let key = match cached {
        Some(key) => key,
        None => {
            let key = import(&Uint8Array::from(&public[..]), "raw", "verify").await?;
            VERIFIERS.with(|v| v.borrow_mut().insert(*public, key.clone()));
            key
        }
    };
    let promise = subtle()?
        .verify_with_str_and_u8_array_and_u8_array(ED25519, &key, signature, data)
        .map_err(|e| CryptoError::failed("verify", &e))?;
    let verdict = JsFuture::from(promise)
        .await
        .map_err(|e| CryptoError::failed("verify", &e))?;
    Ok(verdict.as_bool() == Some(true))
}
