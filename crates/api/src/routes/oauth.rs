//! The OAuth endpoints: the token endpoint (RFC 6749: password, refresh-token and client
//! credentials grants),
//! revocation (RFC 7009) and introspection (RFC 7662). Their failures are [`OAuthError`]s,
//! answered in RFC 6749 §5.2 bodies.

use actix_web::{HttpRequest, HttpResponse, web};
use jwt_auth_store::EventKind;
use jwt_core::RevokeReason;
use serde::Serialize;

use crate::audit::Audit;
use crate::clients;
use crate::error::ApiError;
use crate::extract::{Admin, ClientContext, RequireRole, TokenProof};
use crate::oauth_error::{OAuthError, token_no_store};
use crate::responses::{
    BearerRefused, FormBodyRefusals, InsufficientRole, InvalidClient, OAuthErrorBody, RateLimited,
    TokenIssued, Unavailable,
};
use crate::routes::bodies::{TokenForm, TokenParam, TokenRequest};
use crate::routes::token_answer::token_response;
use crate::state::AppState;
use jwt_auth_service::{code_grant, openid};

/// `POST /auth/token`: the password, refresh-token and client credentials grants of RFC 6749.
#[utoipa::path(post, path = "/auth/token", tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        TokenIssued,
        (status = 400, body = OAuthErrorBody, description = "RFC 6749 §5.2: `invalid_request` (a malformed form, a missing parameter, a password over 1024 bytes), `invalid_grant` (wrong credentials, a refused refresh token), `unsupported_grant_type`, or `invalid_dpop_proof` (a refused DPoP proof, or none from a client that must send one) and `use_dpop_nonce` (with a `DPoP-Nonce` header)",
            headers(("Cache-Control" = String, description = "`no-store`"))),
        InvalidClient, FormBodyRefusals, RateLimited, Unavailable,
    ))]
pub async fn token(
    state: web::Data<AppState>,
    mut client: ClientContext,
    proof: Result<TokenProof, ApiError>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, OAuthError> {
    client.info.proven_key = proof?.0;
    let grants = state.grants(&client);
    grants.count_attempt()?;
    let form = form.into_inner();
    let pair = match form.grant_type.as_deref() {
        Some("client_credentials") => return client_credentials(&state, &client, &req).await,
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some("password") => {
            let (Some(username), Some(password)) = (form.username, form.password) else {
                return Err(OAuthError::invalid_request("username and password are required"));
            };
            grants.password(&username, password).await?
        }
        Some("refresh_token") => {
            let app = app_client(&state, &client, &req, &form).await?;
            require_proof(app.as_ref(), &client)?;
            let Some(token) = form.refresh_token else {
                return Err(OAuthError::invalid_request("refresh_token is required"));
            };
            grants.refresh_by(&token, app.as_ref().map(|c| c.id.as_str())).await?
        }
        Some("authorization_code") => {
            let Some(app) = app_client(&state, &client, &req, &form).await? else {
                return Err(OAuthError::InvalidClient(
                    "client authentication is required: HTTP Basic, client_secret_post, or \
                     client_id for a public client"
                        .into(),
                ));
            };
            require_proof(Some(&app), &client)?;
            let exchange = code_grant::Exchange {
                code: form.code,
                redirect_uri: form.redirect_uri,
                code_verifier: form.code_verifier,
            };
            let instance = state.instance();
            let exchanged =
                code_grant::exchange(&instance, &app, exchange, &client.info, state.now()).await?;
            let user = state.users.get(&state.store, &exchanged.subject.id).await?;
            let id_token = openid::id_token(state.tokens(), &exchanged, user.as_ref())?;
            let mut response = HttpResponse::Ok();
            token_no_store(&mut response);
            return Ok(response.json(CodeTokens {
                pair: &exchanged.pair,
                scope: &exchanged.scope,
                id_token: id_token.as_ref().map(|t| t.expose()),
            }));
        }
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    };
    Ok(token_response(&state, &pair, false))
}

/// A client registered with `--require-dpop` gets tokens only with a DPoP proof: without one,
/// 400 `invalid_dpop_proof` (contract v3), before anything is used up.
fn require_proof(
    app: Option<&jwt_auth_store::ServiceClient>,
    client: &ClientContext,
) -> Result<(), OAuthError> {
    match app {
        Some(app) if app.require_dpop && client.info.proven_key.is_none() => {
            Err(OAuthError::DpopProof {
                error: jwt_core::Error::InvalidDpopProof(jwt_core::DpopRefusal::Missing),
                nonce: None,
            })
        }
        _ => Ok(()),
    }
}

/// The answer of the code grant: the pair, with the scopes granted (RFC 6749 §5.1).
#[derive(Serialize)]
struct CodeTokens<'a> {
    #[serde(flatten)]
    pair: &'a jwt_core::TokenPair,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
}

