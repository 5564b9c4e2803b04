//! Per-server connection counts shared by every worker, lock-free: one cache-padded
//! `AtomicU32` per server. A connection holds a [`ConnLease`] for as long as it uses a server;
//! the count goes up when the lease is taken and down when it is dropped, so no error path can
//! leak a count. Also the per-backend rotation positions shared by round-robin workers.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::loadtree::{self, Kind, LoadTree};
use crate::config::model::{BackendId, ServerId};

/// Keeps each counter on its own cache line so workers do not false-share.
#[repr(align(64))]
#[derive(Default)]
struct Padded<T>(T);

/// The shared counters of one model generation. Lives for the whole process (leases borrow
/// it for `'static`), so a worker's hot path never touches a reference count.
pub struct Counters {
    /// Per server: its count, and on the same cache line its load-tree leaf (a pick and
    /// a release write both, so they travel between cores together).
    active: Box<[Padded<ServerSlot>]>,
    rotation: Box<[Padded<AtomicUsize>]>,
    queued: Box<[Padded<AtomicU32>]>,
    /// Per backend: the load tree of leastconn and leasttime, made at their first pick.
    trees: Box<[loadtree::Slot]>,
    /// Per server: `backend << 32 | leaf` of its tree leaf, or `NO_LEAF`.
    leaf_of: Box<[AtomicU64]>,
}

const NO_LEAF: u64 = u64::MAX;

#[derive(Default)]
struct ServerSlot {
    active: AtomicU32,
    leaf: AtomicU64,
}

impl Counters {
    /// Counters for `servers` servers and `backends` backends, leaked for the process
    /// lifetime (a few bytes per server per configuration load).
    pub fn leak(servers: usize, backends: usize) -> &'static Counters {
        Box::leak(Box::new(Counters {
            active: (0..servers).map(|_| Padded::default()).collect(),
            rotation: (0..backends).map(|_| Padded::default()).collect(),
            queued: (0..backends).map(|_| Padded::default()).collect(),
            trees: (0..backends).map(|_| loadtree::Slot::new()).collect(),
            leaf_of: (0..servers).map(|_| AtomicU64::new(NO_LEAF)).collect(),
        }))
    }

    /// `backend`'s load tree over the servers `ids` (its members in order), made by the
    /// first caller. From then on every change of their counts updates it.
    pub fn load_tree(
        &'static self,
        backend: BackendId,
        ids: &[ServerId],
        kind: Kind,
    ) -> &'static LoadTree {
        let b = backend.index();
        self.trees[b].get_or_init(|| {
            let tree = LoadTree::new(kind, ids, self);
            for (leaf, id) in ids.iter().enumerate() {
                let at = ((b as u64) << 32) | leaf as u64;
                self.leaf_of[id.index()].store(at, Ordering::SeqCst);
            }
            tree
        })
    }

    /// The load-tree leaf word of server `id`.
    pub(super) fn leaf_word(&self, id: ServerId) -> &AtomicU64 {
        &self.active[id.index()].0.leaf
    }

    /// The count of `id` changed: its tree (if any) recomputes its leaf.
    fn touched(&self, id: ServerId) {
        let at = self.leaf_of[id.index()].load(Ordering::SeqCst);
        if at != NO_LEAF {
            if let Some(tree) = self.trees[(at >> 32) as usize].get() {
                tree.refresh(at as u32 as usize);
            }
        }
    }

    /// Connections currently using `id`, from every worker.
    pub fn active(&self, id: ServerId) -> u32 {
        // SeqCst, as every access of a count: the load trees rely on it (see loadtree).
        self.active[id.index()].0.active.load(Ordering::SeqCst)
    }

    /// Takes a lease on `id` if it has fewer than `limit` connections (no limit: always).
    pub fn try_lease(&'static self, id: ServerId, limit: Option<u32>) -> Option<ConnLease> {
        let slot = &self.active[id.index()].0.active;
        match limit {
            None => {
                slot.fetch_add(1, Ordering::SeqCst);
            }
            Some(max) => {
                slot.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < max).then_some(n + 1)
                })
                .ok()?;
            }
        }
        self.touched(id);
        Some(ConnLease { counters: self, id })
    }

    /// Takes a lease only if the count is still `seen` (the value a decision was based on),
    /// so two workers cannot both act on the same snapshot.
    pub fn lease_if(&'static self, id: ServerId, seen: u32) -> Option<ConnLease> {
        self.active[id.index()]
            .0
            .active
            .compare_exchange(seen, seen + 1, Ordering::SeqCst, Ordering::Relaxed)
            .ok()?;
        self.touched(id);
        Some(ConnLease { counters: self, id })
    }

    /// Connections waiting for a server of `backend`, in every worker.
    pub fn queued(&self, backend: BackendId) -> u32 {
        self.queued[backend.index()].0.load(Ordering::Relaxed)
    }

    /// Takes a place in `backend`'s queue if fewer than `limit` wait (no limit: always).
    pub fn try_queue(&'static self, backend: BackendId, limit: Option<u32>) -> Option<QueueTicket> {
        let slot = &self.queued[backend.index()].0;
        slot.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
            limit.map_or(true, |max| n < max).then_some(n + 1)
        })
        .ok()?;
        Some(QueueTicket {
            counters: self,
            backend,
        })
    }

    /// The next position of `backend`'s shared rotation.
    pub fn next_turn(&self, backend: BackendId) -> usize {
        self.rotation[backend.index()]
            .0
            .fetch_add(1, Ordering::Relaxed)
    }
}

