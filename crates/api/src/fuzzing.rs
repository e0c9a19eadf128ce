//! The server's parsers of outside input that only HTTP has (the JSON body rules, the forms,
//! queries and headers its extractors read, the settings read from the environment), made
//! public for the fuzz targets alone by the `fuzzing` feature. Every other module of this
//! crate is private; the rules behind these parsers (passwords, emails, feed cursors) are the
//! service crate's and `jwt-core`'s, and are fuzzed there.

pub use crate::clients::basic_credentials;
pub use crate::config_values::{parse_algorithm, parse_cidrs, parse_duration};
pub use crate::error::ApiError;
pub use crate::extract::{MAX_BODY_BYTES, PresentedRefreshToken, REFRESH_COOKIE, parse_json};
pub use crate::routes::bodies::{CookieQuery, LoginBody, RegisterBody, TokenForm, TokenParam};
pub use crate::routes::revocations::FeedQuery;
pub use crate::routes::users::{Page, PatchUser};
