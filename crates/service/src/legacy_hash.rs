//! Password hashes made by other systems, as `jwt-auth user import` takes them: checked and
//! brought to the form they are stored in, then verified at login until the first successful
//! one replaces them with today's argon2id hash.
//!
//! The forms (docs/migrating-users.md lists them with examples):
//!
//! | form | example | verified with |
//! |---|---|---|
//! | argon2 PHC (argon2id, argon2i, argon2d) | `$argon2id$v=19$m=…,t=…,p=…$salt$hash` | argon2, like our own hashes |
//! | bcrypt | `$2a$`, `$2b$`, `$2y$` + cost + 53 characters | `bcrypt` |
//! | scrypt PHC (also passlib's) | `$scrypt$ln=…,r=…,p=…$salt$hash` | `scrypt` |
//! | PBKDF2 PHC | `$pbkdf2-sha256$i=…,l=…$salt$hash` (or `-sha512`) | `pbkdf2` |
//! | passlib PBKDF2 | `$pbkdf2-sha256$29000$salt$hash` (or `-sha512`), adapted base64 | `pbkdf2` |
//! | Django | `pbkdf2_sha256$…`, `bcrypt_sha256$$2b$…`, `bcrypt$$2b$…`, `argon2$argon2id$…` | the above |
//! | Werkzeug (Flask) | `pbkdf2:sha256:600000$salt$hex`, `scrypt:32768:8:1$salt$hex` | the above |
//!
//! Django's `argon2$` and `bcrypt$` forms are the plain forms behind a prefix: they are stored
//! without it. Every other form is stored as given.
//!
//! Costs are capped, so that one stored hash cannot hold a hashing thread for minutes or ask
//! for gigabytes: bcrypt cost 16, PBKDF2 10,000,000 iterations, scrypt and argon2 256 MiB of
//! memory. An import with a hash past a cap fails, naming it; a stored hash past a cap (a row
//! changed by hand) never matches.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use password_hash::PasswordHash;
use sha2_legacy::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The highest bcrypt cost taken: 2^16 rounds, seconds a verification.
pub const MAX_BCRYPT_COST: u32 = 16;
/// The most PBKDF2 iterations taken (Django 5.2 makes 1,000,000).
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The most memory an scrypt or argon2 hash may ask for, in bytes (256 MiB).
pub const MAX_MEMORY_BYTES: u64 = 256 * 1024 * 1024;

/// passlib's "adapted base64": the standard alphabet with `.` for `+`, no padding.
const ADAPTED_BASE64: GeneralPurpose = GeneralPurpose::new(
    &match base64::alphabet::Alphabet::new(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./",
    ) {
        Ok(alphabet) => alphabet,
        Err(_) => panic!("a valid alphabet"),
    },
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
);

/// Why a password hash cannot be imported (or, stored, cannot be verified). The message never
/// contains the hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(String);

fn unsupported(message: impl Into<String>) -> Unsupported {
    Unsupported(message.into())
}

/// A password hash made by another system, parsed: what verifying a password against it needs.
#[derive(Clone, PartialEq, Eq)]
pub struct LegacyHash {
    scheme: Scheme,
    family: &'static str,
}

