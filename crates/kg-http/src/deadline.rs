//! Connection deadlines: the header timeout and the keep-alive idle timeout.
//!
//! hyper 1 has one timer for HTTP/1: its header read timeout, which runs from the moment it
//! waits for a request head, idle time included, and costs a boxed sleep registered in (and
//! removed from) the timer wheel for every request. We turn it off. The two limits live in
//! [`Deadline`], a wrapper around the connection's byte stream, whose deadline is armed by
//! every read that returns `Pending` (the only reads hyper's timer would have watched) and is
//! never later than hyper's would be (last write + idle, or first byte + header timeout,
//! against read start + idle + header):
//!
//! - a new connection must deliver its first request head within the header timeout;
//! - after a response is written the connection is idle and may stay so for the idle timeout;
//! - the first byte of the next request starts the header timeout again, so a client sending
//!   one byte a second is cut off when it runs out, while others are served.
//!
//! The timer is re-armed lazily: moving the deadline later never touches the timer wheel;
//! when the armed sleep fires early, it is re-armed for the real deadline. On a busy
//! keep-alive connection that is one timer operation per header timeout, not per request.
//!
//! Writes have a limit too: a peer that takes no byte of what it is sent for the idle
//! timeout is cut off. Without it, a client that pipelines requests and never reads the
//! answers held its connection, and a slot under `max_connections`, for ever (security
//! review); a slow reader that takes some bytes now and then is not affected.
//!
//! HTTP/2 multiplexes requests and carries frames that are not requests (PING, SETTINGS,
//! CONTINUATION), so bytes alone must not buy time: a client pinging every few seconds, or
//! dripping one header frame at a time, would otherwise hold a connection for ever (found by
//! the security review). There, only a *completed* request (the service counts them, and
//! the response is being written) starts the idle timeout; any bytes after that must
//! complete a request within the header timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::slots::Activity;

/// A byte stream whose reads fail with `TimedOut` once its deadline passes.
pub struct Deadline<IO> {
    io: IO,
    sleep: Pin<Box<Sleep>>,
    /// The instant `sleep` is armed for.
    armed: Instant,
    /// The instant the connection must have made progress by.
    deadline: Instant,
    /// A response was written and no byte of the next request has arrived.
    idle: bool,
    header_timeout: Duration,
    idle_timeout: Duration,
    h2: bool,
    /// What the connection shares with the connection table: requests answered (of which
    /// we have seen `seen`), requests in progress that stream (a proxied body, a WebSocket
    /// tunnel: while any is, the deadline does not apply, since a slow upload or a quiet
    /// socket is then the application's business, bounded by the upstream timeout and the
    /// proxy's own limits), and when the connection began waiting for a request.
    activity: Arc<Activity>,
    seen: u64,
    /// Armed when a write waits for the peer to take bytes (made on the first such wait).
    stall: Option<Pin<Box<Sleep>>>,
    /// A write is waiting and the peer has taken nothing since `stall` was armed.
    stalled: bool,
}

impl<IO> Deadline<IO> {
    /// Wraps a freshly accepted connection: its first request head is due within
    /// `header_timeout`.
    pub fn new(
        io: IO,
        header_timeout: Duration,
        idle_timeout: Duration,
        h2: bool,
        activity: Arc<Activity>,
    ) -> Self {
        let deadline = Instant::now() + header_timeout;
        Deadline {
            io,
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            armed: deadline,
            deadline,
            idle: false,
            header_timeout,
            idle_timeout,
            h2,
            activity,
            seen: 0,
            stall: None,
            stalled: false,
        }
    }

    fn set_deadline(&mut self, at: Instant) {
        self.deadline = at;
        if at < self.armed {
            self.sleep.as_mut().reset(at);
            self.armed = at;
        }
    }

    /// `Ready(Err)` once the deadline has passed; otherwise registers for a wake-up.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            ready!(self.sleep.as_mut().poll(cx));
            let now = Instant::now();
            if now >= self.deadline && self.activity.busy() {
                self.deadline = now + self.header_timeout;
            }
            if now >= self.deadline {
                let what = if self.idle {
                    "keep-alive idle timeout"
                } else {
                    "request head timeout"
                };
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, what));
            }
            self.sleep.as_mut().reset(self.deadline);
            self.armed = self.deadline;
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Deadline<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.idle {
                    this.idle = false;
                    this.set_deadline(Instant::now() + this.header_timeout);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.poll_deadline(cx) {
                Poll::Ready(e) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Deadline<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, data);
        this.after_write(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.after_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.poll_stall(cx).map(Err),
            r => {
                this.stalled = false;
                r
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl<IO> Deadline<IO> {
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Pending => self.poll_stall(cx).map(Err),
            Poll::Ready(Ok(n)) => {
                self.stalled = false;
                if n > 0 {
                    self.mark_idle();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }

    /// After a write returned `Pending`: `Ready(Err)` once the peer has taken no byte for
    /// the idle timeout; otherwise registers for a wake-up.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let at = Instant::now() + self.idle_timeout;
        let sleep = match &mut self.stall {
            Some(sleep) => {
                if !self.stalled {
                    sleep.as_mut().reset(at);
                }
                sleep
            }
            None => self.stall.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        self.stalled = true;
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer took no bytes within the idle timeout",
        ))
    }
}

impl<IO> Deadline<IO> {
    fn mark_idle(&mut self) {
        if self.h2 {
            // On HTTP/2 a write may be a PING or SETTINGS acknowledgement: only a request
            // answered since we last looked counts.
            let served = self
                .activity
                .served
                .load(std::sync::atomic::Ordering::Relaxed);
            if served == self.seen {
                return;
            }
            self.seen = served;
        }
        self.idle = true;
        let now = Instant::now();
        // The connection table sheds the connection that has waited longest first.
        self.activity.waiting_from(now);
        // Later than the armed instant (or equal): no timer operation.
        self.set_deadline(now + self.idle_timeout);
    }
}

impl<IO> std::fmt::Debug for Deadline<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadline")
            .field("idle", &self.idle)
            .field("h2", &self.h2)
            .finish_non_exhaustive()
    }
}
