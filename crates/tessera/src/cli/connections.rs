//! How many connections `tessera serve` holds, and which one gives way when it is full.
//!
//! Every accepted connection takes a place in [`Connections`], which the serving threads
//! share. Past the cap, a new connection is served by closing the oldest connection that has
//! no request in flight (one that has not finished sending its headers, or an idle keep-alive
//! one): idle connections, however many a client opens, never keep a health probe or another
//! client out, and no request that was received is dropped. When every held connection is
//! answering a request (clients sending their bodies slowly, say), a new connection goes to
//! a small reserve of [`HEALTH_RESERVE`] connections beyond the cap, which answer only the
//! health probes (`GET /health/alive`, `GET /health/ready`; anything else gets `503` with
//! `Retry-After` and the connection closes): a load balancer's probe still answers while the
//! cap is held. Only when the reserve too is busy is the new connection closed at once.
//!
//! The cap stays below the process's file-descriptor limit (`RLIMIT_NOFILE`, raised to its
//! hard limit at start), with room kept for the database connections, the operational
//! listener, the SQLite files and logs, so that `accept` does not fail with "too many open
//! files".

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// File descriptors always kept apart from client connections (listeners, database files,
/// standard streams, the operational listener's connections, the health probes' reserve),
/// besides the database pool.
const RESERVED_DESCRIPTORS: u64 = 64;

/// The cap of the operational listener (`ops_listen`): within [`RESERVED_DESCRIPTORS`].
pub const OPS_CONNECTIONS: usize = 32;

/// Connections kept beyond the cap for health probes alone: within [`RESERVED_DESCRIPTORS`]
/// (with [`OPS_CONNECTIONS`]).
pub const HEALTH_RESERVE: usize = 8;

/// The connections a server holds.
pub struct Connections {
    cap: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    /// By acceptance order: the first entries are the oldest.
    slots: BTreeMap<u64, Arc<Slot>>,
    /// The reserve's connections, by acceptance order.
    reserve: BTreeMap<u64, Arc<Slot>>,
}

impl Open {
    /// Makes room in `which` (the held connections or the reserve) by asking its oldest
    /// idle connection to close; `false` when every one is busy.
    fn evict_oldest_idle(&mut self, reserve: bool) -> bool {
        let slots = if reserve {
            &mut self.reserve
        } else {
            &mut self.slots
        };
        let Some(id) = slots
            .iter()
            .find(|(_, slot)| slot.idle())
            .map(|(id, _)| *id)
        else {
            return false;
        };
        if let Some(slot) = slots.remove(&id) {
            slot.close.notify_one();
        }
        true
    }
}

/// One connection's place: how many of its requests are being answered, and the signal that
/// asks it to close.
#[derive(Default)]
pub struct Slot {
    in_flight: AtomicUsize,
    close: tokio::sync::Notify,
}

impl Slot {
    /// Whether no request of this connection is being answered.
    pub fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Resolves when the connection is asked to make room.
    pub async fn asked_to_close(&self) {
        self.close.notified().await;
    }

    /// Marks a request in flight until the returned guard is dropped (with the response body,
    /// once it has been written).
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }
}

/// A request being answered; see [`Slot::request`].
pub struct InFlight(Arc<Slot>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A held place; dropping it frees the place.
pub struct Held {
    owner: Arc<Connections>,
    id: u64,
    /// The connection's slot.
    pub slot: Arc<Slot>,
    /// Whether the connection is one of the reserve's, for health probes only.
    pub reserve: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.owner.lock();
        if self.reserve {
            open.reserve.remove(&self.id);
        } else {
            open.slots.remove(&self.id);
        }
    }
}

impl Connections {
    /// At most `cap` connections at once (at least one).
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            open: Mutex::new(Open::default()),
        })
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Connections held now, under the cap and in the reserve.
    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let open = self.lock();
        (open.slots.len(), open.reserve.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a new connection: at the cap, the oldest idle connection is asked to close
    /// and gives up its place. When every held connection is busy, a place in the reserve
    /// (health probes only; its oldest idle connection makes room the same way). `None` when
    /// the reserve is busy too.
    pub fn admit(self: &Arc<Self>) -> Option<Held> {
        let mut open = self.lock();
        let reserve = open.slots.len() >= self.cap && !open.evict_oldest_idle(false);
        if reserve && open.reserve.len() >= HEALTH_RESERVE && !open.evict_oldest_idle(true) {
            return None;
        }
        let id = open.next_id;
        open.next_id += 1;
        let slot = Arc::new(Slot::default());
        if reserve {
            open.reserve.insert(id, Arc::clone(&slot));
        } else {
            open.slots.insert(id, Arc::clone(&slot));
        }
        Some(Held {
            owner: Arc::clone(self),
            id,
            slot,
            reserve,
        })
    }
}

