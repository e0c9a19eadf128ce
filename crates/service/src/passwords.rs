//! Password hashing with argon2id (OWASP parameters: m = 19 MiB, t = 2, p = 1) on a fixed set
//! of dedicated threads, each reusing one argon2 working memory for all its hashes.
//!
//! Why not tokio's blocking pool: argon2 needs 19 MiB per hash. Allocated afresh on the threads
//! of an elastic pool, those buffers stay on glibc's per-thread arenas once glibc has raised its
//! mmap threshold (it does at the first free of one), and are never given back: the server grew
//! by gigabytes under a login load. Here a thread allocates its working memory at its first job
//! and keeps it, so hashing memory is bounded by threads × 19 MiB.
//!
//! How many threads: the server runs one per core (`available_parallelism`). Hashing is
//! CPU-bound, so one per core already reaches the machine's argon2 throughput; more would only
//! share the same cores and hold more memory. It also isolates: a login flood queues here and
//! never takes more than these threads, while the Actix workers, which never hash, keep serving
//! authenticated requests. The queue is bounded as well: with more than 64 jobs per thread
//! waiting, [`Passwords::hash`] and [`Passwords::verify`] fail at once with [`HashError::Busy`]
//! instead of making callers wait without end.
//!
//! Hashes imported from other systems (bcrypt, scrypt, PBKDF2: [`crate::legacy_hash`]) are
//! verified on the same threads. Where one costs less than today's argon2id, the answer is held
//! back until it has taken as long as an argon2id verification takes here (a running average of
//! the real ones), so that a cheap imported hash does not tell its account apart from an
//! unknown email; one that costs more takes its own time (docs/migrating-users.md). The first
//! successful login replaces such a hash ([`is_current`] tells which need it).
//!
//! The threads also run at a lower scheduling priority (nice 9 on Linux) than the threads that
//! serve requests: with nothing else to do they take the whole core, but when a login flood
//! and authenticated traffic compete for it, the kernel gives the request threads the larger
//! share, so the flood slows logins rather than everyone.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use password_hash::rand_core::OsRng;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;
use zeroize::{Zeroize, Zeroizing};

use crate::legacy_hash::LegacyHash;

/// The longest password a login takes, in bytes (the contract's limit); longer ones are
/// refused before any hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The shortest new password, in Unicode code points (as JSON Schema's `minLength` counts).
pub const MIN_NEW_PASSWORD_CHARS: usize = 8;
/// The longest new password, in Unicode code points (as JSON Schema's `maxLength` counts); at
/// most four bytes each, so a new password always fits a login's [`MAX_PASSWORD_BYTES`].
pub const MAX_NEW_PASSWORD_CHARS: usize = 256;

/// Whether `password` may be a new password (registration, `user add`, `ADMIN_PASSWORD`): 8 to
/// 256 characters, counted in Unicode code points, so that the OpenAPI document's `minLength`
/// and `maxLength` state the rule exactly.
pub fn check_new_password(password: &str) -> Result<(), String> {
    // Bounded before counting: a megabyte is refused without walking it.
    let chars = password.chars().take(MAX_NEW_PASSWORD_CHARS + 1).count();
    if !(MIN_NEW_PASSWORD_CHARS..=MAX_NEW_PASSWORD_CHARS).contains(&chars) {
        return Err(format!(
            "password must be {MIN_NEW_PASSWORD_CHARS} to {MAX_NEW_PASSWORD_CHARS} characters"
        ));
    }
    Ok(())
}

/// Whether a password's length is acceptable: at login only the upper bound in bytes (so that
/// no hashing is spent on a megabyte), for a new password 8 to 256 characters.
pub fn check_password(
    password: &crate::secret::SecretString,
    registering: bool,
) -> Result<(), String> {
    if registering {
        check_new_password(password.expose())
    } else {
        check_login_password(password.expose())
    }
}

/// Whether a login may spend a hash on `password`: any password up to [`MAX_PASSWORD_BYTES`].
pub fn check_login_password(password: &str) -> Result<(), String> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("password must be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    Ok(())
}

/// The hashing threads' priority on the crate's 0 (lowest) to 99 scale: on Linux, 25 is nice 9,
/// about a tenth of a core's time against a request thread at nice 0 when both want it.
const HASHING_PRIORITY: u8 = 25;

