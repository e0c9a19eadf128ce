//! OpenID Connect on top of the code grant: the ID token of an exchange, the UserInfo answer,
//! and what the discovery documents say the server supports.

use jwt_auth_store::User;
use jwt_core::{IdToken, IdTokenClaims, PASSWORD_METHOD, TokenService};

use crate::code_grant::Exchanged;
use crate::error::ServiceError;

/// The scopes offered (with `openid` only when OpenID Connect is on).
pub const SCOPES_SUPPORTED: [&str; 3] = ["openid", "email", "offline_access"];

/// The claims an ID token or the UserInfo answer may carry.
pub const CLAIMS_SUPPORTED: [&str; 14] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "amr",
    "sid",
    "email",
    "email_verified",
    "roles",
    "client_id",
    "scope",
];

/// The ID token of `exchanged` (for a code whose scopes include `openid`), signed by `tokens`
/// (for the issuer of its policy); `None` without `openid`. The user's email and
/// `email_verified` come with scope `email`; the server does not verify addresses, so
/// `email_verified` is `false`. `amr` is `["pwd"]`: the user typed the password.
pub fn id_token(
    tokens: &TokenService,
    exchanged: &Exchanged,
    user: Option<&User>,
) -> Result<Option<IdToken>, ServiceError> {
    let code = &exchanged.code;
    let has = |scope: &str| code.scope.split(' ').any(|s| s == scope);
    if !has("openid") {
        return Ok(None);
    }
    let now = tokens.clock().now();
    let email = if has("email") { user.map(|u| u.email.clone()) } else { None };
    let claims = IdTokenClaims {
        iss: tokens.policy().issuer.clone(),
        sub: exchanged.subject.id.clone(),
        aud: code.client_id.clone(),
        exp: tokens.id_token_expiry().timestamp(),
        iat: now.timestamp(),
        auth_time: code.auth_time.timestamp(),
        nonce: code.nonce.clone(),
        amr: vec![PASSWORD_METHOD.to_owned()],
        sid: code.sign_in_session.clone().unwrap_or_else(|| exchanged.pair.session_id.clone()),
        email_verified: email.as_ref().map(|_| false),
        email,
    };
    Ok(Some(tokens.issue_id_token(&claims)?))
}

/// The UserInfo answer (OpenID Connect Core §5.3) for `user`, to a token granted `scope`:
/// `sub` and `roles`, and `email` with `email_verified` for scope `email`.
pub fn user_info(user: &User, scope: &str) -> serde_json::Value {
    let mut info = serde_json::json!({ "sub": user.id, "roles": user.roles });
    if scope.split(' ').any(|s| s == "email") {
        info["email"] = user.email.clone().into();
        info["email_verified"] = false.into();
    }
    info
}
