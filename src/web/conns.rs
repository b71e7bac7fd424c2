//! Client connections: counted, closed when idle, and cut off when a request
//! head is too slow (issue 13 item 1) or too large (issue 28).
//!
//! pingora 0.9.1 applies one keep-alive timeout to each read of a request
//! head, so a head sent one line at a time is never cut off, and it neither
//! counts nor caps connections. So every accepted connection is wrapped
//! ([`super::guarded::Guarded`]) and registered here, and the gateway's
//! `early_request_filter` and `logging` hooks mark when a request is in
//! progress ([`request_started`], [`request_ended`]). Between requests a
//! connection is idle (closed after `idle_timeout`); from the first byte of a
//! head until `early_request_filter` it is reading a head (408 and closed
//! after `header_timeout`, 431 and closed past `max_header` bytes); a
//! request in progress has no limit from here.
//!
//! The byte bound holds while the head arrives: a read of a connection that
//! is not busy is given at most the bytes the head may still take, so what
//! pingora buffers for an unfinished head never exceeds `max_header` (its
//! own, hard-coded bound is 1 MiB). The last read of a head may carry the
//! first bytes of the body; they count towards the bound too, so a head
//! always fits in what was read.
//! An HTTP/2 connection (TLS with ALPN `h2`) is counted but not timed here.
//! A TLS handshake happens before a connection reaches this (pingora gives
//! it 60 s).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use pingora::proxy::Session;

use super::guarded::Guarded;

/// `[server]`'s connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub idle: Duration,
    pub header: Duration,
    pub max: usize,
    /// Bytes of one request head (request line and headers) at most.
    pub max_header: usize,
}

/// Told about each request the connection layer answers itself (its
/// status), so the request metrics count it: web/ knows no metrics.
pub type RejectHook = fn(status: u16);

/// Where a connection is between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// No request in progress and no byte of the next one yet.
    Idle,
    /// Some bytes of a request head, not the whole head yet.
    Head,
    /// A request is in progress (head read, answer not finished).
    Busy,
}

#[derive(Debug)]
struct ConnState {
    phase: Phase,
    since: Instant,
    /// Asked to close (the cap was reached): it closes when next idle.
    evicted: bool,
    /// Bytes read since the head started (0 while idle or busy).
    head_bytes: usize,
    /// Wakes the connection's read when it is evicted while idle.
    waker: Option<Waker>,
}

/// One client connection.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    state: Mutex<ConnState>,
}

/// What a read sees of its connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen {
    pub phase: Phase,
    pub since: Instant,
    pub evicted: bool,
}

impl Conn {
    fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection's state; while not busy, `waker` is woken on eviction.
    pub(super) fn seen(&self, waker: &Waker) -> Seen {
        let mut s = self.lock();
        if s.phase != Phase::Busy && !s.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            s.waker = Some(waker.clone());
        }
        Seen {
            phase: s.phase,
            since: s.since,
            evicted: s.evicted,
        }
    }

    /// How many bytes the next read may take: all it can while a request
    /// is in progress (`None`), else what the head may still take of `max`.
    pub(super) fn head_budget(&self, max: usize) -> Option<usize> {
        let s = self.lock();
        match s.phase {
            Phase::Busy => None,
            Phase::Idle | Phase::Head => Some(max.saturating_sub(s.head_bytes)),
        }
    }

    /// `n` bytes were read: the first of a head start it; while not busy
    /// they count towards the head's bound.
    pub(super) fn bytes_read(&self, n: usize) {
        let mut s = self.lock();
        match s.phase {
            Phase::Busy => {}
            Phase::Idle => {
                s.phase = Phase::Head;
                s.since = Instant::now();
                s.head_bytes = n;
            }
            Phase::Head => s.head_bytes += n,
        }
    }

    /// An HTTP/2 connection: busy for as long as it is open.
    pub(super) fn mark_http2(&self) {
        self.set_phase(Phase::Busy);
    }

    /// A connection's limits count from when it became idle or started a
    /// head; a busy one has none, so its start is not read off the clock.
    fn set_phase(&self, phase: Phase) {
        let mut s = self.lock();
        s.phase = phase;
        s.head_bytes = 0;
        if phase != Phase::Busy {
            s.since = Instant::now();
        }
    }
}

#[derive(Default)]
struct Live {
    conns: HashMap<u64, Arc<Conn>>,
    /// How many of `conns` were asked to close and have not yet.
    evicting: usize,
}

/// Every open client connection of one gateway service.
pub struct Conns {
    limits: ConnLimits,
    on_reject: RejectHook,
    live: Mutex<Live>,
    next_id: AtomicU64,
}

impl Conns {
    pub fn new(limits: ConnLimits, on_reject: RejectHook) -> Arc<Conns> {
        Arc::new(Conns {
            limits,
            on_reject,
            live: Mutex::new(Live::default()),
            next_id: AtomicU64::new(1),
        })
    }

    pub fn limits(&self) -> ConnLimits {
        self.limits
    }