/// Lowers the calling hashing thread's priority (see the module documentation). A system
/// that refuses leaves it as it is: logins still work, only less politely.
fn yield_to_request_threads() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    let lowered =
        ThreadPriorityValue::try_from(HASHING_PRIORITY).map_err(|e| e.to_string()).and_then(|p| {
            set_current_thread_priority(ThreadPriority::Crossplatform(p))
                .map_err(|e| format!("{e:?}"))
        });
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "could not lower the priority of a password-hashing thread");
    }
}

/// How many jobs may wait per hashing thread before callers are told [`HashError::Busy`]:
/// 2 to 6 seconds of waiting at 30 to 100 ms a hash. Past that, a client is better told to
/// come back than kept waiting.
const QUEUED_JOBS_PER_THREAD: usize = 64;

/// The start of every hash made with today's algorithm and parameters: a stored hash without
/// it is replaced at the user's next successful login.
const CURRENT_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// Whether `stored` was made with today's algorithm and parameters (argon2id, m = 19 MiB,
/// t = 2, p = 1); if not, the next successful login replaces it.
pub fn is_current(stored: &str) -> bool {
    stored.starts_with(CURRENT_PREFIX)
}

/// The most working memory a stored hash may ask for, in argon2 blocks of 1 KiB (256 MiB).
/// Hashes made with more memory than today's parameters (older or imported settings) get a
/// buffer of their own for that one verification, freed right after; this cap keeps a damaged
/// or hostile row from asking for gigabytes.
const MAX_STORED_HASH_BLOCKS: usize = 256 * 1024;

/// A password job could not run.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many jobs are already waiting for a hashing thread; the caller should answer
    /// "try again later" rather than queue.
    #[error("too many password hashes are waiting; try again later")]
    Busy,
    /// The hashing threads are gone, or the one running this job panicked.
    #[error("the password hashing threads have stopped")]
    Stopped,
    /// A hashing thread could not be started.
    #[error("could not start a password hashing thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// argon2 refused its input.
    #[error("password hashing failed: {0}")]
    Argon2(password_hash::Error),
}

impl From<password_hash::Error> for HashError {
    fn from(e: password_hash::Error) -> Self {
        HashError::Argon2(e)
    }
}

/// Hashes and verifies passwords on a fixed set of threads; clones share them, and the
/// threads end when the last clone is dropped.
#[derive(Clone)]
pub struct Passwords {
    pool: Arc<Pool>,
}

/// What the clones of [`Passwords`] share.
struct Pool {
    // Fields drop in declaration order: the queue closes before the threads are joined, so
    // that they see it closed and return.
    jobs: SyncSender<Job>,
    /// Jobs in the queue, not yet taken by a thread.
    waiting: Arc<AtomicUsize>,
    /// Verified against when the user does not exist, so that an unknown email costs the same
    /// as a wrong password.
    dummy_hash: Arc<str>,
    /// How long a verification of today's parameters takes here.
    reference: Arc<Reference>,
    threads: Threads,
}

/// How long verifying a hash of today's parameters takes on these threads: a running average
/// (weight 1/8 for each new one), in nanoseconds; 0 until the first.
#[derive(Default)]
struct Reference(AtomicU64);

impl Reference {
    fn record(&self, took: Duration) {
        let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            Some(if old == 0 { took } else { old - old / 8 + took / 8 })
        });
    }

    fn get(&self) -> Option<Duration> {
        Some(self.0.load(Ordering::Relaxed)).filter(|n| *n > 0).map(Duration::from_nanos)
    }
}

/// What a verification found, and how long to hold the answer back (see the module
/// documentation): zero but for a cheap imported hash.
struct Verified {
    matches: bool,
    hold: Duration,
}

/// The hashing threads, joined on drop. Each thread finishes at most the job it is running:
/// jobs still queued then have no caller left (a caller holds a [`Passwords`] while it waits)
/// and are skipped.
struct Threads(Vec<JoinHandle<()>>);

