//! How many connections `tessera serve` holds, and which one gives way when it is full.
//!
//! Every accepted connection takes a place in [`Connections`], which the serving threads
//! share. Past the cap, a new connection is served by closing the oldest connection that has
//! no request in flight (one that has not finished sending its headers, or an idle keep-alive
//! one): idle connections, however many a client opens, never keep a health probe or another
//! client out, and no request that was received is dropped. Only when every held connection is
//! answering a request is the new one closed at once.
//!
//! The cap stays below the process's file-descriptor limit (`RLIMIT_NOFILE`, raised to its
//! hard limit at start), with room kept for the database connections, the operational
//! listener, the SQLite files and logs, so that `accept` does not fail with "too many open
//! files".

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// File descriptors always kept apart from client connections (listeners, database files,
/// standard streams, the operational listener's connections), besides the database pool.
const RESERVED_DESCRIPTORS: u64 = 64;

/// The cap of the operational listener (`ops_listen`): within [`RESERVED_DESCRIPTORS`].
pub const OPS_CONNECTIONS: usize = 32;

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
}

impl Drop for Held {
    fn drop(&mut self) {
        self.owner.lock().slots.remove(&self.id);
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

    /// Connections held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().slots.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a new connection: at the cap, the oldest idle connection is asked to close
    /// and gives up its place. `None` when every held connection is busy.
    pub fn admit(self: &Arc<Self>) -> Option<Held> {
        let mut open = self.lock();
        if open.slots.len() >= self.cap {
            let oldest_idle = open
                .slots
                .iter()
                .find(|(_, slot)| slot.idle())
                .map(|(id, _)| *id)?;
            if let Some(slot) = open.slots.remove(&oldest_idle) {
                slot.close.notify_one();
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        let slot = Arc::new(Slot::default());
        open.slots.insert(id, Arc::clone(&slot));
        Some(Held {
            owner: Arc::clone(self),
            id,
            slot,
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
        assert_eq!(conns.len(), 3);
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            second.slot.asked_to_close(),
        )
        .await
        .expect("the second connection is asked to close");
        // Every held connection busy: no room.
        let _b3 = third.slot.request();
        let _b4 = fourth.slot.request();
        assert!(conns.admit().is_none());
        // A request finished: that connection can make room again.
        drop(busy);
        let fifth = conns.admit().unwrap();
        assert_eq!(conns.len(), 3);
        drop(second);
        assert_eq!(conns.len(), 3, "an evicted place is not freed twice");
        drop((first, third, fourth, fifth));
        assert_eq!(conns.len(), 0);
    }
}
