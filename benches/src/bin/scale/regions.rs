//! Three regions on one machine: A holds the PostgreSQL primary; each region has its own NATS
//! server (the three joined in one cluster, every route through a delaying proxy, addresses
//! not gossiped so that no route goes around one), a stream of its own (A the origin, B and C
//! mirrors of it), two `jwt-auth serve` instances and one example resource server following
//! the region's stream. B's and C's instances reach the database through a delaying proxy
//! too. Every process is on 127.0.0.1; the links between regions are the only delays.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream;

use jwt_auth_benches::{Process, fail, key_encryption_key, log_output, wait_until_ready};

use crate::nats::free_port;
use crate::proxy::Proxy;
use crate::servers::{self, Server};

/// The regions, A first.
pub const REGIONS: [char; 3] = ['a', 'b', 'c'];
/// The administrator every instance creates at start (with the run's password): it reads the
/// feeds.
pub const ADMIN_EMAIL: &str = "admin@scale.example";
/// The origin stream, in A.
pub const ORIGIN: &str = "JWT_AUTH_FEED";

/// The stream a region reads.
pub fn stream_of(region: char) -> String {
    match region {
        'a' => ORIGIN.to_owned(),
        other => format!("{ORIGIN}_{}", other.to_ascii_uppercase()),
    }
}

/// One region's NATS server, and what restarts it.
pub struct NatsNode {
    pub region: char,
    pub client_port: u16,
    config: PathBuf,
    process: Option<Process>,
}

impl NatsNode {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    fn start(&mut self) {
        let mut command = Command::new("nats-server");
        command.arg("-c").arg(&self.config);
        let process =
            Process::spawn(log_output(&mut command, &format!("nats-region-{}", self.region)));
        self.process = Some(process);
        let port = self.client_port;
        wait_until_ready(
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            || format!("the NATS server of region {} did not listen", self.region),
        );
    }

    /// Kills it at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// Starts it again, with its storage.
    pub fn restart(&mut self) {
        self.start();
    }
}

/// One `jwt-auth serve` instance, and how to start it again.
pub struct Instance {
    pub name: String,
    pub port: u16,
    envs: Vec<(&'static str, String)>,
    server: Option<Server>,
}

impl Instance {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self, bin: &Path) {
        self.server = Some(servers::start(bin, &self.envs, self.port, "/ready"));
    }

    /// Kills it at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.process.stop();
        }
    }

    /// Starts it again on the same port and settings, and waits until it is ready.
    pub fn restart(&mut self, bin: &Path) {
        self.start(bin);
    }
}

/// The whole set-up; everything stops when it is dropped.
pub struct Regions {
    pub nats: Vec<NatsNode>,
    pub instances: Vec<Instance>,
    /// One example resource server per region: (region, base URL).
    pub resources: Vec<(char, String)>,
    _resource_servers: Vec<Server>,
    /// The delaying proxies between regions: (from, to, proxy).
    links: Vec<(char, char, Proxy)>,
    work: PathBuf,
    bin: PathBuf,
}