impl std::fmt::Debug for LegacyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Salts and digests are what an offline attack starts from: not shown.
        f.debug_struct("LegacyHash").field("family", &self.family).finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Scheme {
    /// A bcrypt hash (60 characters); `sha256_hex`: of the hex SHA-256 of the password
    /// (Django's `bcrypt_sha256`).
    Bcrypt {
        hash: String,
        sha256_hex: bool,
    },
    Pbkdf2 {
        prf: Prf,
        iterations: u32,
        salt: Vec<u8>,
        digest: Vec<u8>,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        digest: Vec<u8>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prf {
    Sha256,
    Sha512,
}

/// What `jwt-auth user import` stores for `text`, and the family it belongs to: argon2 PHC
/// strings and the forms of [`LegacyHash`], checked and within the caps, with Django's
/// `argon2$` and `bcrypt$` prefixes taken off.
pub fn import_form(text: &str) -> Result<(String, &'static str), Unsupported> {
    if text.len() > 1024 {
        return Err(unsupported("a password hash of more than 1,024 characters"));
    }
    // Django's forms of these two are the plain form behind a prefix: `argon2` + `$argon2id$…`,
    // `bcrypt$` + `$2b$…`.
    if let Some(phc) = text.strip_prefix("argon2").filter(|rest| rest.starts_with("$argon2")) {
        check_argon2(phc)?;
        return Ok((phc.to_owned(), "django-argon2"));
    }
    if text.starts_with("$argon2") {
        let family = check_argon2(text)?;
        return Ok((text.to_owned(), family));
    }
    if let Some(bcrypt) = text.strip_prefix("bcrypt$") {
        let parsed = LegacyHash::parse(bcrypt)?;
        if parsed.family != "bcrypt" {
            return Err(unsupported("Django's `bcrypt$` is followed by a bcrypt hash"));
        }
        return Ok((bcrypt.to_owned(), "django-bcrypt"));
    }
    let parsed = LegacyHash::parse(text)?;
    Ok((text.to_owned(), parsed.family))
}

/// Checks an argon2 PHC string: it parses, names argon2id, argon2i or argon2d, and asks for
/// no more than [`MAX_MEMORY_BYTES`]. Returns its family.
fn check_argon2(phc: &str) -> Result<&'static str, Unsupported> {
    let hash = PasswordHash::new(phc).map_err(|e| unsupported(format!("argon2: {e}")))?;
    let family = match hash.algorithm.as_str() {
        "argon2id" => "argon2id",
        "argon2i" => "argon2i",
        "argon2d" => "argon2d",
        _ => return Err(unsupported("argon2: the algorithm is not argon2id, argon2i or argon2d")),
    };
    let params =
        argon2::Params::try_from(&hash).map_err(|e| unsupported(format!("argon2: {e}")))?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err(unsupported("argon2: the salt or the hash is missing"));
    }
    if u64::from(params.m_cost()) * 1024 > MAX_MEMORY_BYTES {
        return Err(unsupported(format!(
            "argon2: m={} KiB is more memory than the {} MiB allowed",
            params.m_cost(),
            MAX_MEMORY_BYTES >> 20
        )));
    }
    Ok(family)
}

impl LegacyHash {
    /// Parses a hash of one of the forms in the module's table that argon2 does not verify:
    /// bcrypt, scrypt and PBKDF2 in all their forms. Argon2 PHC strings are not for this
    /// type ([`import_form`] takes them).
    pub fn parse(text: &str) -> Result<LegacyHash, Unsupported> {
        let (scheme, family) = if text.starts_with("$2") {
            (bcrypt_scheme(text, false)?, "bcrypt")
        } else if let Some(rest) = text.strip_prefix("bcrypt_sha256$") {
            (bcrypt_scheme(rest, true)?, "django-bcrypt_sha256")
        } else if text.starts_with("$scrypt$") {
            (scrypt_phc(text)?, "scrypt")
        } else if let Some(rest) = text.strip_prefix("$pbkdf2-") {
            pbkdf2_dollar(text, rest)?
        } else if let Some(rest) = text.strip_prefix("pbkdf2_sha256$") {
            (django_pbkdf2(rest)?, "django-pbkdf2_sha256")
        } else if let Some(rest) = text.strip_prefix("pbkdf2:") {
            (werkzeug_pbkdf2(rest)?, "werkzeug-pbkdf2")
        } else if let Some(rest) = text.strip_prefix("scrypt:") {
            (werkzeug_scrypt(rest)?, "werkzeug-scrypt")
        } else {
            return Err(unsupported(
                "not a password hash form this server takes (argon2, bcrypt, scrypt and PBKDF2 \
                 PHC strings, passlib's PBKDF2, Django's pbkdf2_sha256, bcrypt_sha256, bcrypt \
                 and argon2, Werkzeug's pbkdf2 and scrypt)",
            ));
        };
        Ok(LegacyHash { scheme, family })
    }

