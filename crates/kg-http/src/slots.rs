//! The connection table: how many connections may be open, how many of them one source may
//! hold, and which connection gives way when a new one needs its place.
//!
//! A semaphore taken before `accept` (what this replaced) let one client starve everyone: a
//! local client holding 1,500 sockets that sent a request head a byte at a time pinned all
//! 1,024 slots and the kernel's accept queue, and valid `/auth` requests waited for
//! seconds behind it (issue 14, item 5). Two rules replace it:
//!
//! - **Per source.** One source may hold at most `per_source` connections
//!   (`server.max_connections_per_source`). A source is an IPv4 address or an IPv6 /64
//!   ([`client_key`], as the failed-attempt limiter counts clients): a host is given a
//!   whole /64, and counting its addresses one by one would let it hold the table with
//!   one connection per address. The trusted proxies are exempt, since every client
//!   behind them shares their address. A source at its cap that connects again makes
//!   its own longest-waiting connection give way, or is refused when all of its
//!   connections are busy.
//! - **Shed the waiting first, from the heaviest source.** When the whole table is full, a
//!   connection waiting for a request head gives way: one still in its TLS handshake, one
//!   sending a head slowly, or one idle between keep-alive requests: the longest-waiting
//!   one of the source holding more connections than any other (trusted proxies not
//!   counted), or, with no such source, the longest-waiting one anywhere. A connection in
//!   a request is never shed: from the moment its head is read until its response is
//!   handed over ([`Activity::in_request`]: a sign-in form's body still arriving, a proxied
//!   request waiting for its upstream), and while a body streams or a tunnel is open
//!   ([`Activity::busy`]). When every connection is in a request, the new one waits for a
//!   slot as before.
//!
//! "Waited longest" is the instant a connection last finished a response (or was accepted),
//! which [`crate::deadline::Deadline`] records with one relaxed store where it already reads
//! the clock. A valid client is accepted at once, sends its head at once and is answered
//! before any slow socket is older than it; the attacker's sockets are the ones that go.
//! An attack that reopens a socket for each one shed turns the table over quickly, and
//! would soon make a client in a slow handshake the oldest: counting by source first keeps
//! a client with one connection from going while another address holds hundreds. From the
//! client's own address (behind one NAT, say) that protection is gone, and such a client
//! can be shed mid-handshake. An attack from many IPv4 addresses with a connection or two
//! each has no heaviest source either: then the longest-waiting connection anywhere goes,
//! which is an attacker's slow socket or someone's idle keep-alive connection, never a
//! request in progress. Keeping its sockets young with cheap requests buys an attacker
//! nothing: each is then answered, and a valid client's new connection still displaces
//! the oldest of them.
//! nginx (`limit_conn`) and HAProxy (`maxconn` per source via stick tables) refuse a
//! source over its limit; neither sheds an idle connection for a new one. Closing an idle
//! keep-alive connection is what every server does at its idle timeout, and clients retry
//! a request on a reused connection that was closed (curl, nginx's upstream keep-alive).
//!
//! The table is a mutex over a map, taken twice per connection (admit, drop). Finding a
//! victim scans the sources and the table, comparing addresses and instants: only when a
//! source or the table is full, at most `max_connections` entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::net::{Cidr, client_key, is_trusted};

/// What one connection shares with the table: whether it is busy, when it began waiting
/// for a request, and how many requests it has answered. Written by the connection
/// ([`crate::deadline::Deadline`], [`crate::serve::Conn`]); read by the table when it
/// looks for a connection to shed.
#[derive(Debug)]
pub struct Activity {
    /// Requests answered on this connection; the deadline reads it (HTTP/2 bytes that
    /// complete no request must not keep a connection alive).
    pub(crate) served: AtomicU64,
    /// Requests whose bodies are still streaming, or tunnels; while any is, the connection
    /// is busy: no deadline applies and it is never shed.
    pub(crate) active: AtomicUsize,
    /// Requests read and not yet answered ([`crate::serve`] counts them around every call
    /// of the site's service): the connection is not shed, but its deadlines still apply,
    /// so a body that never arrives is cut off at the header timeout as before.
    pub(crate) requests: AtomicUsize,
    /// Milliseconds from `epoch` to the instant the connection was accepted or last
    /// finished writing a response: how long it has waited for a request.
    waiting_since: AtomicU64,
    epoch: Instant,
    /// Told to close.
    shed: Notify,
}