impl Drop for Regions {
    fn drop(&mut self) {
        self.instances.clear();
        self._resource_servers.clear();
        for node in &mut self.nats {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

impl Regions {
    /// Starts everything, `delay` each way between regions, on the PostgreSQL database
    /// `postgres` (created afresh by the caller).
    pub async fn start(bin_dir: &Path, postgres: &str, delay: Duration) -> Regions {
        let work = std::env::temp_dir().join(format!("jwt-auth-regions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap_or_else(|e| fail(e));
        let mut links = Vec::new();

        // NATS: every route through a proxy of its own, from its region to the other.
        let cluster_ports: Vec<u16> = REGIONS.iter().map(|_| free_port()).collect();
        let mut nats = Vec::new();
        let mut route_proxies: Vec<Vec<u16>> = vec![Vec::new(); REGIONS.len()];
        for (i, &from) in REGIONS.iter().enumerate() {
            for (j, &to) in REGIONS.iter().enumerate() {
                if i == j {
                    continue;
                }
                let upstream = SocketAddr::from(([127, 0, 0, 1], cluster_ports[j]));
                let proxy = Proxy::start(upstream, delay).await;
                route_proxies[i].push(proxy.port);
                links.push((from, to, proxy));
            }
        }
        for (i, &region) in REGIONS.iter().enumerate() {
            let client_port = free_port();
            let store = work.join(format!("nats-{region}"));
            let routes: Vec<String> =
                route_proxies[i].iter().map(|p| format!("nats-route://127.0.0.1:{p}")).collect();
            let config = work.join(format!("nats-{region}.conf"));
            let text = format!(
                "server_name: {region}\nlisten: 127.0.0.1:{client_port}\n\
                 server_tags: [\"region:{region}\"]\n\
                 jetstream {{ store_dir: \"{}\" }}\n\
                 cluster {{\n  name: jwt\n  listen: 127.0.0.1:{}\n  no_advertise: true\n  \
                 routes: [{}]\n}}\n",
                store.display(),
                cluster_ports[i],
                routes.join(", ")
            );
            std::fs::write(&config, text).unwrap_or_else(|e| fail(e));
            let mut node = NatsNode { region, client_port, config, process: None };
            node.start();
            nats.push(node);
        }
        create_streams(&nats[0].url()).await;

        // PostgreSQL: direct from A, through a proxy from B and C.
        let (pg_host, pg_port) = host_port(postgres);
        let pg = SocketAddr::new(pg_host, pg_port);
        let mut database_urls = Vec::new();
        for &region in &REGIONS {
            if region == 'a' {
                database_urls.push(postgres.to_owned());
            } else {
                let proxy = Proxy::start(pg, delay).await;
                database_urls.push(postgres.replacen(
                    &format!("{}:{pg_port}", pg_host_text(postgres)),
                    &format!("127.0.0.1:{}", proxy.port),
                    1,
                ));
                links.push((region, 'a', proxy));
            }
        }

        let secret = crate::run_secret(7);
        let kek = key_encryption_key();
        let bin = bin_dir.join("jwt-auth");
        let mut instances = Vec::new();
        for (i, &region) in REGIONS.iter().enumerate() {
            for n in 1..=2 {
                let name = format!("{region}{n}");
                let dir = work.join(&name);
                std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(e));
                let port = free_port();
                let mut envs = crate::instance_env(&database_urls[i], &dir, &secret, &kek);
                envs.extend([
                    ("NATS_URL", nats[i].url()),
                    ("NATS_STREAM", stream_of(region)),
                    ("DATABASE_CONNECT_TIMEOUT", "2s".to_owned()),
                    ("ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
                    ("ADMIN_PASSWORD", crate::PASSWORD.to_owned()),
                ]);
                let mut instance = Instance { name, port, envs, server: None };
                instance.start(&bin);
                // A's first instance starts alone, so that the relay's leader is in A.
                if instances.is_empty() {
                    wait_for_gauge(&instance.base(), "jwt_auth_change_stream_relay_leader", 1)
                        .await;
                }
                instances.push(instance);
            }
        }

        let resource_bin = bin_dir.join("resource-server");
        let mut resource_servers = Vec::new();
        let mut resources = Vec::new();
        for (i, &region) in REGIONS.iter().enumerate() {
            let port = free_port();
            let local = &instances[i * 2];
            let envs = vec![
                ("JWT_AUTH_URL", local.base()),
                ("JWT_SECRET", secret.clone()),
                ("JWT_ISSUER", "jwt-auth".to_owned()),
                ("NATS_URL", nats[i].url()),
                ("NATS_STREAM", stream_of(region)),
                ("BIND_ADDRESS", format!("127.0.0.1:{port}")),
                ("RUST_LOG", "warn".to_owned()),
            ];
            let server = servers::start(&resource_bin, &envs, port, "/ready");
            // Ready once it has keys and has read its region's stream.
            let ready = format!("{}/ready", server.base);
            let started = Instant::now();
            while reqwest::get(&ready).await.map(|r| r.status().as_u16()).unwrap_or(0) != 200 {
                if started.elapsed() > Duration::from_secs(60) {
                    fail(format!("the resource server of region {region} is not ready"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            resources.push((region, server.base.clone()));
            resource_servers.push(server);
        }
        let regions = Regions {
            nats,
            instances,
            resources,
            _resource_servers: resource_servers,
            links,
            work,
            bin,
        };
        for instance in &regions.instances {
            wait_for_gauge(&instance.base(), "jwt_auth_change_stream_following", 1).await;
        }
        regions
    }

    /// The instance named `name` (`a1`, `b2`...).
    pub fn instance(&mut self, name: &str) -> &mut Instance {
        self.instances.iter_mut().find(|i| i.name == name).unwrap_or_else(|| fail(name))
    }

    pub fn base(&self, name: &str) -> String {
        self.instances.iter().find(|i| i.name == name).unwrap_or_else(|| fail(name)).base()
    }

    pub fn resource(&self, region: char) -> String {
        self.resources
            .iter()
            .find(|(r, _)| *r == region)
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    }

    pub fn restart_instance(&mut self, name: &str) {
        let bin = self.bin.clone();
        self.instance(name).restart(&bin);
    }

    /// Cuts every link into or out of `region` (its NATS routes and its database link).
    pub fn partition(&self, region: char) {
        for (from, to, proxy) in &self.links {
            if *from == region || *to == region {
                proxy.cut();
            }
        }
    }

    /// Heals what [`partition`](Regions::partition) cut.
    pub fn heal(&self) {
        for (_, _, proxy) in &self.links {
            proxy.heal();
        }
    }
}

/// Creates the origin stream in A and a mirror of it in B and in C, once the cluster has a
/// JetStream leader.
async fn create_streams(url: &str) {
    let client = async_nats::connect(url).await.unwrap_or_else(|e| fail(format!("NATS: {e}")));
    let jetstream = async_nats::jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(60);
    for &region in &REGIONS {
        let mut config = stream::Config {
            name: stream_of(region),
            max_age: Duration::from_secs(24 * 3600),
            storage: stream::StorageType::File,
            placement: Some(stream::Placement {
                cluster: None,
                tags: vec![format!("region:{region}")],
            }),
            ..Default::default()
        };
        if region == 'a' {
            config.subjects = vec![format!("{}.>", jwt_auth_nats::SUBJECT_PREFIX)];
            config.duplicate_window = jwt_auth_nats::DUPLICATE_WINDOW;
        } else {
            config.mirror = Some(stream::Source { name: ORIGIN.to_owned(), ..Default::default() });
        }
        // The cluster elects its JetStream leader first.
        loop {
            match jetstream.get_or_create_stream(config.clone()).await {
                Ok(_) => break,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => fail(format!("stream {}: {e}", config.name)),
            }
        }
    }
}

/// Waits until `/metrics` of `base` shows `gauge` at `value`.
pub async fn wait_for_gauge(base: &str, gauge: &str, value: i64) -> Duration {
    let started = Instant::now();
    loop {
        if read_gauge(base, gauge).await == Some(value) {
            return started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(60) {
            fail(format!("{base}: {gauge} is not {value} after a minute"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gauge of `/metrics`.
pub async fn read_gauge(base: &str, gauge: &str) -> Option<i64> {
    let text = reqwest::get(format!("{base}/metrics")).await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(gauge)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The address of a `postgres://user@host:port/db` URL.
fn host_port(url: &str) -> (std::net::IpAddr, u16) {
    let host = pg_host_text(url);
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let port = authority.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(5432);
    let ip = match host.as_str() {
        "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        other => other.parse().unwrap_or_else(|_| fail("SCALE_POSTGRES_URL: use an IP address")),
    };
    (ip, port)
}

fn pg_host_text(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h).to_owned()
}

/// `GET url` with `token`: the status (0 when there was no answer).
pub async fn status(client: &reqwest::Client, url: &str, token: &str) -> u16 {
    match client.get(url).bearer_auth(token).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.bytes().await;
            status
        }
        Err(_) => 0,
    }
}
