//! Private keys encrypted for storage: a [`KeyEncryptionKey`] seals a [`SigningKey`] with
//! AES-256-GCM under a random nonce, binding the key's `kid` and algorithm as associated data,
//! so a sealed key copied onto another key's record, or opened with another KEK, fails to open.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::{Algorithm, Secret, SigningKey};

/// The first byte of every sealed key: the layout `version ‖ nonce ‖ ciphertext ‖ tag`.
const SEALED_VERSION: u8 = 1;
/// The length of a key-encryption key in bytes (AES-256).
pub const KEK_BYTES: usize = 32;

/// A 256-bit key that encrypts signing keys at rest. Its bytes are zeroed on drop and never
/// shown by `Debug`.
///
/// ```
/// use jwt_core::{Algorithm, Error, KeyEncryptionKey, SigningKey};
/// let kek = KeyEncryptionKey::new(&[7u8; 32])?;
/// assert_eq!(format!("{kek:?}"), "KeyEncryptionKey([redacted])");
/// let key = SigningKey::generate(Algorithm::EdDSA)?;
/// let sealed = kek.seal(&key)?;
/// let opened = kek.open(Algorithm::EdDSA, key.kid(), &sealed)?;
/// assert_eq!(opened.kid(), key.kid());
///
/// let other = KeyEncryptionKey::new(&[8u8; 32])?;
/// assert!(matches!(other.open(Algorithm::EdDSA, key.kid(), &sealed), Err(Error::SealedKey { .. })));
/// assert!(KeyEncryptionKey::new(b"short").is_err());
/// # Ok::<(), jwt_core::Error>(())
/// ```
pub struct KeyEncryptionKey {
    key: RandomizedNonceKey,
    /// The KEK the keys were sealed under before this one, while they are being re-sealed.
    previous: Option<Box<KeyEncryptionKey>>,
}

impl KeyEncryptionKey {
    /// A KEK from exactly [`KEK_BYTES`] bytes; any other length is [`Error::InvalidKey`].
    pub fn new(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != KEK_BYTES {
            return Err(Error::InvalidKey(format!(
                "a key-encryption key is {KEK_BYTES} bytes, got {}",
                bytes.len()
            )));
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map_err(|_| Error::InvalidKey("AES-256-GCM refused the key".into()))?;
        Ok(Self { key, previous: None })
    }

    /// This KEK, also opening keys sealed under `previous`: for changing the KEK without
    /// stopping. [`KeyEncryptionKey::open`] tries this KEK first, then `previous` (and its own
    /// previous, if it has one); [`KeyEncryptionKey::seal`] only ever uses this one. So
    /// instances given both can read every key while the stored keys are re-sealed, and once
    /// all of them are, `previous` can go.
    ///
    /// ```
    /// use jwt_core::{Algorithm, KeyEncryptionKey, SigningKey};
    /// let old = KeyEncryptionKey::new(&[1u8; 32])?;
    /// let key = SigningKey::generate(Algorithm::EdDSA)?;
    /// let sealed_before = old.seal(&key)?;
    ///
    /// let new = KeyEncryptionKey::new(&[2u8; 32])?.with_previous(KeyEncryptionKey::new(&[1u8; 32])?);
    /// // Keys sealed under the old KEK still open; what is sealed now is under the new one.
    /// let opened = new.open(Algorithm::EdDSA, key.kid(), &sealed_before)?;
    /// let resealed = new.seal(&opened)?;
    /// assert!(old.open(Algorithm::EdDSA, key.kid(), &resealed).is_err());
    /// let only_new = KeyEncryptionKey::new(&[2u8; 32])?;
    /// assert_eq!(only_new.open(Algorithm::EdDSA, key.kid(), &resealed)?.kid(), key.kid());
    /// assert!(only_new.open(Algorithm::EdDSA, key.kid(), &sealed_before).is_err());
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn with_previous(mut self, previous: KeyEncryptionKey) -> Self {
        self.previous = Some(Box::new(previous));
        self
    }

    /// Whether `sealed` opens under this KEK itself, not under a previous one: a key that
    /// still needs re-sealing does not.
    pub fn opens_without_previous(&self, alg: Algorithm, kid: &str, sealed: &[u8]) -> bool {
        self.open_own(alg, kid, sealed).is_ok()
    }

    /// Encrypts `key`'s private material (the secret for HS256, its PEM otherwise) under a
    /// fresh random nonce.
    pub fn seal(&self, key: &SigningKey) -> Result<Vec<u8>> {
        let mut in_out: Zeroizing<Vec<u8>> = match key.secret() {
            Some(secret) => Zeroizing::new(secret.to_vec()),
            None => Zeroizing::new(key.to_pem()?.as_bytes().to_vec()),
        };
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(aad(key.algorithm(), key.kid())), &mut *in_out)
            .map_err(|_| Error::InvalidKey("encrypting the key failed".into()))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(SEALED_VERSION);
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Decrypts a key sealed by [`KeyEncryptionKey::seal`] for `alg` and `kid`.
    /// [`Error::SealedKey`] if it does not open: another KEK, another `kid` or algorithm, or a
    /// changed byte.
    pub fn open(&self, alg: Algorithm, kid: &str, sealed: &[u8]) -> Result<SigningKey> {
        match (self.open_own(alg, kid, sealed), &self.previous) {
            (Err(Error::SealedKey { .. }), Some(previous)) => previous.open(alg, kid, sealed),
            (opened, _) => opened,
        }
    }

    fn open_own(&self, alg: Algorithm, kid: &str, sealed: &[u8]) -> Result<SigningKey> {
        let refused = || Error::SealedKey { kid: kid.to_owned() };
        let (&version, rest) = sealed.split_first().ok_or_else(refused)?;
        if version != SEALED_VERSION || rest.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad(alg, kid)), &mut in_out)
            .map_err(|_| refused())?;
        let key = if alg.is_symmetric() {
            SigningKey::from_secret(Secret::new(plain.to_vec())?)?
        } else {
            SigningKey::from_pem(alg, plain)?
        };
        Ok(key.with_kid(kid))
    }
}