    /// The family of the form, as the import reports and the docs name it (`bcrypt`,
    /// `scrypt`, `pbkdf2-sha256`, `django-pbkdf2_sha256`, `werkzeug-scrypt`, …).
    pub fn family(&self) -> &'static str {
        self.family
    }

    /// Whether `password` is the password this hash was made from. Digests are compared in
    /// constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        match &self.scheme {
            Scheme::Bcrypt { hash, sha256_hex } => {
                let matched = if *sha256_hex {
                    let hex = to_hex(&Sha256::digest(password));
                    bcrypt::verify(hex.as_bytes(), hash)
                } else {
                    bcrypt::verify(password, hash)
                };
                matched.unwrap_or(false)
            }
            Scheme::Pbkdf2 { prf, iterations, salt, digest } => {
                let mut computed = zeroize::Zeroizing::new(vec![0; digest.len()]);
                match prf {
                    Prf::Sha256 => {
                        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, *iterations, &mut computed)
                    }
                    Prf::Sha512 => {
                        pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut computed)
                    }
                }
                computed.ct_eq(digest).into()
            }
            Scheme::Scrypt { log_n, r, p, salt, digest } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p, digest.len()) else {
                    return false;
                };
                let mut computed = zeroize::Zeroizing::new(vec![0; digest.len()]);
                scrypt::scrypt(password, salt, &params, &mut computed).is_ok()
                    && bool::from(computed.ct_eq(digest))
            }
        }
    }
}

fn bcrypt_scheme(hash: &str, sha256_hex: bool) -> Result<Scheme, Unsupported> {
    if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
        return Err(unsupported("bcrypt: the prefix is not $2a$, $2b$ or $2y$"));
    }
    let parts: bcrypt::HashParts =
        hash.parse().map_err(|e: bcrypt::BcryptError| unsupported(format!("bcrypt: {e}")))?;
    let cost = parts.get_cost();
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(unsupported(format!("bcrypt: cost {cost} is outside 4 to {MAX_BCRYPT_COST}")));
    }
    Ok(Scheme::Bcrypt { hash: hash.to_owned(), sha256_hex })
}

fn prf(name: &str) -> Result<Prf, Unsupported> {
    match name {
        "sha256" => Ok(Prf::Sha256),
        "sha512" => Ok(Prf::Sha512),
        other => {
            Err(unsupported(format!("PBKDF2 over `{other}` is not supported (sha256, sha512)")))
        }
    }
}

fn iterations(text: &str) -> Result<u32, Unsupported> {
    let n: u32 = text
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| unsupported("PBKDF2: the iteration count is not a positive number"))?;
    if n > MAX_PBKDF2_ITERATIONS {
        return Err(unsupported(format!(
            "PBKDF2: {n} iterations is more than the {MAX_PBKDF2_ITERATIONS} allowed"
        )));
    }
    Ok(n)
}

/// A PBKDF2 digest: 16 to 64 bytes.
fn pbkdf2_digest(bytes: Vec<u8>) -> Result<Vec<u8>, Unsupported> {
    if (16..=64).contains(&bytes.len()) {
        Ok(bytes)
    } else {
        Err(unsupported("PBKDF2: the digest is not 16 to 64 bytes"))
    }
}

fn salt(bytes: Vec<u8>) -> Result<Vec<u8>, Unsupported> {
    if bytes.is_empty() || bytes.len() > 256 {
        return Err(unsupported("the salt is empty or longer than 256 bytes"));
    }
    Ok(bytes)
}

