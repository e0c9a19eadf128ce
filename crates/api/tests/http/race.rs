//! Rotation races with `REFRESH_REUSE_GRACE=0`: of N concurrent refreshes of one token exactly
//! one gets a pair, and every other is a reuse that revokes the session, whatever order the
//! requests read the clock in. The server's clock ticks forward during the race, so requests
//! that read it earlier can lose the race to ones that read it later.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use reqwest::StatusCode;

use crate::common::{TestApp, TestDb};

crate::http_tests!(zero_grace_races_give_exactly_one_pair_and_revoke_the_session);

const ROUNDS: usize = 8;
const RACERS: usize = 20;

async fn zero_grace_races_give_exactly_one_pair_and_revoke_the_session(db: TestDb) {
    let app = TestApp::start_with(db, |c| c.refresh_reuse_grace = TimeDelta::zero()).await;
    app.register("alice@example.com").await;
    let ticking = Arc::new(AtomicBool::new(true));
    let ticker = {
        let (clock, ticking) = (app.clock.clone(), ticking.clone());
        tokio::spawn(async move {
            while ticking.load(Ordering::Relaxed) {
                clock.advance(TimeDelta::microseconds(250));
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
        })
    };
    for round in 0..ROUNDS {
        let pair = app.login("alice@example.com").await;
        let replies =
            futures_util::future::join_all((0..RACERS).map(|_| app.refresh(&pair.refresh))).await;
        let winners: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::OK).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {:?}",
            replies.iter().map(|r| (r.status, r.body["error"].clone())).collect::<Vec<_>>()
        );
        for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
            let code = reply.body["error"].as_str().unwrap_or_default();
            assert!(
                ["refresh_token_reused", "token_revoked"].contains(&code),
                "round {round}: {}",
                reply.text
            );
            reply.assert_token_refused(code);
        }
        // The reuse revoked the whole session: the winner's pair is dead too.
        let winner = crate::common::Pair::from_reply(winners[0]);
        app.me(&winner.access).await.assert_token_refused("token_revoked");
        let after = app.refresh(&winner.refresh).await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.text);
    }
    ticking.store(false, Ordering::Relaxed);
    ticker.await.expect("the ticker stops");
}
