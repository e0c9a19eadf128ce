//! A delaying TCP proxy, for the wide-area links between simulated regions on one machine
//! (the kernel here has no `netem`): every byte is passed on `delay` after it arrived, in
//! each direction, without holding back what follows, so a link keeps its throughput and gains
//! the latency. A proxy can be cut (a partition): its connections are dropped and new ones are
//! closed at once, until it is healed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use jwt_auth_benches::fail;

/// A running proxy; it stops when dropped.
pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped at each cut: connections opened before end.
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` with `delay` each way.
    pub async fn start(upstream: SocketAddr, delay: Duration) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| fail(format!("a proxy's port: {e}")));
        let port = listener.local_addr().unwrap_or_else(|e| fail(e)).port();
        let cut = Arc::new(AtomicBool::new(false));
        let generation = watch::Sender::new(0_u64);
        let task = tokio::spawn(accept(listener, upstream, delay, cut.clone(), generation.clone()));
        Proxy { port, cut, generation, task }
    }

    /// Cuts the link: open connections are dropped, new ones closed at once.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Heals the link: new connections pass again.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    delay: Duration,
    cut: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        if cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let mut ended = generation.subscribe();
        ended.mark_unchanged();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else { return };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::select! {
                _ = pipe(client_read, server_write, delay) => {}
                _ = pipe(server_read, client_write, delay) => {}
                _ = ended.changed() => {}
            }
        });
    }
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (chunks, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buffer = vec![0_u8; 64 * 1024];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if chunks.send((Instant::now() + delay, buffer[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        // The reader ended: pass the close on, after the last chunk.
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
