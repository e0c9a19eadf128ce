//! DPoP (RFC 9449) as the server applies it, whoever asks: a proof at a token request binds
//! the tokens it gets to the proof's key, and a bound access token is taken only with a proof
//! of that key. The proofs are checked by `jwt-core` ([`DpopVerifier`]); this decides which
//! verifier checks what, and where the server nonces come from.
//!
//! Two replay caches: proofs at the token endpoints, which anyone can make with a key of their
//! own, are remembered apart from the proofs of bound access tokens, which only a token's
//! holder can make. A flood of self-made proofs at the token endpoints, however large, takes
//! no room from the callers of the API.
//!
//! Nonces (`DPOP_NONCE`) are derived from the active signing key, which every instance holds:
//! a nonce of one instance is good at every other, with no secret of their own to share. When
//! the key rotates, the nonces of the previous key stay good on this instance; an instance
//! that has not switched yet answers a nonce of the new key with a fresh nonce of its own
//! (`use_dpop_nonce`), which the client sends again.

use std::sync::{Arc, Mutex};

use jwt_core::{
    Clock, Confirmation, DpopNonces, DpopPolicy, DpopRequest, DpopVerifier, Error, KeySet,
    TokenScheme,
};

/// The request a proof came with: its method and the URL the client sent it to.
#[derive(Debug, Clone, Copy)]
pub struct ProofTarget<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The absolute URL, as the client addressed it (the public base URL and the path).
    pub url: &'a str,
}

/// The server's DPoP checks.
pub struct Dpop {
    token: DpopVerifier,
    resource: DpopVerifier,
    /// The nonces now required, when they are (`DPOP_NONCE`).
    nonces: Option<Mutex<DpopNonces>>,
}

impl std::fmt::Debug for Dpop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dpop")
            .field("token", &self.token)
            .field("resource", &self.resource)
            .field("nonces", &self.nonces.is_some())
            .finish()
    }
}

impl Dpop {
    /// The checks on `clock`, requiring a nonce of the active key of `keys` when
    /// `require_nonce`.
    pub fn new(clock: Arc<dyn Clock>, keys: &KeySet, require_nonce: bool) -> Result<Self, Error> {
        let verifier = || -> Result<DpopVerifier, Error> {
            Ok(DpopVerifier::new(DpopPolicy::default())?.with_clock(Arc::clone(&clock)))
        };
        let dpop = Self { token: verifier()?, resource: verifier()?, nonces: None };
        if !require_nonce {
            return Ok(dpop);
        }
        let nonces = nonces_of(keys)?;
        dpop.set_nonces(&nonces);
        Ok(Self { nonces: Some(Mutex::new(nonces)), ..dpop })
    }

    /// The algorithms a proof may be signed with (`dpop_signing_alg_values_supported`).
    pub fn algorithms(&self) -> &[jwt_core::Algorithm] {
        &self.token.policy().algorithms
    }

    /// Whether proofs must carry a server nonce.
    pub fn requires_nonce(&self) -> bool {
        self.nonces.is_some()
    }

    /// The nonce to send now in a `DPoP-Nonce` header, when nonces are required.
    pub fn nonce(&self) -> Option<String> {
        self.token.nonce()
    }

    /// The signing keys changed: nonces come from the new active key, and those of the
    /// previous one stay good.
    pub fn keys_changed(&self, keys: &KeySet) {
        let Some(current) = &self.nonces else { return };
        let next = match nonces_of(keys) {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "DPoP nonces kept: the new keys have no signing key");
                return;
            }
        };
        let mut current = current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let next = next.accepting(&current);
        self.set_nonces(&next);
        *current = next;
    }

    fn set_nonces(&self, nonces: &DpopNonces) {
        self.token.set_nonces(Some(nonces.clone()));
        self.resource.set_nonces(Some(nonces.clone()));
    }

    /// The key a token request proved with its `proof`: its tokens are bound to it.
    pub fn token_request(
        &self,
        proof: &str,
        target: ProofTarget<'_>,
    ) -> Result<Confirmation, Error> {
        let request = DpopRequest { method: target.method, url: target.url, access_token: None };
        Ok(self.token.verify(proof, &request)?.confirmation())
    }

    /// Checks how a verified access token was presented: see
    /// [`DpopVerifier::check_presented`].
    pub fn resource_request(
        &self,
        scheme: TokenScheme,
        bound_to: Option<&Confirmation>,
        proof: Option<&str>,
        target: ProofTarget<'_>,
        access_token: &str,
    ) -> Result<(), Error> {
        let request = DpopRequest {
            method: target.method,
            url: target.url,
            access_token: Some(access_token),
        };
        self.resource.check_presented(scheme, bound_to, proof, &request).map(|_| ())
    }

    /// How many proofs the two replay caches remember now (token requests, then resources).
    pub fn remembered(&self) -> (u64, u64) {
        (self.token.remembered(), self.resource.remembered())
    }
}

fn nonces_of(keys: &KeySet) -> Result<DpopNonces, Error> {
    keys.active().map(DpopNonces::from_signing_key).ok_or(Error::NoSigningKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_core::{Algorithm, ManualClock, SigningKey};

    fn keys() -> KeySet {
        KeySet::new(SigningKey::generate(Algorithm::EdDSA).unwrap())
    }

    #[test]
    fn nonces_follow_the_active_key_and_keep_the_previous_one_good() {
        let start = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(start));
        let first = keys();
        let here = Dpop::new(Arc::clone(&clock), &first, true).unwrap();
        let there = Dpop::new(Arc::clone(&clock), &first, true).unwrap();
        assert_eq!(here.nonce(), there.nonce(), "instances with one key issue one nonce");
        let old = here.nonce().unwrap();

        let second = first.rotate(SigningKey::generate(Algorithm::EdDSA).unwrap()).unwrap();
        here.keys_changed(&second);
        let new = here.nonce().unwrap();
        assert_ne!(new, old);
        let now = clock.now();
        let current = here.nonces.as_ref().unwrap().lock().unwrap().clone();
        assert!(current.check(&old, now).is_ok(), "the previous key's nonce stays good");
        assert!(current.check(&new, now).is_ok());

        let off = Dpop::new(clock, &first, false).unwrap();
        assert_eq!(off.nonce(), None, "no nonce unless required");
    }
}