/// The client application calling the token endpoint, if it authenticated (RFC 6749 §2.3):
/// HTTP Basic, or `client_id` with `client_secret` in the form (`client_secret_post`), or
/// `client_id` alone for a public client. One method only: both is `invalid_request`.
async fn app_client(
    state: &AppState,
    client: &ClientContext,
    req: &HttpRequest,
    form: &TokenForm,
) -> Result<Option<jwt_auth_store::ServiceClient>, OAuthError> {
    let basic = clients::basic_credentials(req)?;
    let (id, secret) = match (basic, &form.client_id) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "the client authenticates one way only: HTTP Basic or the form, not both",
            ));
        }
        (Some((id, secret)), None) => (id, Some(secret)),
        (None, Some(id)) => (id.clone(), form.client_secret.clone()),
        (None, None) if form.client_secret.is_some() => {
            return Err(OAuthError::invalid_request("client_secret needs client_id"));
        }
        (None, None) => return Ok(None),
    };
    let app = clients::authenticate_app(
        &state.instance(),
        &state.throttle,
        client.ip,
        &id,
        secret.as_ref(),
    )
    .await?;
    Ok(Some(app))
}

/// The client credentials grant (RFC 6749 §4.4): HTTP Basic, then an access token alone.
async fn client_credentials(
    state: &AppState,
    client: &ClientContext,
    req: &HttpRequest,
) -> Result<HttpResponse, OAuthError> {
    let Some((id, secret)) = clients::basic_credentials(req)? else {
        return Err(OAuthError::InvalidClient(
            "client authentication is required (HTTP Basic)".into(),
        ));
    };
    let service =
        clients::authenticate(&state.instance(), &state.throttle, client.ip, &id, &secret).await?;
    require_proof(Some(&service), client)?;
    let proven_key = client.info.proven_key.as_ref();
    let issued = clients::issue(&state.sessions, &service, proven_key)?;
    let mut response = HttpResponse::Ok();
    token_no_store(&mut response);
    Ok(response.json(ClientToken {
        access_token: issued.token.expose(),
        token_type: if proven_key.is_some() { "DPoP" } else { "Bearer" },
        expires_in: (issued.expires_at - issued.issued_at).num_seconds(),
    }))
}

/// The answer of the client credentials grant: an access token, no refresh token
/// (`ClientTokenBody` in the document).
#[derive(Serialize)]
struct ClientToken<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
}

/// `POST /auth/revoke` (RFC 7009): ends the session of a valid access or refresh token; 200
/// whatever the token.
#[utoipa::path(post, path = "/auth/revoke", tag = "oauth",
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "revoked, or the token was unknown or invalid",
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request`: a malformed form, or no `token`",
            headers(("Cache-Control" = String, description = "`no-store`"))),
        FormBodyRefusals, Unavailable,
    ))]
pub async fn revoke(
    state: web::Data<AppState>,
    client: ClientContext,
    form: web::Form<TokenParam>,
) -> Result<HttpResponse, OAuthError> {
    let Some(token) = form.into_inner().token else {
        return Err(OAuthError::invalid_request("token is required"));
    };
    let tokens = state.tokens();
    let owner = match tokens.verify_refresh(token.expose()) {
        Ok(claims) => Some((claims.sub, claims.sid)),
        Err(_) => tokens
            .verify_access_ignoring_revocations(token.expose())
            .ok()
            .map(|claims| (claims.sub, claims.sid)),
    };
    if let Some((user_id, session_id)) = owner {
        state
            .sessions
            .end(&session_id, RevokeReason::TokenRevocation)
            .await
            .map_err(ApiError::from)?;
        let audit =
            Audit::new(EventKind::TokenRevoked, &client.info).user(&user_id).session(&session_id);
        state.audit(audit).await;
    }
    let mut response = HttpResponse::Ok();
    token_no_store(&mut response);
    Ok(response.finish())
}

/// RFC 7662 §2.2: `{active: false}` alone for a token that is not active.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
    /// The DPoP key the token is bound to (RFC 9449 §6.2), for a bound token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}))]
    cnf: Option<jwt_core::Confirmation>,
}

impl Introspection {
    /// The answer for a valid token, without `roles`.
    fn active(
        token_type: &'static str,
        sub: String,
        sid: String,
        jti: String,
        exp: i64,
        iat: i64,
    ) -> Self {
        Self {
            active: true,
            sub: Some(sub),
            exp: Some(exp),
            iat: Some(iat),
            sid: Some(sid),
            jti: Some(jti),
            token_type: Some(token_type),
            roles: None,
            cnf: None,
        }
    }
}

/// `POST /auth/introspect` (RFC 7662), for administrators.
#[utoipa::path(post, path = "/auth/introspect", tag = "oauth", security(("bearer" = [])),
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = Introspection, description = "what the token is, if it is active",
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request`: a malformed form, or no `token`",
            headers(("Cache-Control" = String, description = "`no-store`"))),
        FormBodyRefusals, BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn introspect(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    form: web::Form<TokenParam>,
) -> Result<HttpResponse, OAuthError> {
    let Some(token) = form.into_inner().token else {
        return Err(OAuthError::invalid_request("token is required"));
    };
    let answer = match state.sessions.authenticate(token.expose()) {
        Ok(c) => Introspection {
            roles: Some(c.roles),
            cnf: c.cnf,
            ..Introspection::active("access_token", c.sub, c.sid, c.jti, c.exp, c.iat)
        },
        Err(_) => {
            match state.sessions.introspect_refresh(token.expose()).await.map_err(ApiError::from)? {
                Some(c) => Introspection {
                    cnf: c.cnf,
                    ..Introspection::active("refresh_token", c.sub, c.sid, c.jti, c.exp, c.iat)
                },
                None => Introspection::default(),
            }
        }
    };
    let mut response = HttpResponse::Ok();
    token_no_store(&mut response);
    Ok(response.json(answer))
}
