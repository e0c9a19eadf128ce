//! What the commands act with beyond their own flags: the time (the system's, read through its
//! clock) and the token lifetimes an operator gives on the command line.

use chrono::{DateTime, TimeDelta, Utc};
use jwt_core::{Clock, SystemClock};

use crate::failure::CliError;

/// The time a command acts at: the system's, read through its clock.
pub(super) fn now() -> DateTime<Utc> {
    SystemClock.now()
}

/// The token lifetimes given on the command line (`TOKEN_EXPIRY`, `REFRESH_TOKEN_EXPIRY`).
pub(super) fn given_lifetimes(
    access: Option<String>,
    refresh: Option<String>,
) -> Result<(Option<TimeDelta>, Option<TimeDelta>), CliError> {
    let parse = |setting, value: Option<String>| {
        value.map(|v| crate::config::parse_duration(setting, &v)).transpose()
    };
    Ok((parse("TOKEN_EXPIRY", access)?, parse("REFRESH_TOKEN_EXPIRY", refresh)?))
}
