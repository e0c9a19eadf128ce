//! The tables, described once for both backends: TEXT ids, `Timestamp` columns holding UTC
//! (chrono `NaiveDateTime`, which diesel maps on SQLite and PostgreSQL alike). The SQL that
//! creates them is in the top-level `migrations/` folder, one copy per backend.

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        email_key -> Text,
        password_hash -> Text,
        roles -> Text,
        disabled -> Bool,
        tokens_valid_after -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        revoke_reason -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        client_id -> Nullable<Text>,
        scope -> Nullable<Text>,
        audience -> Nullable<Text>,
        sign_in_session -> Nullable<Text>,
        sign_in -> Bool,
    }
}

diesel::table! {
    refresh_tokens (jti) {
        jti -> Text,
        session_id -> Text,
        parent_jti -> Nullable<Text>,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        rotated_at -> Nullable<Timestamp>,
        replaced_by -> Nullable<Text>,
        rotated_ip -> Nullable<Text>,
        rotated_user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    revocations (id) {
        id -> BigInt,
        recorded_at -> Timestamp,
        kind -> Text,
        session_id -> Nullable<Text>,
        user_id -> Nullable<Text>,
        cut_off -> Nullable<Timestamp>,
        session_expires_at -> Nullable<Timestamp>,
        key_id -> Nullable<Text>,
    }
}

diesel::table! {
    security_events (id) {
        id -> BigInt,
        at -> Timestamp,
        kind -> Text,
        user_id -> Nullable<Text>,
        session_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        created_at -> Timestamp,
        activates_at -> Timestamp,
        retired_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        public_jwk -> Nullable<Text>,
        sealed_private_key -> Binary,
        purpose -> Text,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));

diesel::table! {
    authorization_codes (code_digest) {
        code_digest -> Binary,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        resource -> Nullable<Text>,
        auth_time -> Timestamp,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        session_id -> Nullable<Text>,
        replayed_at -> Nullable<Timestamp>,
        sign_in_session -> Nullable<Text>,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> Timestamp,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_digest -> Binary,
        roles -> Text,
        session_id -> Text,
        created_at -> Timestamp,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        public -> Bool,
        first_party -> Bool,
        require_dpop -> Bool,
    }
}

diesel::table! {
    token_lifetimes (access_seconds, refresh_seconds) {
        access_seconds -> BigInt,
        refresh_seconds -> BigInt,
        seen_at -> Timestamp,
    }
}

diesel::table! {
    feed_relay (id) {
        id -> SmallInt,
        published -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    authorization_codes,
    consents,
    clients,
    users,
    sessions,
    refresh_tokens,
    revocations,
    security_events,
    signing_keys,
    token_lifetimes
);