fn aad(alg: Algorithm, kid: &str) -> Vec<u8> {
    format!("jwt-auth signing key\0{alg}\0{kid}").into_bytes()
}

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.previous {
            None => f.write_str("KeyEncryptionKey([redacted])"),
            Some(previous) => write!(f, "KeyEncryptionKey([redacted], previous: {previous:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_hold_no_plaintext_and_use_a_fresh_nonce() {
        let kek = KeyEncryptionKey::new(&[1; 32]).unwrap();
        let key = SigningKey::generate(Algorithm::HS256).unwrap();
        let (a, b) = (kek.seal(&key).unwrap(), kek.seal(&key).unwrap());
        assert_ne!(a, b, "a random nonce each time");
        let secret = key.secret().unwrap();
        assert!(!a.windows(secret.len()).any(|w| w == secret));
        assert_eq!(kek.open(Algorithm::HS256, key.kid(), &a).unwrap().secret(), Some(secret));
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_own_kid_and_algorithm() {
        let kek = KeyEncryptionKey::new(&[1; 32]).unwrap();
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let sealed = kek.seal(&key).unwrap();
        assert!(kek.open(Algorithm::ES256, "another", &sealed).is_err());
        assert!(kek.open(Algorithm::RS256, key.kid(), &sealed).is_err());
        let mut changed = sealed.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert!(kek.open(Algorithm::ES256, key.kid(), &changed).is_err());
        assert!(kek.open(Algorithm::ES256, key.kid(), &[]).is_err());
        assert_eq!(kek.open(Algorithm::ES256, key.kid(), &sealed).unwrap().kid(), key.kid());
    }

    #[test]
    fn a_previous_kek_opens_but_never_seals() {
        let key = SigningKey::generate(Algorithm::HS256).unwrap();
        let old = KeyEncryptionKey::new(&[1; 32]).unwrap();
        let sealed = old.seal(&key).unwrap();
        let new = KeyEncryptionKey::new(&[2; 32]).unwrap();
        assert!(new.open(Algorithm::HS256, key.kid(), &sealed).is_err(), "the control");
        let both = KeyEncryptionKey::new(&[2; 32]).unwrap().with_previous(old);
        assert_eq!(both.open(Algorithm::HS256, key.kid(), &sealed).unwrap().kid(), key.kid());
        assert!(!both.opens_without_previous(Algorithm::HS256, key.kid(), &sealed));
        let resealed = both.seal(&key).unwrap();
        assert!(new.open(Algorithm::HS256, key.kid(), &resealed).is_ok());
        assert!(both.opens_without_previous(Algorithm::HS256, key.kid(), &resealed));
        // Another kid is refused whichever KEK is tried.
        assert!(both.open(Algorithm::HS256, "another", &sealed).is_err());
        assert_eq!(
            format!("{both:?}"),
            "KeyEncryptionKey([redacted], previous: KeyEncryptionKey([redacted]))"
        );
    }

    #[test]
    fn a_sealed_key_of_another_version_or_cut_short_does_not_open() {
        let kek = KeyEncryptionKey::new(&[1; 32]).unwrap();
        let key = SigningKey::generate(Algorithm::HS256).unwrap();
        let sealed = kek.seal(&key).unwrap();
        assert!(kek.open(Algorithm::HS256, key.kid(), &sealed).is_ok(), "the control");
        let mut other_version = sealed.clone();
        other_version[0] ^= 0xff;
        for bad in [&other_version[..], &sealed[..1 + NONCE_LEN - 1], &[][..]] {
            let refused = kek.open(Algorithm::HS256, key.kid(), bad);
            assert!(matches!(refused, Err(Error::SealedKey { .. })), "{refused:?}");
        }
    }
}