/// `$pbkdf2-sha256$…`: the PHC form (`i=…,l=…` parameters, PHC base64) or passlib's (a bare
/// iteration count, adapted base64).
fn pbkdf2_dollar(text: &str, rest: &str) -> Result<(Scheme, &'static str), Unsupported> {
    let fields: Vec<&str> = rest.split('$').collect();
    let [name, params, salt_text, digest_text] = fields[..] else {
        return Err(unsupported("PBKDF2: expected $pbkdf2-DIGEST$PARAMETERS$SALT$HASH"));
    };
    let prf = prf(name)?;
    let family = match prf {
        Prf::Sha256 => "pbkdf2-sha256",
        Prf::Sha512 => "pbkdf2-sha512",
    };
    if !params.contains('=') {
        // passlib: `$pbkdf2-sha256$29000$<ab64 salt>$<ab64 hash>`.
        let decode = |part: &str, what: &str| {
            ADAPTED_BASE64.decode(part).map_err(|_| {
                unsupported(format!("PBKDF2 (passlib): the {what} is not adapted base64"))
            })
        };
        return Ok((
            Scheme::Pbkdf2 {
                prf,
                iterations: iterations(params)?,
                salt: salt(decode(salt_text, "salt")?)?,
                digest: pbkdf2_digest(decode(digest_text, "hash")?)?,
            },
            family,
        ));
    }
    let hash = PasswordHash::new(text).map_err(|e| unsupported(format!("PBKDF2: {e}")))?;
    let mut rounds = None;
    for (name, value) in hash.params.iter() {
        match name.as_str() {
            "i" => rounds = Some(iterations(value.as_str())?),
            // The digest's length: checked against the digest itself below.
            "l" => {}
            _ => return Err(unsupported(format!("PBKDF2: unknown parameter `{name}`"))),
        }
    }
    let declared = hash.params.get_decimal("l");
    let (Some(rounds), Some(salt_value), Some(output)) = (rounds, hash.salt, hash.hash) else {
        return Err(unsupported("PBKDF2: the iterations (i=), the salt or the hash is missing"));
    };
    if declared.is_some_and(|l| l as usize != output.len()) {
        return Err(unsupported("PBKDF2: l= is not the length of the hash"));
    }
    let mut buffer = [0; 64];
    let salt_bytes = salt_value
        .decode_b64(&mut buffer)
        .map_err(|_| unsupported("PBKDF2: the salt is not base64"))?;
    Ok((
        Scheme::Pbkdf2 {
            prf,
            iterations: rounds,
            salt: salt(salt_bytes.to_vec())?,
            digest: pbkdf2_digest(output.as_bytes().to_vec())?,
        },
        family,
    ))
}

/// Django's `pbkdf2_sha256$ITERATIONS$SALT$BASE64`: the salt is used as its text, the hash is
/// standard base64 with padding.
fn django_pbkdf2(rest: &str) -> Result<Scheme, Unsupported> {
    let fields: Vec<&str> = rest.split('$').collect();
    let [count, salt_text, digest_text] = fields[..] else {
        return Err(unsupported("Django PBKDF2: expected pbkdf2_sha256$ITERATIONS$SALT$HASH"));
    };
    let digest = STANDARD
        .decode(digest_text)
        .map_err(|_| unsupported("Django PBKDF2: the hash is not base64"))?;
    Ok(Scheme::Pbkdf2 {
        prf: Prf::Sha256,
        iterations: iterations(count)?,
        salt: salt(salt_text.as_bytes().to_vec())?,
        digest: pbkdf2_digest(digest)?,
    })
}

