//! Token claims: the registered claims of RFC 7519, the `sid`/`roles`/`email` claims of
//! access tokens (RFC 9068 profile), and room for a downstream user's own claims.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::values::Confirmation;

/// The claims of an access token (`typ: at+jwt`).
///
/// `X` holds a downstream user's own claims, flattened beside ours; it defaults to
/// [`NoExtra`]. A claim of `X` may not reuse a registered name.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use jwt_core::AccessClaims;
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
/// struct Tenant { tenant: String }
///
/// fn tenant_of(claims: &AccessClaims<Tenant>) -> &str { &claims.extra.tenant }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessClaims<X = NoExtra> {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience.
    pub aud: Audience,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// The session this token belongs to.
    pub sid: String,
    /// The subject's roles when the token was issued.
    pub roles: Vec<String>,
    /// The subject's email, when the issuer is configured to include it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The client the session was granted to (RFC 9068 §2.2), for tokens of the
    /// authorization code grant (see [`Grant`](crate::Grant)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The scopes granted, space-separated (RFC 9068 §2.2.3), for tokens of the authorization
    /// code grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The key the token is bound to (RFC 7800 `cnf`), for a token issued with a DPoP proof
    /// (RFC 9449 §6): presented only with a proof of that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The downstream user's own claims.
    #[serde(flatten)]
    pub extra: X,
}

impl<X> AccessClaims<X> {
    /// Whether the token grants `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the token was granted `scope` (its `scope` claim names it).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.as_deref().is_some_and(|s| s.split(' ').any(|x| x == scope))
    }
}

/// The claims of a refresh token (`typ: refresh+jwt`). It carries no audience and no roles:
/// it is good for one thing, a refresh at its issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Unique token id; the store knows the token by it.
    pub jti: String,
    /// The session this token belongs to.
    pub sid: String,
    /// The key the token is bound to, for a token issued with a DPoP proof (RFC 9449 §5): it
    /// is refreshed only with a proof of that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// No extra claims: the default for [`AccessClaims`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoExtra {}

/// The `aud` claim: one audience (serialized as a string) or several (an array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `audience`.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

/// The wire form, with every registered claim optional so that a missing one is reported by
/// name ([`Error::MissingClaim`]) rather than as a generic parse error.
#[derive(Deserialize)]
#[serde(bound = "X: DeserializeOwned")]
struct AccessWire<X> {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
    sid: Option<String>,
    roles: Option<Vec<String>>,
    email: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    cnf: Option<Confirmation>,
    #[serde(flatten)]
    extra: X,
}

#[derive(Deserialize)]
struct RefreshWire {
    iss: Option<String>,
    sub: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
    sid: Option<String>,
    cnf: Option<Confirmation>,
}

fn required<T>(value: Option<T>, name: &'static str) -> Result<T> {
    value.ok_or(Error::MissingClaim(name))
}

pub(crate) fn parse<T: DeserializeOwned>(json: &[u8]) -> Result<T> {
    let json = require_object(json).map_err(|_| Error::InvalidClaims)?;
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = T::deserialize(&mut de).map_err(|_| Error::InvalidClaims)?;
    de.end().map_err(|_| Error::InvalidClaims)?;
    Ok(value)
}

impl<X: DeserializeOwned> AccessClaims<X> {
    pub(crate) fn from_json(json: &[u8]) -> Result<Self> {
        let w: AccessWire<X> = parse(json)?;
        Ok(Self {
            iss: required(w.iss, "iss")?,
            sub: required(w.sub, "sub")?,
            aud: required(w.aud, "aud")?,
            exp: required(w.exp, "exp")?,
            nbf: required(w.nbf, "nbf")?,
            iat: required(w.iat, "iat")?,
            jti: required(w.jti, "jti")?,
            sid: required(w.sid, "sid")?,
            roles: required(w.roles, "roles")?,
            email: w.email,
            client_id: w.client_id,
            scope: w.scope,
            cnf: w.cnf,
            extra: w.extra,
        })
    }
}

impl RefreshClaims {
    pub(crate) fn from_json(json: &[u8]) -> Result<Self> {
        let w: RefreshWire = parse(json)?;
        Ok(Self {
            iss: required(w.iss, "iss")?,
            sub: required(w.sub, "sub")?,
            exp: required(w.exp, "exp")?,
            iat: required(w.iat, "iat")?,
            jti: required(w.jti, "jti")?,
            sid: required(w.sid, "sid")?,
            cnf: w.cnf,
        })
    }
}

/// RFC 7515 and 7519 want JSON objects; serde would also read a struct from an array. And
/// JSON text is UTF-8 (RFC 8259 §8.1), which serde_json does not check in the members it
/// skips.
pub(crate) fn require_object(json: &[u8]) -> Result<&[u8]> {
    if std::str::from_utf8(json).is_err() {
        return Err(Error::Malformed("the JSON is not UTF-8"));
    }
    match json.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(json),
        _ => Err(Error::Malformed("expected a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_claims_are_named() {
        let json = br#"{"iss":"i","sub":"s","aud":"a","exp":2,"nbf":1,"iat":1,"jti":"j"}"#;
        assert!(matches!(
            AccessClaims::<NoExtra>::from_json(json),
            Err(Error::MissingClaim("sid"))
        ));
        let json = br#"{"iss":"i","sub":"s","exp":2,"jti":"j","sid":"x"}"#;
        assert!(matches!(RefreshClaims::from_json(json), Err(Error::MissingClaim("iat"))));
    }

    #[test]
    fn wrong_types_and_trailing_bytes_are_invalid() {
        let json =
            br#"{"iss":"i","sub":"s","aud":"a","exp":"soon","nbf":1,"iat":1,"jti":"j","sid":"x"}"#;
        assert!(matches!(AccessClaims::<NoExtra>::from_json(json), Err(Error::InvalidClaims)));
        let json = br#"{"iss":"i","sub":"s","exp":2,"iat":1,"jti":"j","sid":"x"} x"#;
        assert!(matches!(RefreshClaims::from_json(json), Err(Error::InvalidClaims)));
    }

    #[test]
    fn audience_accepts_string_or_array() {
        let one: Audience = serde_json::from_str(r#""api""#).unwrap();
        let many: Audience = serde_json::from_str(r#"["web","api"]"#).unwrap();
        assert!(one.contains("api") && many.contains("api") && !many.contains("admin"));
        assert_eq!(serde_json::to_string(&one).unwrap(), r#""api""#);
    }

    #[test]
    fn extra_claims_flatten_beside_ours() {
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        struct Tenant {
            tenant: String,
        }
        let claims = AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: Audience::One("a".into()),
            exp: 2,
            nbf: 1,
            iat: 1,
            jti: "j".into(),
            sid: "x".into(),
            roles: vec!["admin".into()],
            email: None,
            client_id: None,
            scope: None,
            cnf: None,
            extra: Tenant { tenant: "acme".into() },
        };
        let json = serde_json::to_vec(&claims).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["tenant"], "acme");
        assert!(value.get("email").is_none());
        assert!(value.get("cnf").is_none(), "an unbound token has no `cnf`");
        assert_eq!(AccessClaims::<Tenant>::from_json(&json).unwrap(), claims);

        let bound = AccessClaims { cnf: Some(Confirmation { jkt: "k".into() }), ..claims };
        let json = serde_json::to_vec(&bound).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["cnf"], serde_json::json!({"jkt": "k"}));
        assert_eq!(AccessClaims::<Tenant>::from_json(&json).unwrap(), bound);
    }
}