/// Raises the soft file-descriptor limit to the hard one and returns it (`None` where the
/// platform has no such limit or it could not be read).
pub fn raise_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => Some(limit),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the file-descriptor limit");
                None
            }
        }
    }
    #[cfg(not(unix))]
    None
}

/// The connection cap: the configured one, or what the descriptor limit leaves after the
/// room kept for everything else; never more than the latter.
pub fn cap(configured: Option<usize>, descriptor_limit: Option<u64>, pool_size: u32) -> usize {
    let room = descriptor_limit.map(|limit| {
        let reserved = RESERVED_DESCRIPTORS + u64::from(pool_size) + limit / 20;
        usize::try_from(limit.saturating_sub(reserved))
            .unwrap_or(usize::MAX)
            .max(1)
    });
    match (configured, room) {
        (Some(configured), Some(room)) if configured > room => {
            tracing::warn!(
                configured,
                cap = room,
                "max_connections is above what the file-descriptor limit allows; using the lower \
                 figure (raise the limit with ulimit -n or LimitNOFILE=)"
            );
            room
        }
        (Some(configured), _) => configured.max(1),
        (None, Some(room)) => room,
        (None, None) => DEFAULT_CAP_WITHOUT_LIMIT,
    }
}

/// The cap where the descriptor limit is unknown.
const DEFAULT_CAP_WITHOUT_LIMIT: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        // 20,000 descriptors: 64 + 16 + 1,000 kept apart.
        assert_eq!(cap(None, Some(20_000), 16), 18_920);
        assert_eq!(cap(Some(100), Some(20_000), 16), 100);
        assert_eq!(cap(Some(50_000), Some(20_000), 16), 18_920);
        assert_eq!(cap(None, Some(10), 16), 1);
        assert_eq!(cap(Some(0), None, 16), 1);
        assert_eq!(cap(None, None, 16), DEFAULT_CAP_WITHOUT_LIMIT);
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let conns = Connections::new(3);
        let first = conns.admit().unwrap();
        let second = conns.admit().unwrap();
        let third = conns.admit().unwrap();
        let busy = first.slot.request();
        // The oldest is busy: the second, the oldest idle one, is asked to close.
        let fourth = conns.admit().unwrap();
        assert_eq!(conns.len(), (3, 0));
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            second.slot.asked_to_close(),
        )
        .await
        .expect("the second connection is asked to close");
        // Every held connection busy: a place in the reserve, for health probes.
        let _b3 = third.slot.request();
        let _b4 = fourth.slot.request();
        let probe = conns.admit().unwrap();
        assert!(probe.reserve);
        assert!(!fourth.reserve);
        assert_eq!(conns.len(), (3, 1));
        drop(probe);
        // A request finished: that connection can make room again.
        drop(busy);
        let fifth = conns.admit().unwrap();
        assert!(!fifth.reserve);
        assert_eq!(conns.len(), (3, 0));
        drop(second);
        assert_eq!(conns.len(), (3, 0), "an evicted place is not freed twice");
        drop((first, third, fourth, fifth));
        assert_eq!(conns.len(), (0, 0));
    }

    #[tokio::test]
    async fn with_every_connection_busy_the_reserve_takes_health_probes_and_makes_room() {
        let conns = Connections::new(1);
        let held = conns.admit().unwrap();
        let _busy = held.slot.request();
        let reserve: Vec<Held> = (0..HEALTH_RESERVE)
            .map(|_| conns.admit().unwrap())
            .collect();
        assert!(reserve.iter().all(|h| h.reserve));
        assert_eq!(conns.len(), (1, HEALTH_RESERVE));
        // The reserve full and idle: its oldest gives way.
        let next = conns.admit().unwrap();
        assert!(next.reserve);
        let oldest = reserve.first().unwrap();
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            oldest.slot.asked_to_close(),
        )
        .await
        .expect("the reserve's oldest idle connection is asked to close");
        // The reserve full and busy: no room at all.
        let _busy_reserve: Vec<InFlight> = reserve
            .iter()
            .skip(1)
            .chain(std::iter::once(&next))
            .map(|h| h.slot.request())
            .collect();
        assert!(conns.admit().is_none());
    }
}