/// Werkzeug's `pbkdf2:sha256:ITERATIONS$SALT$HEX`: the salt is used as its text.
fn werkzeug_pbkdf2(rest: &str) -> Result<Scheme, Unsupported> {
    let fields: Vec<&str> = rest.split('$').collect();
    let [method, salt_text, digest_text] = fields[..] else {
        return Err(unsupported("Werkzeug PBKDF2: expected pbkdf2:DIGEST:ITERATIONS$SALT$HEX"));
    };
    let Some((name, count)) = method.split_once(':') else {
        return Err(unsupported(
            "Werkzeug PBKDF2: the iteration count is missing (pbkdf2:DIGEST:ITERATIONS)",
        ));
    };
    Ok(Scheme::Pbkdf2 {
        prf: prf(name)?,
        iterations: iterations(count)?,
        salt: salt(salt_text.as_bytes().to_vec())?,
        digest: pbkdf2_digest(from_hex(digest_text)?)?,
    })
}

/// The scrypt parameters, checked against the caps: N = 2^log_n, r and p.
fn scrypt_params(log_n: u8, r: u32, p: u32, len: usize) -> Result<(), Unsupported> {
    if !(1..=16).contains(&p) || r == 0 || !(1..=63).contains(&log_n) {
        return Err(unsupported("scrypt: the parameters are out of range (p 1 to 16)"));
    }
    let memory = 128u64.saturating_mul(u64::from(r)).saturating_mul(1u64 << log_n);
    if memory > MAX_MEMORY_BYTES {
        return Err(unsupported(format!(
            "scrypt: N={} r={r} asks for more memory than the {} MiB allowed",
            1u64 << log_n,
            MAX_MEMORY_BYTES >> 20
        )));
    }
    if !(16..=64).contains(&len) {
        return Err(unsupported("scrypt: the hash is not 16 to 64 bytes"));
    }
    scrypt::Params::new(log_n, r, p, len)
        .map(|_| ())
        .map_err(|_| unsupported("scrypt: the parameters are out of range"))
}

/// The PHC form `$scrypt$ln=…,r=…,p=…$SALT$HASH` (RustCrypto's and passlib's).
fn scrypt_phc(text: &str) -> Result<Scheme, Unsupported> {
    let hash = PasswordHash::new(text).map_err(|e| unsupported(format!("scrypt: {e}")))?;
    let (mut log_n, mut r, mut p) = (None, None, None);
    for (name, value) in hash.params.iter() {
        let value = value.decimal().map_err(|e| unsupported(format!("scrypt: {e}")))?;
        match name.as_str() {
            "ln" => log_n = u8::try_from(value).ok(),
            "r" => r = Some(value),
            "p" => p = Some(value),
            _ => return Err(unsupported(format!("scrypt: unknown parameter `{name}`"))),
        }
    }
    let (Some(log_n), Some(r), Some(p), Some(salt_value), Some(output)) =
        (log_n, r, p, hash.salt, hash.hash)
    else {
        return Err(unsupported("scrypt: ln=, r=, p=, the salt or the hash is missing"));
    };
    scrypt_params(log_n, r, p, output.len())?;
    let mut buffer = [0; 64];
    let salt_bytes = salt_value
        .decode_b64(&mut buffer)
        .map_err(|_| unsupported("scrypt: the salt is not base64"))?;
    Ok(Scheme::Scrypt {
        log_n,
        r,
        p,
        salt: salt(salt_bytes.to_vec())?,
        digest: output.as_bytes().to_vec(),
    })
}

/// Werkzeug's `scrypt:N:R:P$SALT$HEX`: the salt is used as its text.
fn werkzeug_scrypt(rest: &str) -> Result<Scheme, Unsupported> {
    let fields: Vec<&str> = rest.split('$').collect();
    let [method, salt_text, digest_text] = fields[..] else {
        return Err(unsupported("Werkzeug scrypt: expected scrypt:N:R:P$SALT$HEX"));
    };
    let numbers: Vec<u64> = method.split(':').map_while(|n| n.parse().ok()).collect();
    let [n, r, p] = numbers[..] else {
        return Err(unsupported("Werkzeug scrypt: expected scrypt:N:R:P with three numbers"));
    };
    if !n.is_power_of_two() || n < 2 {
        return Err(unsupported("Werkzeug scrypt: N is not a power of two"));
    }
    let log_n = n.trailing_zeros() as u8;
    let (r, p) = (
        u32::try_from(r).map_err(|_| unsupported("Werkzeug scrypt: r is too large"))?,
        u32::try_from(p).map_err(|_| unsupported("Werkzeug scrypt: p is too large"))?,
    );
    let digest = from_hex(digest_text)?;
    scrypt_params(log_n, r, p, digest.len())?;
    Ok(Scheme::Scrypt { log_n, r, p, salt: salt(salt_text.as_bytes().to_vec())?, digest })
}

