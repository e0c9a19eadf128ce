//! DPoP-bound `GET /api/me` beside bearer `GET /api/me`, in one run of the report and with one
//! load generator (wrk, every request built by the same Lua `request()`): the report's user
//! logs in three times, without a proof, then with a DPoP proof of an ES256 key, then of an
//! Ed25519 key, and gets a bearer token and two tokens bound to those keys (`cnf.jkt`). At each
//! of `LEVELS` connections, `/api/me` is measured with the bearer token, then with the
//! ES256-bound token and an ES256 proof per request, then with the EdDSA one.
//!
//! wrk cannot sign. Right before each DPoP run, outside the measurement, the report signs the
//! proofs the run may send: each with its own `jti`, all with the `iat` of the moment signing
//! starts (the server's `iat` window, read from jwt-core's default policy, must still cover it
//! when the run ends, or the report fails), cut into one file per wrk thread. Each thread's Lua
//! script reads its own file and sends each proof once; a request after its file has run out
//! goes without a proof, is refused (401) and counts among the errors, and the report shows how
//! many there were. How many proofs a run may need is bounded by the server's CPU: the cores ÷
//! the fastest time one proof is verified here, in-process, with jwt-core's `DpopVerifier` (what
//! the server calls for each request), times the duration, half as much again for margin.
//!
//! The server's replay cache remembers every proof until its `iat` leaves the window, and
//! refuses new ones when full: before signing, the report waits until the proofs of the
//! earlier runs that it could still hold, and the new batch, fit in 80% of its default
//! capacity. The server runs without `DPOP_NONCE`: no nonce round trip.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_core::{Clock as _, DpopPolicy, DpopRequest, DpopVerifier, SystemClock, access_token_hash};
use serde_json::{Value, json};

use jwt_auth_benches::{fail, load_average};

use crate::servers::Server;
use crate::wrk::{Run, wrk_text, wrk_threads};
use crate::{PASSWORD, client, seconds};

/// The connections each of the three runs is measured at.
pub const LEVELS: [u32; 2] = [100, 1_000];
/// The proofs verified in-process per batch, and the batches (the fastest counts).
const PROBE_PROOFS: usize = 500;
const PROBE_BATCHES: usize = 5;
/// The proofs signed for a run: the ceiling's requests over its duration, times this.
const MARGIN: f64 = 1.5;
/// The share of the server's replay cache that the proofs it may still hold can fill.
const REPLAY_SHARE: f64 = 0.8;

/// The signature algorithms of the proofs measured, as JOSE names them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ProofAlg {
    Es256,
    EdDsa,
}