impl Drop for Threads {
    fn drop(&mut self) {
        for thread in self.0.drain(..) {
            // A thread that panicked has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

/// One request to a hashing thread, with where to send the answer. The password is wiped when
/// the job is dropped, whether it ran or not.
enum Job {
    Hash { password: Zeroizing<String>, answer: oneshot::Sender<Result<String, HashError>> },
    Verify { password: Zeroizing<String>, phc: String, answer: oneshot::Sender<Verified> },
}

impl Passwords {
    /// Starts `threads` hashing threads (at least one), named `argon2-0`, `argon2-1`, …
    pub fn new(threads: usize) -> Result<Self, HashError> {
        Self::with_queue_bound(threads, threads.max(1) * QUEUED_JOBS_PER_THREAD)
    }

    /// Starts `threads` hashing threads with at most `bound` jobs waiting for them.
    pub(crate) fn with_queue_bound(threads: usize, bound: usize) -> Result<Self, HashError> {
        let (jobs, queue) = mpsc::sync_channel(bound);
        // std's receiver has a single owner; the threads take turns at it.
        let queue = Arc::new(Mutex::new(queue));
        let mut pool = Pool {
            jobs,
            waiting: Arc::new(AtomicUsize::new(0)),
            dummy_hash: dummy_hash()?.into(),
            reference: Arc::new(Reference::default()),
            threads: Threads(Vec::with_capacity(threads.max(1))),
        };
        for n in 0..threads.max(1) {
            let (queue, waiting) = (queue.clone(), pool.waiting.clone());
            let shared =
                Shared { dummy: pool.dummy_hash.clone(), reference: pool.reference.clone() };
            let thread = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    yield_to_request_threads();
                    work(&queue, &waiting, &shared)
                })
                .map_err(HashError::Spawn)?;
            pool.threads.0.push(thread);
        }
        Ok(Self { pool: Arc::new(pool) })
    }

    /// How long verifying a hash of today's parameters takes on these threads (a running
    /// average), once one has run: what a cheap imported hash is held back to.
    pub fn reference(&self) -> Option<Duration> {
        self.pool.reference.get()
    }

    /// How many hash jobs are waiting for a thread.
    pub fn queue_depth(&self) -> usize {
        self.pool.waiting.load(Ordering::Relaxed)
    }

    /// The PHC string of a new argon2id hash of `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let (answer, answered) = oneshot::channel();
        self.submit(Job::Hash { password: Zeroizing::new(password), answer })?;
        answered.await.map_err(|_| HashError::Stopped)?
    }

    /// Whether `password` matches the stored hash `phc`: an argon2 PHC string, or a hash
    /// imported from another system ([`crate::legacy_hash`]). With `None` (unknown user) a
    /// dummy hash is verified and the answer is `false`, in about the same time. A hash that
    /// does not parse, or that asks for more than the caps allow, does not match (at the cost
    /// of the dummy verification).
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, HashError> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.pool.dummy_hash.to_string());
        let (answer, answered) = oneshot::channel();
        self.submit(Job::Verify { password: Zeroizing::new(password), phc, answer })?;
        let verified = answered.await.map_err(|_| HashError::Stopped)?;
        if !verified.hold.is_zero() {
            tokio::time::sleep(verified.hold).await;
        }
        Ok(known && verified.matches)
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        self.pool.waiting.fetch_add(1, Ordering::Relaxed);
        self.pool.jobs.try_send(job).map_err(|e| {
            self.pool.waiting.fetch_sub(1, Ordering::Relaxed);
            match e {
                TrySendError::Full(_) => HashError::Busy,
                TrySendError::Disconnected(_) => HashError::Stopped,
            }
        })
    }
}

/// What every hashing thread reads: the dummy hash and the reference timing.
struct Shared {
    dummy: Arc<str>,
    reference: Arc<Reference>,
}

/// A hashing thread: takes jobs until the queue is closed and empty.
fn work(queue: &Mutex<Receiver<Job>>, waiting: &AtomicUsize, shared: &Shared) {
    let mut memory = Memory::default();
    loop {
        // The lock is held only while waiting for the next job, not while hashing.
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else { return };
        waiting.fetch_sub(1, Ordering::Relaxed);
        // A caller that has gone away (its client hung up) no longer needs the answer.
        match job {
            Job::Hash { password, answer } if !answer.is_closed() => {
                let _ = answer.send(memory.hash(password.as_bytes()).map_err(HashError::from));
            }
            Job::Verify { password, phc, answer } if !answer.is_closed() => {
                let _ = answer.send(verify_stored(&mut memory, password.as_bytes(), &phc, shared));
            }
            Job::Hash { .. } | Job::Verify { .. } => {}
        }
    }
}