    /// The connection layer answered a request itself with `status`.
    pub(super) fn rejected(&self, status: u16) {
        (self.on_reject)(status)
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection. At the cap, the connection idle longest
    /// is asked to close so this one is served; with none idle, `None`.
    pub fn admit(&self) -> Option<Arc<Conn>> {
        let mut live = self.lock();
        if live.conns.len() - live.evicting >= self.limits.max {
            let victim = live
                .conns
                .values()
                .filter(|c| {
                    let s = c.lock();
                    s.phase == Phase::Idle && !s.evicted
                })
                .min_by_key(|c| c.lock().since)
                .cloned()?;
            let waker = {
                let mut s = victim.lock();
                s.evicted = true;
                s.waker.take()
            };
            live.evicting += 1;
            if let Some(w) = waker {
                w.wake();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            id,
            state: Mutex::new(ConnState {
                phase: Phase::Idle,
                since: Instant::now(),
                evicted: false,
                head_bytes: 0,
                waker: None,
            }),
        });
        live.conns.insert(id, conn.clone());
        Some(conn)
    }

    /// The connection closed.
    pub(super) fn remove(&self, conn: &Conn) {
        let mut live = self.lock();
        if live.conns.remove(&conn.id).is_some() && conn.lock().evicted {
            live.evicting = live.evicting.saturating_sub(1);
        }
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections with a request in progress or a head being read.
    pub fn in_flight(&self) -> usize {
        self.lock()
            .conns
            .values()
            .filter(|c| c.lock().phase != Phase::Idle)
            .count()
    }
}

fn conn_of(session: &Session) -> Option<&Conn> {
    let stream = session.downstream_session.stream()?;
    let guarded = (**stream).as_any().downcast_ref::<Guarded>()?;
    Some(guarded.conn())
}

/// The gateway's `early_request_filter`: the head has been read, a request
/// is in progress. The connection's keep-alive timeout (pingora's, for the
/// reads of later heads) becomes `idle`.
pub fn request_started(session: &mut Session, idle: Duration) {
    if let Some(conn) = conn_of(session) {
        conn.set_phase(Phase::Busy);
    }
    if session.downstream_session.get_keepalive().is_some() {
        session
            .downstream_session
            .set_keepalive(Some(idle.as_secs().max(1)));
    }
}

/// The gateway's `logging`: the request is over, the connection idle. A
/// request whose body was not read to its end is the connection's last:
/// pingora already closes such a connection when its answer was written
/// before the body was read whole (`close_on_response_before_downstream_finish`),
/// and this makes sure of it, so the rest of a body is never read as (or
/// instead of) the next head, which is bounded and timed from its first byte.
pub fn request_ended(session: &mut Session) {
    if !session.downstream_session.is_body_done() {
        session.downstream_session.set_keepalive(None);
        return;
    }
    if let Some(conn) = conn_of(session) {
        conn.set_phase(Phase::Idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conns(max: usize) -> Arc<Conns> {
        Conns::new(
            ConnLimits {
                idle: Duration::from_secs(60),
                header: Duration::from_secs(10),
                max,
                max_header: 32_768,
            },
            |_| {},
        )
    }

    #[test]
    fn a_heads_bytes_are_bounded_and_counted_afresh_for_each_request() {
        let c = conns(4);
        let a = c.admit().unwrap();
        assert_eq!(a.head_budget(100), Some(100), "idle: a whole head");
        a.bytes_read(60);
        assert_eq!(a.lock().phase, Phase::Head);
        a.bytes_read(30);
        assert_eq!(a.head_budget(100), Some(10));
        a.bytes_read(10);
        assert_eq!(a.head_budget(100), Some(0), "at the bound: nothing more");
        a.set_phase(Phase::Busy);
        assert_eq!(a.head_budget(100), None, "a body is not bounded here");
        a.bytes_read(1_000_000);
        a.set_phase(Phase::Idle);
        assert_eq!(a.head_budget(100), Some(100), "the next head starts afresh");
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_is_evicted() {
        let c = conns(2);
        let a = c.admit().unwrap();
        let b = c.admit().unwrap();
        a.set_phase(Phase::Busy);
        let third = c.admit().expect("b is idle: evicted for the new one");
        assert!(b.lock().evicted && !a.lock().evicted);
        assert_eq!(c.len(), 3);
        c.remove(&b);
        assert_eq!(c.len(), 2);
        third.set_phase(Phase::Busy);
        assert!(c.admit().is_none(), "none idle: refused");
        assert_eq!(c.in_flight(), 2);
    }

    #[test]
    fn an_evicted_connection_no_longer_counts_towards_the_cap() {
        let c = conns(1);
        let a = c.admit().unwrap();
        let _b = c.admit().unwrap();
        assert!(a.lock().evicted);
        // b is idle, a is leaving: b is the one asked next.
        let _d = c.admit().unwrap();
        c.remove(&a);
        assert_eq!(c.lock().evicting, 1);
    }
}
