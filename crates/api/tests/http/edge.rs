//! Abusive clients at the network edge: connections that trickle their headers (slowloris)
//! are answered 408 and closed once the header timeout passes, while everyone else is served
//! as usual meanwhile.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use jwt_auth_api::startup::CLIENT_REQUEST_TIMEOUT;

use crate::common::{TestApp, TestDb};

crate::http_tests!(slowloris_connections_are_cut_and_others_are_served);

/// How many slow connections: well past what one worker would serve at once if it waited.
const SLOW: usize = 200;

async fn slowloris_connections_are_cut_and_others_are_served(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    let addr = app.addr;

    // Each slow client sends a request line, then one header line every half second.
    let opened = Instant::now();
    let slow = std::thread::spawn(move || {
        let mut streams: Vec<TcpStream> = (0..SLOW)
            .map(|_| {
                let mut s = TcpStream::connect(addr).expect("connects");
                s.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n").expect("writes");
                s.set_read_timeout(Some(Duration::from_millis(5))).expect("a timeout");
                s
            })
            .collect();
        let mut answers = vec![None; SLOW];
        let deadline = Instant::now() + CLIENT_REQUEST_TIMEOUT + Duration::from_secs(5);
        while answers.iter().any(Option::is_none) && Instant::now() < deadline {
            for (i, s) in streams.iter_mut().enumerate() {
                if answers[i].is_some() {
                    continue;
                }
                let mut buf = [0u8; 64];
                match s.read(&mut buf) {
                    // Closed, with or without a 408 first.
                    Ok(0) => answers[i] = Some((String::new(), Instant::now())),
                    Ok(n) => {
                        answers[i] =
                            Some((String::from_utf8_lossy(&buf[..n]).into(), Instant::now()))
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        let _ = s.write_all(b"X-Trickle: 1\r\n");
                    }
                    Err(_) => answers[i] = Some((String::new(), Instant::now())),
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        answers
    });

    // Meanwhile, everyone else is served at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..20 {
        let started = Instant::now();
        app.assert_accepted(&pair.access).await;
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let answers = slow.join().expect("the slow clients");
    for (i, answer) in answers.iter().enumerate() {
        let (text, at) = answer.as_ref().unwrap_or_else(|| panic!("slow client {i} never cut"));
        let after = at.duration_since(opened);
        assert!(
            after >= CLIENT_REQUEST_TIMEOUT - Duration::from_millis(500),
            "cut early: {after:?}"
        );
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "slow client {i}: {text}");
    }
    eprintln!(
        "{SLOW} slowloris connections cut after the {CLIENT_REQUEST_TIMEOUT:?} header timeout"
    );
}