/// Verifies `password` against a stored hash of any form the server takes, on a hashing
/// thread: argon2 in `memory`, an imported hash with its own KDF (then held back to the
/// reference, see the module documentation), anything else at the cost of the dummy hash.
fn verify_stored(memory: &mut Memory, password: &[u8], stored: &str, shared: &Shared) -> Verified {
    let started = Instant::now();
    if stored.starts_with("$argon2") {
        let matches = memory.verify(password, stored);
        if is_current(stored) {
            shared.reference.record(started.elapsed());
        }
        return Verified { matches, hold: Duration::ZERO };
    }
    let legacy = LegacyHash::parse(stored);
    let matches = legacy.as_ref().is_ok_and(|hash| hash.verify(password));
    if let Err(e) = &legacy {
        tracing::error!(reason = %e, "a stored password hash is of no form the server takes; it never matches");
    }
    let Some(reference) = shared.reference.get().filter(|_| legacy.is_ok()) else {
        // No reference yet, or a hash that does not parse: pay for an argon2id verification
        // (which also gives the reference its first value).
        let dummy = Instant::now();
        memory.verify(password, &shared.dummy);
        shared.reference.record(dummy.elapsed());
        return Verified { matches, hold: Duration::ZERO };
    };
    Verified { matches, hold: reference.saturating_sub(started.elapsed()) }
}

/// Today's hashing context: argon2id v1.3 with the default (OWASP) parameters.
fn argon2id() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// A hash of nothing with today's parameters: verifying against it costs what a real
/// verification costs, and no password matches it but by chance.
fn dummy_hash() -> Result<String, password_hash::Error> {
    phc_string(
        &argon2id(),
        SaltString::generate(&mut OsRng).as_salt(),
        &[0; Params::DEFAULT_OUTPUT_LEN],
    )
}

/// The PHC string of `output`, an argon2id v1.3 hash made with `argon2`'s parameters and `salt`.
fn phc_string(
    argon2: &Argon2<'_>,
    salt: Salt<'_>,
    output: &[u8],
) -> Result<String, password_hash::Error> {
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(salt),
        hash: Some(Output::new(output)?),
    };
    Ok(hash.to_string())
}

