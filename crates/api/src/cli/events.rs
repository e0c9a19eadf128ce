//! `events`: the security-event trail, newest first, as columns or JSON lines.

use jwt_auth_service::audit;
use jwt_auth_service::page::Page;
use jwt_auth_store::RecordedEvent;

use crate::config::StorageArgs;
use crate::database::open_store;
use crate::failure::CliError;

/// The most events one `events` prints.
const MAX_EVENTS: u32 = 10_000;

pub(super) async fn events(
    storage: &StorageArgs,
    user: Option<String>,
    kind: Option<&str>,
    limit: u32,
    json: bool,
) -> Result<(), CliError> {
    let kind = kind.map(audit::recorded_kind).transpose()?;
    let page = Page::new(limit, MAX_EVENTS, 0)?;
    let store = open_store(storage).await?;
    for recorded in audit::events(&store, user, kind, page).await? {
        println!("{}", line(&recorded, json));
    }
    Ok(())
}

/// One event as a line: a JSON object, or columns.
fn line(recorded: &RecordedEvent, json: bool) -> String {
    let e = &recorded.event;
    let at = e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if json {
        return serde_json::json!({
            "id": recorded.id,
            "at": at,
            "kind": e.kind.as_str(),
            "user_id": e.user_id,
            "session_id": e.session_id,
            "ip": e.client.ip,
            "user_agent": e.client.user_agent,
            "detail": e.detail,
        })
        .to_string();
    }
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    format!(
        "{at}  {}  user={}  session={}  ip={}  ua={:?}{}",
        e.kind.as_str(),
        dash(&e.user_id),
        dash(&e.session_id),
        dash(&e.client.ip),
        e.client.user_agent.as_deref().unwrap_or("-"),
        e.detail.as_ref().map(|d| format!("  {d}")).unwrap_or_default()
    )
}