impl Activity {
    /// A connection accepted now, measured from `epoch`.
    pub fn new(epoch: Instant) -> Activity {
        let a = Activity {
            served: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            waiting_since: AtomicU64::new(0),
            epoch,
            shed: Notify::new(),
        };
        a.waiting_from(Instant::now());
        a
    }

    /// The connection began waiting for a request at `now` (a response was written).
    #[inline]
    pub(crate) fn waiting_from(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis();
        self.waiting_since
            .store(u64::try_from(ms).unwrap_or(u64::MAX), Relaxed);
    }

    /// Whether a request is in progress that must not be cut (a streaming body, a tunnel).
    pub(crate) fn busy(&self) -> bool {
        self.active.load(Relaxed) > 0
    }

    /// Whether a request has been read and not yet answered.
    pub(crate) fn in_request(&self) -> bool {
        self.requests.load(Relaxed) > 0
    }

    /// Whether the table may tell this connection to give way: it is waiting for a
    /// request (or in its TLS handshake), not in one.
    fn sheddable(&self) -> bool {
        !self.busy() && !self.in_request()
    }

    /// Resolves when the table sheds this connection.
    pub async fn shed(&self) {
        self.shed.notified().await;
    }
}

/// Why a connection was closed or turned away, for the metrics and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// The table was full: the longest-waiting connection gave way.
    Full,
    /// Its source was at its cap: the source's longest-waiting connection gave way.
    Source,
}

/// The answer to a connection asking for a slot.
#[derive(Debug)]
pub enum Admission {
    /// Admitted; `shed` says whether another connection was told to give way for it.
    In { slot: Slot, shed: Option<Shed> },
    /// Its source holds its cap of connections and every one is busy.
    Refused,
}

/// The open connections.
#[derive(Debug)]
pub struct Slots {
    table: Mutex<Table>,
    freed: Notify,
    max: usize,
    per_source: usize,
    exempt: Vec<Cidr>,
    epoch: Instant,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    entries: HashMap<u64, Entry>,
    /// Connections per source ([`client_key`]); trusted proxies are not counted.
    by_source: HashMap<u128, usize>,
    /// Entries told to give way that have not closed yet: they no longer count as taking
    /// a place, so one shed admits one connection.
    shedding: usize,
}

#[derive(Debug)]
struct Entry {
    /// Its source's key; `None` for a trusted proxy.
    source: Option<u128>,
    activity: Arc<Activity>,
    shed: bool,
}