/// One thread's argon2 working memory (19 MiB with today's parameters), allocated at its first
/// job and reused by every later one.
#[derive(Default)]
struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    /// A new argon2id hash of `password` as a PHC string.
    fn hash(&mut self, password: &[u8]) -> Result<String, password_hash::Error> {
        let argon2 = argon2id();
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0; Salt::MAX_LENGTH];
        let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes)?;
        let mut output = Zeroizing::new([0; Params::DEFAULT_OUTPUT_LEN]);
        self.compute(&argon2, password, salt_bytes, &mut output[..])?;
        phc_string(&argon2, salt.as_salt(), &output[..])
    }

    /// Whether `password` matches the PHC string `phc`, hashed with the algorithm, version and
    /// parameters that `phc` names (so that hashes made with other settings still verify).
    fn verify(&mut self, password: &[u8], phc: &str) -> bool {
        self.matches(password, phc).unwrap_or(false)
    }

    fn matches(&mut self, password: &[u8], phc: &str) -> Result<bool, password_hash::Error> {
        let hash = PasswordHash::new(phc)?;
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return Ok(false) };
        let params = Params::try_from(&hash)?;
        if params.block_count() > MAX_STORED_HASH_BLOCKS {
            tracing::error!(
                m_cost = params.m_cost(),
                "a stored password hash asks for more memory than allowed; it never matches"
            );
            return Ok(false);
        }
        let version = hash.version.map(Version::try_from).transpose()?.unwrap_or_default();
        let argon2 = Argon2::new(Algorithm::try_from(hash.algorithm)?, version, params);
        let mut salt_bytes = [0; Salt::MAX_LENGTH];
        let salt = salt.decode_b64(&mut salt_bytes)?;
        let mut computed = Zeroizing::new([0; Output::MAX_LENGTH]);
        let computed = &mut computed[..expected.len()];
        self.compute(&argon2, password, salt, computed)?;
        // Constant time: how much of a guess matched must not show in the timing.
        Ok(computed.ct_eq(expected.as_bytes()).into())
    }

    /// Fills `output` with argon2's output for `password` and `salt`, in this thread's working
    /// memory when it is large enough, then wipes the memory used.
    fn compute(
        &mut self,
        argon2: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        output: &mut [u8],
    ) -> Result<(), argon2::Error> {
        let needed = argon2.params().block_count();
        let mut own_buffer = Vec::new();
        let blocks = if needed <= Params::DEFAULT.block_count() {
            if self.blocks.is_empty() {
                self.blocks = vec![Block::default(); Params::DEFAULT.block_count()];
            }
            &mut self.blocks[..needed]
        } else {
            // More than this thread keeps (a stored hash made with other settings, at most
            // MAX_STORED_HASH_BLOCKS): a buffer for this one call, freed at its end, so that a
            // thread holds more than its own memory only while it runs such a hash. An
            // allocation that fails is an error, not an abort.
            own_buffer.try_reserve_exact(needed).map_err(|_| argon2::Error::MemoryTooMuch)?;
            own_buffer.resize(needed, Block::default());
            &mut own_buffer[..]
        };
        let result = argon2.hash_password_into_with_memory(password, salt, output, &mut *blocks);
        blocks.iter_mut().zeroize();
        result
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    /// A PHC string made by argon2's own PHC API.
    fn stock_hash(algorithm: Algorithm, params: Params, password: &str) -> String {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::new(algorithm, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .expect("a hash")
            .to_string()
    }

    fn params(m_cost: u32, t_cost: u32, p_cost: u32) -> Params {
        Params::new(m_cost, t_cost, p_cost, None).expect("valid parameters")
    }

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

    #[tokio::test]
    async fn hashes_made_by_argon2s_phc_api_verify_whatever_their_settings() {
        let passwords = Passwords::new(1).unwrap();
        let stored = [
            stock_hash(Algorithm::Argon2id, Params::DEFAULT, "correct horse"),
            stock_hash(Algorithm::Argon2id, params(8192, 3, 1), "correct horse"),
            stock_hash(Algorithm::Argon2id, params(4096, 1, 2), "correct horse"),
            stock_hash(Algorithm::Argon2i, params(8192, 3, 1), "correct horse"),
            stock_hash(Algorithm::Argon2d, Params::DEFAULT, "correct horse"),
            // More memory than a thread keeps: verified in a buffer of its own.
            stock_hash(Algorithm::Argon2id, params(32 * 1024, 1, 1), "correct horse"),
        ];
        for phc in stored {
            assert!(
                passwords.verify("correct horse".into(), Some(phc.clone())).await.unwrap(),
                "{phc}"
            );
            assert!(
                !passwords.verify("wrong horse".into(), Some(phc.clone())).await.unwrap(),
                "{phc}"
            );
        }
        let v10 = Argon2::new(Algorithm::Argon2id, Version::V0x10, params(8192, 2, 1))
            .hash_password(b"correct horse", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(v10.starts_with("$argon2id$v=16$"));
        assert!(passwords.verify("correct horse".into(), Some(v10)).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_made_here_verify_with_argon2s_phc_api() {
        let passwords = Passwords::new(1).unwrap();
        for password in ["correct horse", "another one", "ünïcödé pässwörd"] {
            let phc = passwords.hash(password.into()).await.unwrap();
            let parsed = PasswordHash::new(&phc).unwrap();
            assert!(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok());
            assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());
        }
    }

    /// A Django PBKDF2 hash of "correct horse battery staple" with 1,000 iterations: well
    /// under a millisecond to verify, against tens of milliseconds for argon2id.
    const CHEAP: &str =
        "pbkdf2_sha256$1000$SmqvCwiiIuZEwi9peYPCFK$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg=";

    #[tokio::test]
    async fn a_cheap_imported_hash_is_answered_no_sooner_than_an_argon2id_verification() {
        let passwords = Passwords::new(1).unwrap();
        assert_eq!(passwords.reference(), None);
        // No reference yet: the first pays for an argon2id verification as well, which
        // gives the reference its first value.
        let started = Instant::now();
        assert!(
            passwords
                .verify("correct horse battery staple".into(), Some(CHEAP.into()))
                .await
                .unwrap()
        );
        let reference = passwords.reference().expect("recorded");
        assert!(started.elapsed() >= reference);
        // Then every answer, right or wrong, is held back to the reference (which only
        // argon2id verifications of today's parameters move).
        for password in ["correct horse battery staple", "wrong horse battery staple"] {
            let started = Instant::now();
            let matched = passwords.verify(password.into(), Some(CHEAP.into())).await.unwrap();
            assert_eq!(matched, password.starts_with("correct"));
            assert_eq!(passwords.reference(), Some(reference));
            assert!(started.elapsed() >= reference, "{:?} < {reference:?}", started.elapsed());
        }
        // An unknown user's dummy verification moves the reference.
        assert!(!passwords.verify("x".into(), None).await.unwrap());
        assert!(passwords.reference().is_some());
    }

    #[tokio::test]
    async fn only_todays_argon2id_hashes_are_current() {
        let passwords = Passwords::new(1).unwrap();
        assert!(is_current(&passwords.hash("correct horse".into()).await.unwrap()));
        assert!(!is_current(&stock_hash(Algorithm::Argon2id, params(8192, 3, 1), "correct horse")));
        assert!(!is_current(&stock_hash(Algorithm::Argon2i, Params::DEFAULT, "correct horse")));
        assert!(!is_current(CHEAP));
        assert!(!is_current("$2b$04$9QDUPpAk3.61ygHPnbnlaeo.BtX3tqfJuIZ0noKv0E8g6CbHkcxxi"));
    }

    #[tokio::test]
    async fn a_stored_hash_of_no_known_form_never_matches() {
        let passwords = Passwords::new(1).unwrap();
        for stored in [
            "",
            "correct horse",
            "md5$salt$0123",
            "$2b$17$9QDUPpAk3.61ygHPnbnlaeo.BtX3tqfJuIZ0noKv0E8g6CbHkcxxi",
        ] {
            assert!(
                !passwords.verify("correct horse".into(), Some(stored.into())).await.unwrap(),
                "{stored}"
            );
        }
        // Positive control.
        assert!(
            passwords
                .verify("correct horse battery staple".into(), Some(CHEAP.into()))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_stored_hash_asking_for_too_much_memory_never_matches() {
        let passwords = Passwords::new(1).unwrap();
        // A genuine hash of the right password: only the cap keeps it from matching.
        let m_cost = u32::try_from(MAX_STORED_HASH_BLOCKS + 1024).unwrap();
        let phc = stock_hash(Algorithm::Argon2id, params(m_cost, 1, 1), "correct horse");
        assert!(!passwords.verify("correct horse".into(), Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let passwords = Passwords::with_queue_bound(1, 1).unwrap();
        let phc = passwords.hash("correct horse".into()).await.unwrap();
        // Submitted together: one runs, one waits, the others find the queue full.
        let attempts = (0..8).map(|_| passwords.verify("correct horse".into(), Some(phc.clone())));
        let answers = futures_util::future::join_all(attempts).await;
        let matched = answers.iter().filter(|a| matches!(a, Ok(true))).count();
        let busy = answers.iter().filter(|a| matches!(a, Err(HashError::Busy))).count();
        assert!((1..=2).contains(&matched), "{answers:?}");
        assert_eq!(matched + busy, 8, "{answers:?}");
        assert_eq!(passwords.queue_depth(), 0);
        assert!(passwords.verify("correct horse".into(), Some(phc)).await.unwrap(), "drained");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn hashing_threads_run_at_a_lower_priority_than_request_threads() {
        // The nice value is field 19 of /proc/self/task/TID/stat, counted after the `(comm)`.
        let nice_of = |name: &str| -> Option<i64> {
            std::fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
                let path = task.ok()?.path();
                let comm = std::fs::read_to_string(path.join("comm")).ok()?;
                if comm.trim_end() != name {
                    return None;
                }
                let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                stat.rsplit_once(')')?.1.split_whitespace().nth(16)?.parse().ok()
            })
        };
        let own = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let own: i64 =
            own.rsplit_once(')').unwrap().1.split_whitespace().nth(16).unwrap().parse().unwrap();
        let passwords = Passwords::new(1).unwrap();
        let lowered = (0..100).find_map(|_| {
            let nice = nice_of("argon2-0").filter(|nice| *nice > own);
            if nice.is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            nice
        });
        assert_eq!(lowered, Some(9), "argon2-0 runs at nice 9 (this thread: {own})");
        drop(passwords);
    }

    #[test]
    fn threads_are_named_and_end_with_the_last_clone() {
        let thread_names = || -> Vec<String> {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim_end().to_owned())
                .collect()
        };
        let passwords = Passwords::new(2).unwrap();
        // A thread takes its name once it runs: give it a moment.
        let named = (0..100).any(|_| {
            let names = thread_names();
            let found = ["argon2-0", "argon2-1"].iter().all(|n| names.iter().any(|m| m == n));
            if !found {
                std::thread::sleep(Duration::from_millis(20));
            }
            found
        });
        assert!(named, "threads named argon2-0 and argon2-1 in {:?}", thread_names());

        let clone = passwords.clone();
        drop(passwords);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let phc = runtime.block_on(clone.hash("still running".into())).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        // Dropping the last clone joins the threads: it returns once they have ended.
        let (done, dropped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(clone);
            let _ = done.send(());
        });
        dropped.recv_timeout(Duration::from_secs(10)).expect("the threads have ended");
    }
}
