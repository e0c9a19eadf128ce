//! Who is calling: the client IP (the peer address, or the right-most untrusted hop of
//! `X-Forwarded-For` when the peer is a trusted proxy) and the user agent.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::USER_AGENT;
use ipnet::IpNet;
use jwt_core::ClientInfo;

/// The longest user agent recorded; the rest is cut.
const MAX_USER_AGENT: usize = 256;

/// The client's IP. `X-Forwarded-For` is read from the right, skipping trusted proxies, so a
/// client cannot choose its own address by sending the header itself.
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !peer_is_trusted(req, trusted) {
        return Some(peer);
    }
    let mut hops = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    hops.reverse();
    for hop in hops {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.iter().any(|net| net.contains(&ip)) => continue,
            Ok(ip) => return Some(ip),
            Err(_) => return Some(peer),
        }
    }
    Some(peer)
}

/// Whether the peer is one of `TRUSTED_PROXIES`, whose forwarding headers are believed.
pub fn peer_is_trusted(req: &HttpRequest, trusted: &[IpNet]) -> bool {
    req.peer_addr().is_some_and(|peer| trusted.iter().any(|net| net.contains(&peer.ip())))
}

/// The scheme and host this server is reached at, for absolute URLs. `Forwarded` and
/// `X-Forwarded-Host`/`-Proto` are believed only from a trusted proxy; otherwise the `Host`
/// header names the host (this server speaks plain HTTP), and the bind address stands in when
/// it is missing or not a plain host name.
pub fn public_base_url(req: &HttpRequest, trusted: &[IpNet], bind: std::net::SocketAddr) -> String {
    if peer_is_trusted(req, trusted) {
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let plain = |host: &&str| {
        !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    };
    let host = req.headers().get(actix_web::http::header::HOST).and_then(|h| h.to_str().ok());
    match host.filter(plain) {
        Some(host) => format!("http://{host}"),
        None => format!("http://{bind}"),
    }
}

/// The base URL clients address this server at: `PUBLIC_URL` when it is set, otherwise the
/// one the request shows ([`public_base_url`]). Absolute URLs of the metadata documents and
/// the `htu` a DPoP proof must name both start with it.
pub fn public_base(req: &HttpRequest, config: &crate::config::Config) -> String {
    match &config.public_url {
        Some(url) => url.clone(),
        None => public_base_url(req, &config.trusted_proxies, config.bind),
    }
}

/// The client as recorded with sessions and security events.
pub fn client_info(req: &HttpRequest, trusted: &[IpNet]) -> ClientInfo {
    let user_agent = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| {
        let mut end = ua.len().min(MAX_USER_AGENT);
        while !ua.is_char_boundary(end) {
            end -= 1;
        }
        ua[..end].to_owned()
    });
    ClientInfo {
        ip: client_ip(req, trusted).map(|ip| ip.to_string()),
        user_agent,
        proven_key: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(peer: &str, xff: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(format!("{peer}:1234").parse().unwrap());
        if let Some(xff) = xff {
            r = r.insert_header(("x-forwarded-for", xff));
        }
        r.to_http_request()
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |peer, xff| client_ip(&req(peer, xff), &trusted).unwrap().to_string();
        assert_eq!(ip("203.0.113.9", Some("1.2.3.4")), "203.0.113.9");
        assert_eq!(ip("10.0.0.1", Some("1.2.3.4")), "1.2.3.4");
        assert_eq!(ip("10.0.0.1", Some("6.6.6.6, 1.2.3.4, 10.0.0.7")), "1.2.3.4");
        assert_eq!(ip("10.0.0.1", None), "10.0.0.1");
        assert_eq!(ip("10.0.0.1", Some("garbage")), "10.0.0.1");
    }
}
