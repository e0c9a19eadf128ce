//! Password hashing with argon2id (OWASP parameters: m = 19 MiB, t = 2, p = 1) on a bounded
//! pool of blocking threads, so a flood of logins queues here instead of stalling the Actix
//! workers that serve authenticated requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use password_hash::rand_core::OsRng;
use tokio::sync::Semaphore;

/// The longest password accepted, in bytes (the contract's limit); longer ones are refused
/// before any hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The shortest password accepted at registration, in bytes.
pub const MIN_PASSWORD_BYTES: usize = 8;

/// Hashes and verifies passwords, at most `permits` at a time.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    /// Verified against when the user does not exist, so that an unknown email costs the same
    /// as a wrong password.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

fn hash_blocking(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2().hash_password(password, &salt)?.to_string())
}

fn verify_blocking(password: &[u8], phc: &str) -> bool {
    // Parameters come from the stored PHC string, so hashes made with older settings verify.
    PasswordHash::new(phc).is_ok_and(|hash| argon2().verify_password(password, &hash).is_ok())
}

/// A hashing job could not run (the pool is gone, or argon2 refused its input).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl Passwords {
    /// A pool running at most `permits` hashes at once.
    pub fn new(permits: usize) -> Result<Self, HashError> {
        let dummy = hash_blocking(b"dummy password for unknown users")
            .map_err(|e| HashError(e.to_string()))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            dummy_hash: dummy.into(),
        })
    }

    /// How many hash jobs are waiting for a thread.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// The PHC string of a new argon2id hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move || hash_blocking(password.as_bytes()).map_err(|e| HashError(e.to_string())))
            .await?
    }

    /// Whether `password` matches `phc`; with `None` (unknown user) a dummy hash is verified
    /// and the answer is `false`, in about the same time.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, HashError> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.to_string());
        let matches = self.run(move || verify_blocking(password.as_bytes(), &phc)).await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let permit = permit.map_err(|_| HashError("the hashing pool is closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| HashError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let passwords = Passwords::new(2).unwrap();
        let phc = passwords.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(passwords.verify("correct horse".into(), Some(phc.clone())).await.unwrap());
        assert!(!passwords.verify("wrong horse".into(), Some(phc)).await.unwrap());
        assert!(!passwords.verify("dummy password for unknown users".into(), None).await.unwrap());
        assert!(!passwords.verify("x".into(), Some("not a phc string".into())).await.unwrap());
    }
}