/// How many times a count-based pick rescans after losing a race before it takes any room
/// left on the best server it saw.
pub const RACE_RETRIES: usize = 8;

impl Counters {
    /// Leases the server a count-based scan chooses (`scan` returns the server, the count
    /// its decision saw, and its maxconn), only if that count is still current: when another
    /// worker changed it first, scan again. The last attempt takes whatever room is left.
    pub fn lease_scanned(
        &'static self,
        mut scan: impl FnMut() -> Option<(ServerId, u32, u32)>,
    ) -> Option<ConnLease> {
        for attempt in 0..=RACE_RETRIES {
            let (id, seen, max) = scan()?;
            let lease = if attempt == RACE_RETRIES {
                self.try_lease(id, Some(max))
            } else {
                self.lease_if(id, seen)
            };
            if lease.is_some() {
                return lease;
            }
        }
        None
    }
}

/// One connection's claim on a server. Dropping it releases the count.
pub struct ConnLease {
    counters: &'static Counters,
    id: ServerId,
}

impl ConnLease {
    pub fn server(&self) -> ServerId {
        self.id
    }
}

impl std::fmt::Debug for ConnLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConnLease({:?})", self.id)
    }
}

impl Drop for ConnLease {
    fn drop(&mut self) {
        let prev = self.counters.active[self.id.index()]
            .0
            .active
            .fetch_sub(1, Ordering::SeqCst);
        debug_assert!(prev > 0, "lease released below zero on {:?}", self.id);
        self.counters.touched(self.id);
    }
}

/// A connection's place in a backend's queue; released on drop.
pub struct QueueTicket {
    counters: &'static Counters,
    backend: BackendId,
}

impl Drop for QueueTicket {
    fn drop(&mut self) {
        self.counters.queued[self.backend.index()]
            .0
            .fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for QueueTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QueueTicket({:?})", self.backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_count_up_and_down() {
        let c = Counters::leak(2, 1);
        let a = c.try_lease(ServerId(0), None).unwrap();
        let b = c.try_lease(ServerId(0), Some(2)).unwrap();
        assert_eq!(c.active(ServerId(0)), 2);
        assert!(c.try_lease(ServerId(0), Some(2)).is_none());
        assert_eq!(c.active(ServerId(0)), 2);
        drop(a);
        assert_eq!(c.active(ServerId(0)), 1);
        assert!(c.lease_if(ServerId(0), 0).is_none());
        let d = c.lease_if(ServerId(0), 1).unwrap();
        drop((b, d));
        assert_eq!(c.active(ServerId(0)), 0);
        assert_eq!(c.active(ServerId(1)), 0);
        let q1 = c.try_queue(BackendId(0), Some(1)).unwrap();
        assert!(c.try_queue(BackendId(0), Some(1)).is_none());
        assert_eq!(c.queued(BackendId(0)), 1);
        drop(q1);
        assert_eq!(c.queued(BackendId(0)), 0);
    }

    #[test]
    fn counts_are_exact_under_contention() {
        let c = Counters::leak(1, 1);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        let l = c.try_lease(ServerId(0), Some(3));
                        if let Some(l) = l {
                            assert!(c.active(ServerId(0)) <= 3);
                            drop(l);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.active(ServerId(0)), 0);
    }
}
