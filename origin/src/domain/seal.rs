//! Sealing a refresh's answer for the holder of the presented secret, so Redis can keep it for
//! repeats within the grace window without ever holding a usable token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use super::refresh::{RefreshHash, RefreshSecret};

/// XChaCha20's nonce, stored in front of the ciphertext.
const NONCE_BYTES: usize = 24;

/// Encrypts `plaintext` for the holder of a refresh secret: XChaCha20-Poly1305 under a key
/// derived from the secret, a fresh random 192-bit nonce per seal (so a retry that seals another
/// answer for the same secret never repeats a key/nonce pair), and the secret's hash as
/// associated data (so the entry opens only under the key it was stored for). Only a holder of
/// the secret can open it; the stored hash does not derive the key (different domain).
pub fn seal_for_secret(
    secret: &RefreshSecret,
    secret_hash: &RefreshHash,
    plaintext: &[u8],
) -> Option<String> {
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&sealing_key(secret).into());
    let mut nonce = chacha20poly1305::XNonce::default();
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let payload = Payload {
        msg: plaintext,
        aad: secret_hash.as_bytes(),
    };
    let sealed = cipher.encrypt(&nonce, payload).ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// Opens what [`seal_for_secret`] sealed; `None` unless both the secret and its hash are the
/// ones it was sealed for and nothing was altered.
pub fn open_for_secret(
    secret: &RefreshSecret,
    secret_hash: &RefreshHash,
    sealed: &str,
) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() < NONCE_BYTES {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(&sealing_key(secret).into());
    let payload = Payload {
        msg: sealed,
        aad: secret_hash.as_bytes(),
    };
    cipher
        .decrypt(chacha20poly1305::XNonce::from_slice(nonce), payload)
        .ok()
}

fn sealing_key(secret: &RefreshSecret) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tollgate/refresh-grace/v2\0");
    h.update(secret.expose().as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::new_refresh_secret;

    #[test]
    fn sealed_answers_open_only_with_their_secret() {
        let (a, ha) = new_refresh_secret();
        let (b, hb) = new_refresh_secret();
        let sealed = seal_for_secret(&a, &ha, b"answer").expect("seal");
        assert_eq!(
            open_for_secret(&a, &ha, &sealed).as_deref(),
            Some(&b"answer"[..])
        );
        assert_eq!(open_for_secret(&b, &hb, &sealed), None);
        assert_eq!(open_for_secret(&b, &ha, &sealed), None);
        assert!(!sealed.contains("answer"));
    }

    #[test]
    fn two_seals_of_the_same_answer_differ() {
        let (a, ha) = new_refresh_secret();
        let one = seal_for_secret(&a, &ha, b"answer").expect("seal");
        let two = seal_for_secret(&a, &ha, b"answer").expect("seal");
        assert_ne!(one, two, "a seal repeated its nonce");
        // The nonces themselves differ (the first 32 characters encode the first 24 bytes).
        assert_ne!(one[..32], two[..32]);
        assert_eq!(
            open_for_secret(&a, &ha, &two).as_deref(),
            Some(&b"answer"[..])
        );
    }

    #[test]
    fn a_seal_opens_only_with_its_hash_as_associated_data() {
        let (a, ha) = new_refresh_secret();
        let (_, hb) = new_refresh_secret();
        let sealed = seal_for_secret(&a, &ha, b"answer").expect("seal");
        assert_eq!(open_for_secret(&a, &hb, &sealed), None);
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).expect("b64");
        let last = bytes.len() - 1;
        for i in [0, NONCE_BYTES, last] {
            bytes[i] ^= 1;
            let tampered = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(open_for_secret(&a, &ha, &tampered), None, "byte {i}");
            bytes[i] ^= 1;
        }
        assert_eq!(open_for_secret(&a, &ha, "c2hvcnQ"), None);
    }
}