impl Slots {
    /// A table of `max` connections, `per_source` of them from one source outside
    /// `exempt` (the trusted proxies).
    pub fn new(max: usize, per_source: usize, exempt: Vec<Cidr>) -> Arc<Slots> {
        Arc::new(Slots {
            table: Mutex::new(Table::default()),
            freed: Notify::new(),
            max: max.max(1),
            per_source: per_source.max(1),
            exempt,
            epoch: Instant::now(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves the counts as they were: still usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a connection from `source`: at once, by shedding a waiting connection, or
    /// once one closes when every connection is busy.
    pub async fn admit(self: &Arc<Self>, peer: IpAddr) -> Admission {
        let source = (!is_trusted(peer, &self.exempt)).then(|| client_key(peer));
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the table is read: a slot freed after the read wakes us.
            freed.as_mut().enable();
            match self.try_admit(source) {
                Some(admission) => return admission,
                // Also look again after a while: a busy connection that goes idle (its
                // request answered) can now be shed, and no slot was freed to say so.
                None => {
                    let _ = tokio::time::timeout(RECHECK, freed).await;
                }
            }
        }
    }

    /// A slot now, a refusal, or `None`: every connection is busy, wait for one to close.
    fn try_admit(self: &Arc<Self>, source: Option<u128>) -> Option<Admission> {
        let mut t = self.lock();
        let mut shed = None;
        if let Some(key) = source
            && t.by_source.get(&key).copied().unwrap_or(0) >= self.per_source
        {
            if !t.shed_one(|e| e.source == source) {
                return Some(Admission::Refused);
            }
            shed = Some(Shed::Source);
        }
        if t.entries.len() - t.shedding >= self.max {
            // From the source holding the most first, so that a client with one connection
            // is not the one to go while another holds hundreds; then the oldest anywhere.
            if t.shed_from_heaviest() {
                shed = Some(Shed::Full);
            } else if shed.is_none() {
                return None;
            }
        }
        let id = t.next;
        t.next += 1;
        let activity = Arc::new(Activity::new(self.epoch));
        t.entries.insert(
            id,
            Entry {
                source,
                activity: Arc::clone(&activity),
                shed: false,
            },
        );
        if let Some(key) = source {
            *t.by_source.entry(key).or_default() += 1;
        }
        Some(Admission::In {
            slot: Slot {
                slots: Arc::clone(self),
                id,
                activity,
            },
            shed,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().entries.len()
    }

    /// Waits until every connection has closed, or `within` has passed; the number still
    /// open.
    pub async fn drained(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let open = self.open();
            if open == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.open();
            }
        }
    }
}

/// How often an admission waiting for a slot looks at the table again.
const RECHECK: Duration = Duration::from_millis(100);

impl Table {
    /// Tells a connection waiting for a request to close: the longest-waiting one of the
    /// source holding the most connections when one source holds more than any other
    /// (trusted proxies are not counted), else the longest-waiting one anywhere. False when
    /// every connection is in a request. One pass over the sources, then one over the
    /// table comparing keys: this runs on every admission while the table is full, in the
    /// accept loop.
    fn shed_from_heaviest(&mut self) -> bool {
        let mut heaviest: Option<(u128, usize)> = None;
        let mut tied = false;
        for (&key, &n) in &self.by_source {
            match heaviest {
                Some((_, m)) if n < m => {}
                Some((_, m)) if n == m => tied = true,
                _ => {
                    heaviest = Some((key, n));
                    tied = false;
                }
            }
        }
        let dominant = heaviest
            .filter(|&(_, n)| !tied && n > 1)
            .map(|(key, _)| key);
        dominant.is_some_and(|h| self.shed_one(|e| e.source == Some(h))) || self.shed_one(|_| true)
    }

    /// Tells the longest-waiting connection waiting for a request (among those `pick`
    /// takes) to close; false when there is none.
    fn shed_one(&mut self, pick: impl Fn(&Entry) -> bool) -> bool {
        let victim = self
            .entries
            .values_mut()
            .filter(|e| !e.shed && e.activity.sheddable() && pick(e))
            .min_by_key(|e| e.activity.waiting_since.load(Relaxed));
        match victim {
            Some(e) => {
                e.shed = true;
                e.activity.shed.notify_one();
                self.shedding += 1;
                true
            }
            None => false,
        }
    }
}

/// A connection's place in the table, given back when it drops.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    activity: Arc<Activity>,
}

impl Slot {
    /// What the connection shares with the table.
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.slots.lock();
        if let Some(e) = t.entries.remove(&self.id) {
            if e.shed {
                t.shedding -= 1;
            }
            if let Some(key) = e.source
                && let Some(n) = t.by_source.get_mut(&key)
            {
                *n -= 1;
                if *n == 0 {
                    t.by_source.remove(&key);
                }
            }
        }
        drop(t);
        self.slots.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    async fn admit(slots: &Arc<Slots>, source: &str) -> (Slot, Option<Shed>) {
        match slots.admit(ip(source)).await {
            Admission::In { slot, shed } => (slot, shed),
            Admission::Refused => panic!("refused"),
        }
    }

    async fn is_shed(slot: &Slot) -> bool {
        tokio::time::timeout(Duration::from_millis(20), slot.activity().shed())
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_sheds_from_the_source_holding_the_most_first() {
        let slots = Slots::new(4, 10, vec![]);
        let (client, _) = admit(&slots, "10.0.0.1").await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let mut attack = Vec::new();
        for _ in 0..3 {
            attack.push(admit(&slots, "10.0.0.9").await.0);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // The client's connection is the oldest waiting one, but the attack holds three.
        let (_new, shed) = admit(&slots, "10.0.0.9").await;
        assert_eq!(shed, Some(Shed::Full));
        assert!(
            !is_shed(&client).await,
            "the client with one connection stays"
        );
        assert!(is_shed(&attack[0]).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_sheds_the_longest_waiting_connection_that_is_not_busy() {
        let slots = Slots::new(3, 10, vec![]);
        let (oldest_busy, _) = admit(&slots, "10.0.0.1").await;
        oldest_busy.activity().active.fetch_add(1, Relaxed);
        tokio::time::advance(Duration::from_secs(1)).await;
        let (waiting, _) = admit(&slots, "10.0.0.2").await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let (answered, _) = admit(&slots, "10.0.0.3").await;
        tokio::time::advance(Duration::from_secs(1)).await;
        // `waiting` is older than `answered`, which just wrote a response.
        let (_new, shed) = admit(&slots, "10.0.0.4").await;
        assert_eq!(shed, Some(Shed::Full));
        assert!(is_shed(&waiting).await);
        assert!(
            !is_shed(&oldest_busy).await,
            "a busy connection is never shed"
        );
        assert!(!is_shed(&answered).await);
        // `answered` finishes a response: it is now the youngest waiting one.
        answered.activity().waiting_from(Instant::now());
        drop(waiting);
        assert_eq!(slots.open(), 3);
    }

    /// The review's finding: a connection whose request head was read, its body still
    /// arriving (a sign-in form), was the longest-waiting one and was shed mid-request.
    #[tokio::test(start_paused = true)]
    async fn a_connection_in_a_request_is_never_shed() {
        let slots = Slots::new(2, 10, vec![]);
        let (reading, _) = admit(&slots, "10.0.0.1").await;
        reading.activity().requests.fetch_add(1, Relaxed);
        tokio::time::advance(Duration::from_secs(1)).await;
        let (waiting, _) = admit(&slots, "10.0.0.2").await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let (_new, shed) = admit(&slots, "10.0.0.3").await;
        assert_eq!(shed, Some(Shed::Full));
        assert!(
            !is_shed(&reading).await,
            "the oldest, but in a request: it stays"
        );
        assert!(is_shed(&waiting).await);
    }

    /// An IPv6 host holds a /64: one connection from each of its addresses is still one
    /// source, capped as one and the heaviest when the table is full.
    #[tokio::test(start_paused = true)]
    async fn the_addresses_of_one_ipv6_64_are_one_source() {
        let slots = Slots::new(6, 3, vec![]);
        let (client, _) = admit(&slots, "2001:db8:9::1").await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let mut attack = Vec::new();
        for i in 1..=3 {
            let (slot, shed) = admit(&slots, &format!("2001:db8:1:2::{i}")).await;
            assert_eq!(shed, None);
            attack.push(slot);
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        // A fourth address in the same /64: the source is at its cap of 3.
        let (_fourth, shed) = admit(&slots, "2001:db8:1:2:ffff::4").await;
        assert_eq!(shed, Some(Shed::Source));
        assert!(is_shed(&attack[0]).await);
        assert!(!is_shed(&client).await);
        // Another /64 is another source.
        let (_other, shed) = admit(&slots, "2001:db8:1:3::1").await;
        assert_eq!(shed, None);
        // IPv4-mapped and plain IPv4 are one source too.
        let (_v4, _) = admit(&slots, "10.0.0.1").await;
        let (_mapped, _) = admit(&slots, "::ffff:10.0.0.1").await;
        assert_eq!(
            slots.lock().by_source.get(&client_key(ip("10.0.0.1"))),
            Some(&2)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_at_its_cap_sheds_its_own_connection_or_is_refused() {
        let slots = Slots::new(100, 2, vec!["192.0.2.1".parse().unwrap()]);
        let (a, _) = admit(&slots, "10.0.0.1").await;
        tokio::time::advance(Duration::from_secs(1)).await;
        let (b, _) = admit(&slots, "10.0.0.1").await;
        let (other, _) = admit(&slots, "10.0.0.2").await;
        let (_c, shed) = admit(&slots, "10.0.0.1").await;
        assert_eq!(shed, Some(Shed::Source));
        assert!(is_shed(&a).await);
        assert!(!is_shed(&other).await, "another source's connection stays");
        drop(a);
        // Both left busy: the source is refused.
        b.activity().active.fetch_add(1, Relaxed);
        _c.activity().active.fetch_add(1, Relaxed);
        assert!(matches!(
            slots.admit(ip("10.0.0.1")).await,
            Admission::Refused
        ));
        // A trusted proxy has no per-source cap.
        let mut proxy = Vec::new();
        for _ in 0..5 {
            proxy.push(admit(&slots, "192.0.2.1").await);
        }
        assert!(proxy.iter().all(|(_, shed)| shed.is_none()));
    }

    #[tokio::test(start_paused = true)]
    async fn with_every_connection_busy_a_new_one_waits_for_a_slot() {
        let slots = Slots::new(1, 10, vec![]);
        let (busy, _) = admit(&slots, "10.0.0.1").await;
        busy.activity().active.fetch_add(1, Relaxed);
        let s = Arc::clone(&slots);
        let waiting = tokio::spawn(async move { s.admit(ip("10.0.0.2")).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(busy);
        let admitted = waiting.await.unwrap();
        assert!(matches!(admitted, Admission::In { shed: None, .. }));
        drop(admitted);
        assert_eq!(slots.drained(Duration::from_secs(1)).await, 0);
    }
}
