//! The clients over HTTP (role `admin`), for the console and for scripts: list, add, remove,
//! what `jwt-auth clients` does. A client is shown as `clients list --json` shows it
//! ([`ClientView`]); a new confidential client's secret is in the answer that made it, and
//! never again. Every answer carries `Cache-Control: no-store`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::clients::{AddedClient, ClientView};
use crate::error::ApiError;
use crate::extract::{Admin, Json, RequireRole};
use crate::responses::{BearerRefused, ErrorBody, InsufficientRole, JsonBodyRefusals, Unavailable};
use crate::routes::bodies::role_list;
use crate::routes::no_store;
use crate::state::AppState;
use jwt_auth_service::clients::{self, SignIn};

/// Every client, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientList {
    clients: Vec<ClientView>,
}

#[utoipa::path(get, path = "/api/admin/clients", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = ClientList, description = "every client, oldest first, without the digests of their secrets"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
) -> Result<HttpResponse, ApiError> {
    let clients = clients::list(&state.store).await?;
    let clients = clients.iter().map(ClientView::from).collect();
    Ok(no_store(HttpResponse::Ok()).json(ClientList { clients }))
}

/// A client to register, as `jwt-auth clients add` takes it; an absent or `null` field has
/// its default. Without redirect URIs it is a service client (client credentials grant).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "web app",
    "redirect_uris": ["https://app.example.com/callback"],
    "post_logout_redirect_uris": ["https://app.example.com/"],
    "first_party": true,
    "require_dpop": true
}))]
pub struct NewClientBody {
    /// A name for people, unique: 1 to 100 bytes, without control characters.
    #[schema(min_length = 1)]
    pub name: String,
    /// The roles of its tokens (client credentials grant); `service` when none is given.
    #[schema(schema_with = role_list)]
    pub roles: Option<Vec<String>>,
    /// Where the authorization code grant may send users back (at most 32): an `https` URI,
    /// a loopback `http` URI on an IP literal (`http://127.0.0.1/callback`; any port
    /// matches), or a private-use scheme named by a reverse domain
    /// (`com.example.app:/callback`); no fragment, wildcard or user information, in canonical
    /// form. Matched byte for byte.
    pub redirect_uris: Option<Vec<String>>,
    /// Where `GET /auth/end-session` may send users after signing out (at most 32); needs
    /// redirect URIs.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// No secret: a single-page, mobile or desktop app, identified by its `client_id` alone;
    /// needs redirect URIs. `false` by default.
    pub public: Option<bool>,
    /// Its users are never asked to consent (an app of the same operator); needs redirect
    /// URIs. `false` by default.
    pub first_party: Option<bool>,
    /// Its token requests must carry a DPoP proof (RFC 9449): its tokens are always bound to
    /// a key. For a service client and an app alike. `false` by default.
    pub require_dpop: Option<bool>,
}

#[utoipa::path(post, path = "/api/admin/clients", tag = "admin", security(("bearer" = [])),
    request_body = NewClientBody,
    responses(
        (status = 201, body = AddedClient, description = "the client, with its secret (`null` for a public client), shown this once: only its digest is kept"),
        (status = 409, body = ErrorBody, description = "`conflict`: another client has this name"),
        JsonBodyRefusals, BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn add(
    state: web::Data<AppState>,
    admin: RequireRole<Admin>,
    Json(body): Json<NewClientBody>,
) -> Result<HttpResponse, ApiError> {
    let sign_in = SignIn {
        redirect_uris: body.redirect_uris.unwrap_or_default(),
        post_logout_redirect_uris: body.post_logout_redirect_uris.unwrap_or_default(),
        public: body.public.unwrap_or(false),
        first_party: body.first_party.unwrap_or(false),
        require_dpop: body.require_dpop.unwrap_or(false),
    };
    let roles = body.roles.unwrap_or_default();
    let new = clients::new_app_client(&body.name, &roles, &sign_in, state.now())?;
    clients::add(&state.store, &new).await?;
    state.clients_changed().await;
    tracing::info!(client_id = %new.client.id, name = %new.client.name,
        by = %admin.caller.claims.sub, "client added");
    Ok(no_store(HttpResponse::Created()).json(AddedClient::from(&new)))
}

#[utoipa::path(delete, path = "/api/admin/clients/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "the client's id (`client_id`), as `GET /api/admin/clients` lists it")),
    responses(
        (status = 204, description = "the client is removed: its tokens, and those of the sessions users granted it, are refused here at once and everywhere within a second; what users consented to it is forgotten"),
        (status = 404, body = ErrorBody, description = "`not_found`: no client has this id"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn remove(
    state: web::Data<AppState>,
    admin: RequireRole<Admin>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let instance = state.instance();
    let removed = clients::remove_here(&instance, &id, state.config.token_expiry, state.now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no client has the id `{id}`")))?;
    state.clients_changed().await;
    tracing::info!(client_id = %removed.id, name = %removed.name,
        by = %admin.caller.claims.sub, "client removed");
    Ok(no_store(HttpResponse::NoContent()).finish())
}
