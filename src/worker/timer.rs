//! The per-worker timer: one binary heap of (deadline, key) with lazy re-arming, so moving a
//! connection's deadline later costs nothing (no syscall, no heap push) and only the
//! earliest deadline of each owner sits in the heap. Owners keep their own `armed` instant;
//! an entry whose instant is not the owner's `armed` one is stale and skipped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a timer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKey {
    /// A connection, by slab key.
    Conn(usize),
    /// Periodic housekeeping: queues, paused listeners.
    Tick,
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
}

impl Timers {
    /// Makes sure `key` fires no later than `at`. `armed` is the owner's record of its
    /// earliest heap entry; it is updated here.
    pub fn arm(&mut self, key: TimerKey, at: Instant, armed: &mut Option<Instant>) {
        if armed.map_or(true, |a| at < a) {
            self.heap.push(Reverse((at, key)));
            *armed = Some(at);
        }
    }

    /// The earliest pending instant, to bound the poll timeout.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the next entry due at `now`, if any. The caller checks it against the owner's
    /// `armed` instant (equal: live; otherwise stale).
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_lazy_rearm() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        let mut a = None;
        let mut b = None;
        t.arm(TimerKey::Conn(1), t0 + Duration::from_millis(30), &mut a);
        t.arm(TimerKey::Conn(2), t0 + Duration::from_millis(10), &mut b);
        // Later deadlines do not push: the owner re-arms when the early entry fires.
        t.arm(TimerKey::Conn(1), t0 + Duration::from_millis(50), &mut a);
        assert_eq!(t.len(), 2);
        // An earlier one does.
        t.arm(TimerKey::Conn(1), t0 + Duration::from_millis(5), &mut a);
        assert_eq!(t.len(), 3);
        assert_eq!(t.next(), Some(t0 + Duration::from_millis(5)));
        let now = t0 + Duration::from_millis(40);
        let mut fired = Vec::new();
        while let Some((at, key)) = t.pop_due(now) {
            fired.push((at - t0, key));
        }
        assert_eq!(
            fired,
            [
                (Duration::from_millis(5), TimerKey::Conn(1)),
                (Duration::from_millis(10), TimerKey::Conn(2)),
                (Duration::from_millis(30), TimerKey::Conn(1)),
            ]
        );
        assert!(t.is_empty());
    }
}