fn from_hex(text: &str) -> Result<Vec<u8>, Unsupported> {
    let bad = || unsupported("the hash is not hexadecimal");
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()).ok_or_else(bad)
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use password_hash::{PasswordHasher, SaltString};
    use serde::Deserialize;

    use super::*;

    /// A hash made by another system's own library (scripts/legacy-hash-vectors.py).
    #[derive(Deserialize)]
    struct Vector {
        family: String,
        made_by: String,
        password: String,
        hash: String,
    }

    fn vectors() -> Vec<Vector> {
        include_str!("../../api/tests/fixtures/legacy-hashes.jsonl")
            .lines()
            .map(|line| serde_json::from_str(line).expect("a vector"))
            .collect()
    }

    #[test]
    fn every_family_made_by_its_own_library_verifies_its_password_and_no_other() {
        let mut families = std::collections::BTreeSet::new();
        for v in vectors() {
            let (stored, family) = import_form(&v.hash)
                .unwrap_or_else(|e| panic!("{} by {}: {e}", v.family, v.made_by));
            families.insert(family);
            if stored.starts_with("$argon2") {
                // Verified by the argon2 path (passwords.rs), like the server's own hashes.
                assert!(!v.family.contains("bcrypt") && !v.family.contains("pbkdf2"));
                continue;
            }
            let legacy = LegacyHash::parse(&stored).expect("parses as stored");
            if stored == v.hash {
                assert_eq!(legacy.family(), family);
            }
            assert!(legacy.verify(v.password.as_bytes()), "{} by {}", v.family, v.made_by);
            let wrong = format!("{}!", v.password);
            assert!(
                !legacy.verify(wrong.as_bytes()),
                "{} by {}: wrong password",
                v.family,
                v.made_by
            );
            assert!(!legacy.verify(b""), "{}: empty password", v.family);
        }
        let expected = [
            "argon2i",
            "argon2id",
            "bcrypt",
            "django-argon2",
            "django-bcrypt",
            "django-bcrypt_sha256",
            "django-pbkdf2_sha256",
            "pbkdf2-sha256",
            "pbkdf2-sha512",
            "scrypt",
            "werkzeug-pbkdf2",
            "werkzeug-scrypt",
        ];
        assert_eq!(families.into_iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn django_prefixes_are_taken_off_and_the_rest_is_stored_as_given() {
        for v in vectors() {
            let (stored, _) = import_form(&v.hash).unwrap();
            match v.family.as_str() {
                "django-argon2" => assert_eq!(stored, v.hash["argon2".len()..]),
                "django-bcrypt" => assert_eq!(stored, v.hash["bcrypt$".len()..]),
                _ => assert_eq!(stored, v.hash),
            }
        }
    }

    #[test]
    fn the_phc_pbkdf2_form_of_rustcrypto_verifies() {
        let salt = SaltString::from_b64("c29tZSBzYWx0IGJ5dGVz").unwrap();
        for (alg, family) in
            [("pbkdf2-sha256", "pbkdf2-sha256"), ("pbkdf2-sha512", "pbkdf2-sha512")]
        {
            let params = pbkdf2::Params { rounds: 2_000, output_length: 32 };
            let hash = pbkdf2::Pbkdf2
                .hash_password_customized(
                    b"correct horse",
                    Some(password_hash::Ident::new(alg).unwrap()),
                    None,
                    params,
                    &salt,
                )
                .unwrap()
                .to_string();
            assert!(hash.starts_with(&format!("${alg}$i=2000,l=32$")), "{hash}");
            let (stored, got) = import_form(&hash).unwrap();
            assert_eq!(got, family);
            let legacy = LegacyHash::parse(&stored).unwrap();
            assert!(legacy.verify(b"correct horse"));
            assert!(!legacy.verify(b"correct horsE"));
        }
    }

    #[test]
    fn costs_past_the_caps_are_refused_with_the_reason() {
        let refused = |text: &str, reason: &str| {
            let e = import_form(text).expect_err(text);
            assert!(e.to_string().contains(reason), "{text}: {e}");
        };
        // Positive controls: the same forms within the caps.
        import_form("pbkdf2_sha256$10000000$salt$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg=")
            .unwrap();
        import_form("scrypt:262144:8:1$salt$00112233445566778899aabbccddeeff").unwrap();
        import_form("$2b$16$9QDUPpAk3.61ygHPnbnlaeo.BtX3tqfJuIZ0noKv0E8g6CbHkcxxi").unwrap();

        refused(
            "pbkdf2_sha256$10000001$salt$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg=",
            "10000001 iterations",
        );
        refused("scrypt:524288:8:1$salt$00112233445566778899aabbccddeeff", "more memory");
        refused(
            "$scrypt$ln=20,r=8,p=1$c2FsdA$BV7Vi0RV4nektfw4r5DAtnBa+sbJ+4XYFGd/Mutp5Bc",
            "more memory",
        );
        refused("$2b$17$9QDUPpAk3.61ygHPnbnlaeo.BtX3tqfJuIZ0noKv0E8g6CbHkcxxi", "cost 17");
        refused(
            "$argon2id$v=19$m=262145,t=1,p=1$c29tZXNhbHQ$BV7Vi0RV4nektfw4r5DAtnBa+sbJ+4XYFGd/Mutp5Bc",
            "more memory",
        );
    }

    #[test]
    fn malformed_and_unknown_forms_are_refused_without_echoing_the_hash() {
        let secret_part = "DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg";
        for text in [
            "",
            "plaintext password",
            "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99",
            "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
            "$2x$04$9QDUPpAk3.61ygHPnbnlaeo.BtX3tqfJuIZ0noKv0E8g6CbHkcxxi",
            "$2b$04$tooshort",
            "pbkdf2_sha256$1000$salt",
            "pbkdf2_sha256$0$salt$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg=",
            "pbkdf2_sha256$1000$$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg=",
            "pbkdf2_sha256$1000$salt$not base64!",
            "pbkdf2:sha256$salt$00112233445566778899aabbccddeeff",
            "pbkdf2:md5:1000$salt$00112233445566778899aabbccddeeff",
            "pbkdf2:sha256:1000$salt$+0112233445566778899aabbccddeeff",
            "scrypt:1000:8:1$salt$00112233445566778899aabbccddeeff",
            "$pbkdf2-sha1$1000$c2FsdA$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg",
            "$pbkdf2-sha256$i=1000,l=31$c2FsdA$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg",
            "$scrypt$ln=10,r=8$c2FsdA$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg",
            "$argon2$v=19$m=1024,t=1,p=1$c29tZXNhbHQ$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg",
            "bcrypt$pbkdf2_sha256$1000$salt$DMcDwdtsLSM4GZ6dHoZ1zDkeaPlhgvbjxPmy3sdoEEg=",
            &"a".repeat(1025),
        ] {
            let e = import_form(text).expect_err(text);
            assert!(!e.to_string().contains(secret_part), "{text}: {e}");
        }
    }

    #[test]
    fn debug_shows_the_family_only() {
        let v = &vectors()[0];
        let shown = format!("{:?}", LegacyHash::parse(&v.hash).unwrap());
        assert_eq!(shown, "LegacyHash { family: \"bcrypt\", .. }");
    }
}