impl ProofAlg {
    pub fn jose(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// One DPoP run: wrk's figures and the proofs behind them.
#[derive(Clone, Default)]
pub struct ProofRun {
    pub run: Run,
    /// Proofs signed for the run, sent with a request, and requests sent without one (after
    /// their thread's file ran out).
    pub signed: u64,
    pub sent: u64,
    pub without_proof: u64,
    /// How long signing took (before the run, outside it).
    pub signing_s: f64,
}

/// The three runs at one level.
pub struct DpopLevel {
    pub connections: u32,
    pub bearer: Run,
    pub es256: ProofRun,
    pub eddsa: ProofRun,
}

/// What one backend's DPoP section measured.
pub struct Dpop {
    /// The load average (1, 5, 15 minutes) when the section started.
    pub load: String,
    pub levels: Vec<DpopLevel>,
    /// The fastest in-process verification of one proof, in microseconds, per algorithm.
    pub verify_us: Vec<(ProofAlg, f64)>,
}

/// A client's DPoP key: signs proofs.
struct ProofKey {
    alg: ProofAlg,
    pair: KeyPair,
    /// The proof header, base64url: `typ`, `alg` and the public `jwk`.
    header: String,
}

enum KeyPair {
    Es256(EcdsaKeyPair, SystemRandom),
    Ed25519(Ed25519KeyPair),
}

impl ProofKey {
    fn generate(alg: ProofAlg) -> Self {
        let failed =
            |e: aws_lc_rs::error::Unspecified| -> ! { fail(format!("a {} key: {e}", alg.jose())) };
        let (pair, jwk) = match alg {
            ProofAlg::Es256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .unwrap_or_else(|e| failed(e));
                // The uncompressed point: 0x04, x, y.
                let point = pair.public_key().as_ref().to_vec();
                let jwk = json!({
                    "kty": "EC", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                });
                (KeyPair::Es256(pair, SystemRandom::new()), jwk)
            }
            ProofAlg::EdDsa => {
                let pair = Ed25519KeyPair::generate().unwrap_or_else(|e| failed(e));
                let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
                (KeyPair::Ed25519(pair), json!({"kty": "OKP", "crv": "Ed25519", "x": x}))
            }
        };
        let header = json!({"typ": "dpop+jwt", "alg": alg.jose(), "jwk": jwk});
        Self { alg, pair, header: URL_SAFE_NO_PAD.encode(header.to_string()) }
    }

    /// A proof of `claims` (their JSON).
    fn sign(&self, claims: &str) -> String {
        let message = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(claims));
        let signature = match &self.pair {
            KeyPair::Es256(pair, rng) => pair
                .sign(rng, message.as_bytes())
                .unwrap_or_else(|e| fail(format!("signing a proof: {e}")))
                .as_ref()
                .to_vec(),
            KeyPair::Ed25519(pair) => pair.sign(message.as_bytes()).as_ref().to_vec(),
        };
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// The claims of a proof (RFC 9449 §4.2), `ath` when a token is presented.
fn claims(jti: &str, htm: &str, htu: &str, iat: i64, ath: Option<&str>) -> String {
    match ath {
        Some(ath) => {
            format!(r#"{{"jti":"{jti}","htm":"{htm}","htu":"{htu}","iat":{iat},"ath":"{ath}"}}"#)
        }
        None => format!(r#"{{"jti":"{jti}","htm":"{htm}","htu":"{htu}","iat":{iat}}}"#),
    }
}

/// A `jti` prefix of 96 random bits, base64url: with a counter after it, unique.
fn jti_prefix() -> String {
    let mut bytes = [0_u8; 12];
    aws_lc_rs::rand::fill(&mut bytes).unwrap_or_else(|e| fail(format!("random bytes: {e}")));
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now_seconds() -> i64 {
    SystemClock.now().timestamp()
}

/// Measures the runs of `LEVELS` on `server`, logging in as `email`; wrk's scripts and the
/// proofs go in `work`.
pub fn measure(
    name: &str,
    server: &Server,
    work: &Path,
    email: &str,
    duration: &str,
    runtime: &tokio::runtime::Runtime,
) -> Dpop {
    eprintln!("report: {name}: DPoP-bound /api/me beside bearer");
    let load = load_average();
    let policy = DpopPolicy::default();
    let window = policy.iat_window.to_std().unwrap_or(Duration::from_secs(60));
    let seconds = seconds(duration).unwrap_or(8.0);
    let keys = [ProofKey::generate(ProofAlg::Es256), ProofKey::generate(ProofAlg::EdDsa)];

    let (bearer, bound) = runtime.block_on(async {
        let http = client::http_client();
        let bearer = login(&http, &server.base, email, None).await;
        let mut bound = Vec::new();
        for key in &keys {
            bound.push(login(&http, &server.base, email, Some(key)).await);
        }
        (bearer, bound)
    });

    let verify_us: Vec<(ProofAlg, f64)> =
        keys.iter().map(|key| (key.alg, fastest_verification_us(key))).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let url = format!("{}/api/me", server.base);
    let bearer_script = work.join("dpop-bearer.lua");
    std::fs::write(&bearer_script, BEARER_LUA).unwrap_or_else(|e| fail(e));
    let budget = (policy.replay_capacity as f64 * REPLAY_SHARE) as u64;
    let mut held = Held::default();

    let mut levels = Vec::new();
    for connections in LEVELS {
        eprintln!("report: {name}: DPoP, {connections} connections");
        let header = [format!("Authorization: Bearer {bearer}")];
        let (bearer_run, _) = wrk_text(connections, duration, Some(&bearer_script), &header, &url);
        let mut runs = Vec::new();
        for ((key, token), (_, verify_us)) in keys.iter().zip(&bound).zip(&verify_us) {
            let ceiling = cores / (verify_us / 1e6);
            let mut count = (ceiling * seconds * MARGIN).ceil() as u64;
            if count > budget {
                eprintln!(
                    "report: {name}: {count} proofs would not fit the replay cache: {budget} signed"
                );
                count = budget;
            }
            held.wait_for_room(count, budget);
            let threads = wrk_threads(connections);
            let files: Vec<PathBuf> = (0..threads)
                .map(|i| work.join(format!("dpop-{}-{connections}-{i}.txt", key.alg.jose())))
                .collect();
            let started = Instant::now();
            let iat = now_seconds();
            sign_files(key, &url, token, iat, count, &files);
            let signing = started.elapsed();
            if signing + Duration::from_secs_f64(seconds) + Duration::from_secs(5) > window {
                fail(format!(
                    "{name}: signing {count} proofs took {:.1} s: with the run, past the server's \
                     `iat` window of {} s (shorten --duration)",
                    signing.as_secs_f64(),
                    window.as_secs()
                ));
            }
            let script = work.join(format!("dpop-{}.lua", key.alg.jose()));
            std::fs::write(&script, proof_lua(&files)).unwrap_or_else(|e| fail(e));
            let header = [format!("Authorization: DPoP {token}")];
            let (run, text) = wrk_text(connections, duration, Some(&script), &header, &url);
            for file in &files {
                let _ = std::fs::remove_file(file);
            }
            let (sent, without_proof) = proofs_sent(&text);
            held.add(started, window, sent);
            runs.push(ProofRun {
                run,
                signed: count,
                sent,
                without_proof,
                signing_s: signing.as_secs_f64(),
            });
        }
        let eddsa = runs.pop().unwrap_or_default();
        let es256 = runs.pop().unwrap_or_default();
        levels.push(DpopLevel { connections, bearer: bearer_run, es256, eddsa });
    }
    Dpop { load, levels, verify_us }
}

/// Logs `email` in, with a proof of `key` if any: the access token (bound to `key`).
async fn login(http: &reqwest::Client, base: &str, email: &str, key: Option<&ProofKey>) -> String {
    let url = format!("{base}/auth/login");
    let mut request = http.post(&url).json(&json!({"username": email, "password": PASSWORD}));
    if let Some(key) = key {
        let jti = format!("{}-login", jti_prefix());
        request =
            request.header("DPoP", key.sign(&claims(&jti, "POST", &url, now_seconds(), None)));
    }
    let response = request.send().await.unwrap_or_else(|e| fail(format!("login: {e}")));
    let status = response.status().as_u16();
    let pair: Value = response.json().await.unwrap_or(Value::Null);
    let expected = if key.is_some() { "DPoP" } else { "Bearer" };
    match (status, pair["token_type"].as_str(), pair["access_token"].as_str()) {
        (200, Some(kind), Some(token)) if kind.eq_ignore_ascii_case(expected) => token.to_owned(),
        _ => fail(format!(
            "login with {}: {status}, {}",
            key.map_or("no proof", |k| k.alg.jose()),
            pair["error"].as_str().unwrap_or("no token of the expected type")
        )),
    }
}

/// The fastest time, in microseconds, that jwt-core's `DpopVerifier` (on the default policy
/// the server uses) takes over one proof of `key` presented with a token, per proof of a batch.
fn fastest_verification_us(key: &ProofKey) -> f64 {
    let verifier = DpopVerifier::new(DpopPolicy::default()).unwrap_or_else(|e| fail(e));
    let (token, url) = ("a.presented.token", "http://127.0.0.1/api/me");
    let ath = access_token_hash(token);
    let request = DpopRequest { method: "GET", url, access_token: Some(token) };
    let prefix = jti_prefix();
    let mut fastest = f64::INFINITY;
    for batch in 0..PROBE_BATCHES {
        let iat = now_seconds();
        let proofs: Vec<String> = (0..PROBE_PROOFS)
            .map(|i| {
                key.sign(&claims(&format!("{prefix}-{batch}-{i}"), "GET", url, iat, Some(&ath)))
            })
            .collect();
        let started = Instant::now();
        for proof in &proofs {
            verifier.verify(proof, &request).unwrap_or_else(|e| fail(format!("a probe: {e}")));
        }
        fastest = fastest.min(started.elapsed().as_secs_f64() / PROBE_PROOFS as f64);
    }
    fastest * 1e6
}

/// Signs `count` proofs of `GET url` with `token` at `iat`, cut between `files` (one per wrk
/// thread, each written by a thread of its own), one proof a line.
fn sign_files(key: &ProofKey, url: &str, token: &str, iat: i64, count: u64, files: &[PathBuf]) {
    let ath = access_token_hash(token);
    let prefix = jti_prefix();
    let each = count.div_ceil(files.len() as u64);
    std::thread::scope(|scope| {
        for (i, file) in files.iter().enumerate() {
            let (ath, prefix) = (&ath, &prefix);
            scope.spawn(move || {
                let out = std::fs::File::create(file).unwrap_or_else(|e| fail(e));
                let mut out = std::io::BufWriter::new(out);
                for n in 0..each {
                    let jti = format!("{prefix}-{i}-{n}");
                    let proof = key.sign(&claims(&jti, "GET", url, iat, Some(ath)));
                    writeln!(out, "{proof}").unwrap_or_else(|e| fail(e));
                }
                out.flush().unwrap_or_else(|e| fail(e));
            });
        }
    });
}

/// The proofs the server may still remember from earlier runs: when they expire, how many.
#[derive(Default)]
struct Held(Vec<(Instant, u64)>);

impl Held {
    /// Proofs signed at `signed` are remembered until their `iat` leaves `window`, and a second
    /// (the rounding of `iat`) and one more (when the server sweeps).
    fn add(&mut self, signed: Instant, window: Duration, count: u64) {
        self.0.push((signed + window + Duration::from_secs(2), count));
    }

    /// Waits until `count` more proofs fit in `budget` beside those still held.
    fn wait_for_room(&mut self, count: u64, budget: u64) {
        loop {
            let now = Instant::now();
            self.0.retain(|(expires, _)| *expires > now);
            let held: u64 = self.0.iter().map(|(_, n)| n).sum();
            if held + count <= budget {
                return;
            }
            let Some(first) = self.0.iter().map(|(expires, _)| *expires).min() else { return };
            eprintln!(
                "report: waiting {:.0} s for the server's replay cache to forget earlier proofs",
                (first - now).as_secs_f64()
            );
            std::thread::sleep(first - now);
        }
    }
}

/// What the proof script's `done` printed: proofs sent, requests without a proof.
fn proofs_sent(text: &str) -> (u64, u64) {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("DPoP proofs sent: "))
        .unwrap_or_else(|| fail("wrk: the DPoP script reported no proofs"));
    let mut numbers = line.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok());
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// The bearer runs' script: each request built by `request()`, as in the proof runs.
const BEARER_LUA: &str = "function request()\n  return wrk.format()\nend\n";

/// The proof runs' script: wrk thread `i` reads `files[i]` whole at its start (one read, before
/// its first request), then sends each line once as the `DPoP` header; when they have run out,
/// requests go without a proof. `done` prints the counts.
fn proof_lua(files: &[PathBuf]) -> String {
    let mut lua = String::from("local files = {\n");
    for file in files {
        let _ = writeln!(lua, "  [==[{}]==],", file.display());
    }
    lua.push_str(
        r#"}
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(files[id], "rb"))
  proofs = file:read("*a")
  file:close()
  at, sent, unsigned = 1, 0, 0
end

function request()
  local stop = string.find(proofs, "\n", at, true)
  if stop == nil then
    unsigned = unsigned + 1
    wrk.headers["DPoP"] = nil
  else
    wrk.headers["DPoP"] = string.sub(proofs, at, stop - 1)
    at = stop + 1
    sent = sent + 1
  end
  return wrk.format()
end

function done(summary, latency, requests)
  local sent, unsigned = 0, 0
  for _, thread in ipairs(threads) do
    sent = sent + thread:get("sent")
    unsigned = unsigned + thread:get("unsigned")
  end
  io.write(string.format("DPoP proofs sent: %d, requests without a proof: %d\n", sent, unsigned))
end
"#,
    );
    lua
}

/// The section's Markdown for `backends` (each name and what it measured): its heading, the
/// method and a table per backend. `machine` says where, `duration` how long each run.
pub fn section(machine: &str, duration: &str, backends: &[(&str, &Dpop)]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## DPoP-bound `GET /api/me` beside bearer\n");
    let policy = DpopPolicy::default();
    let _ = writeln!(
        md,
        "Measured on {machine}; alone with `benches/report.sh --only dpop`, which rewrites only \
         this section. One `jwt-auth serve` per backend, without `DPOP_NONCE` (no nonce round \
         trip). The report's user logs in three times: without a proof, then with a DPoP proof \
         of an ES256 key, then of an Ed25519 key (`POST /auth/login` with a `DPoP` header), and \
         gets a bearer token and two tokens bound to those keys. At each number of connections, \
         wrk runs for {duration} with the bearer token, then with each bound token as \
         `Authorization: DPoP` and a proof of its key per request (`htm`, `htu`, `iat`, `ath`, a \
         `jti` of its own), every request built by the same Lua `request()` in all three runs. \
         wrk cannot sign: before each DPoP run, outside the measurement, the report signs the \
         proofs the run may send, all with the `iat` of that moment (the server accepts \
         {} s either way), and each wrk thread sends each proof of its own share once. Signed: \
         the cores ÷ the fastest in-process verification of one proof (below) × the duration × \
         {MARGIN}; a request sent after its thread's share ran out goes without a proof and is \
         refused. The ratio is the DPoP run's requests per second ÷ the bearer run's (target: at \
         least 0.6×); errors are wrk's (non-2xx answers, socket errors).\n",
        policy.iat_window.num_seconds()
    );
    for (name, dpop) in backends {
        let _ = writeln!(md, "### {name}\n");
        let _ = writeln!(md, "Load average at the start of these runs: {}.\n", dpop.load);
        let _ = writeln!(
            md,
            "| connections | bearer req/s | p99 | ES256 DPoP req/s | p99 | ratio | EdDSA DPoP \
             req/s | p99 | ratio | errors |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
        for level in &dpop.levels {
            let (b, es, ed) = (&level.bearer, &level.es256.run, &level.eddsa.run);
            let mut errors = Vec::new();
            for (label, run) in [("bearer", b), ("ES256", es), ("EdDSA", ed)] {
                if !run.errors.trim().is_empty() {
                    errors.push(format!("{label}: {}", run.errors.trim().replace('|', "/")));
                }
            }
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.1} ms | {:.0} | {:.1} ms | {:.2}× | {:.0} | {:.1} ms | {:.2}× \
                 | {} |",
                level.connections,
                b.rps,
                b.p99_ms,
                es.rps,
                es.p99_ms,
                es.rps / b.rps,
                ed.rps,
                ed.p99_ms,
                ed.rps / b.rps,
                if errors.is_empty() { "none".to_owned() } else { errors.join("; ") }
            );
        }
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "| connections | proofs | signed | signing time | used | requests without a proof |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for level in &dpop.levels {
            for (label, run) in [("ES256", &level.es256), ("EdDSA", &level.eddsa)] {
                let _ = writeln!(
                    md,
                    "| {} | {label} | {} | {:.1} s | {} | {} |",
                    level.connections,
                    jwt_auth_benches::thousands(run.signed),
                    run.signing_s,
                    jwt_auth_benches::thousands(run.sent),
                    jwt_auth_benches::thousands(run.without_proof)
                );
            }
        }
        let _ = writeln!(md);
        let verified: Vec<String> =
            dpop.verify_us.iter().map(|(alg, us)| format!("{} {us:.1} µs", alg.jose())).collect();
        let _ = writeln!(
            md,
            "One proof verified in-process by jwt-core's `DpopVerifier` (the fastest of {} \
             batches of {}, per proof, in the report's process): {}.\n",
            PROBE_BATCHES,
            PROBE_PROOFS,
            verified.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "Proof verification beside the access token's, per algorithm, on one core: `cargo bench \
         -p jwt-auth-benches --bench dpop` (criterion: `dpop_<alg>/verify_proof` and \
         `dpop_<alg>/verify_access`, see `benches/benches/dpop.rs`).\n"
    );
    md
}
