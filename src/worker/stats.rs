//! A worker's own counters: plain integers, one [`Traffic`] per frontend, backend and
//! server, touched only by the worker's thread (no shared atomics on the hot path). The
//! admin thread asks every worker for a copy and adds them up.

use std::time::Instant;

use crate::admin::snapshot::Traffic;
use crate::config::model::Model;

/// Counts events per second: the rate of the last complete second, and the highest.
#[derive(Debug, Clone, Copy)]
struct Rate {
    second: Option<Instant>,
    this: u64,
    last: u64,
    max: u64,
}

impl Rate {
    fn new() -> Rate {
        Rate {
            second: None,
            this: 0,
            last: 0,
            max: 0,
        }
    }

    /// Moves the window to the second containing `now`.
    fn roll(&mut self, now: Instant) {
        let Some(start) = self.second else {
            self.second = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(start).as_secs();
        if elapsed == 0 {
            return;
        }
        self.last = if elapsed == 1 { self.this } else { 0 };
        self.this = 0;
        self.second = Some(start + std::time::Duration::from_secs(elapsed));
        self.max = self.max.max(self.last);
    }

    fn hit(&mut self, now: Instant) {
        self.roll(now);
        self.this += 1;
        self.max = self.max.max(self.this);
    }

    fn current(&mut self, now: Instant) -> u64 {
        self.roll(now);
        self.last.max(self.this)
    }
}

/// One object's counters plus its session rate.
#[derive(Debug, Clone, Copy)]
pub struct Counted {
    pub t: Traffic,
    rate: Rate,
}

impl Counted {
    fn new() -> Counted {
        Counted {
            t: Traffic::default(),
            rate: Rate::new(),
        }
    }

    /// A session starts using this object: current, and in the total.
    pub fn open(&mut self, now: Instant) {
        self.begin(now);
        self.session();
    }

    /// Something starts using this object: counted as current (and in the session rate),
    /// not in `stot`. A server's connection once established (its `stot` counts every try,
    /// see [`Counted::session`]).
    pub fn begin(&mut self, now: Instant) {
        self.t.scur += 1;
        self.t.smax = self.t.smax.max(self.t.scur);
        self.rate.hit(now);
    }

    /// A frontend accepts a connection: current, and in `conn_tot`; in `stot` only once it
    /// becomes a session ([`Counted::session`]).
    pub fn accept(&mut self, now: Instant) {
        self.begin(now);
        self.t.conn_tot += 1;
    }

    /// One more in `stot`: a frontend's connection that passed its connection and session
    /// rules, or a try to connect to a server (HAProxy counts retries there too).
    pub fn session(&mut self) {
        self.t.stot += 1;
    }

    /// A session stops using this object.
    pub fn close(&mut self) {
        self.t.scur = self.t.scur.saturating_sub(1);
    }

    pub fn enqueue(&mut self) {
        self.t.qcur += 1;
        self.t.qmax = self.t.qmax.max(self.t.qcur);
    }

    pub fn dequeue(&mut self) {
        self.t.qcur = self.t.qcur.saturating_sub(1);
    }

    fn snapshot(&mut self, now: Instant) -> Traffic {
        let mut t = self.t;
        t.rate = self.rate.current(now);
        t.rate_max = self.rate.max;
        t
    }
}

/// Every counter of one worker.
#[derive(Debug, Clone)]
pub struct WorkerStats {
    pub fe: Vec<Counted>,
    pub be: Vec<Counted>,
    pub srv: Vec<Counted>,
    /// Log lines dropped because the log path was full.
    pub dropped_logs: u64,
    pub pipes_used: u64,
    pub pipes_free: u64,
}

/// What a worker sends back when asked: plain copies.
#[derive(Debug, Clone, Default)]
pub struct StatsCopy {
    pub fe: Vec<Traffic>,
    pub be: Vec<Traffic>,
    pub srv: Vec<Traffic>,
    pub dropped_logs: u64,
    pub pipes_used: u64,
    pub pipes_free: u64,
}

impl WorkerStats {
    pub fn new(model: &Model) -> WorkerStats {
        WorkerStats {
            fe: vec![Counted::new(); model.frontends.len()],
            be: vec![Counted::new(); model.backends.len()],
            srv: vec![Counted::new(); model.servers.len()],
            dropped_logs: 0,
            pipes_used: 0,
            pipes_free: 0,
        }
    }

    pub fn copy(&mut self, now: Instant) -> StatsCopy {
        StatsCopy {
            fe: self.fe.iter_mut().map(|c| c.snapshot(now)).collect(),
            be: self.be.iter_mut().map(|c| c.snapshot(now)).collect(),
            srv: self.srv.iter_mut().map(|c| c.snapshot(now)).collect(),
            dropped_logs: self.dropped_logs,
            pipes_used: self.pipes_used,
            pipes_free: self.pipes_free,
        }
    }
}

impl StatsCopy {
    /// Adds another worker's copy.
    pub fn merge(&mut self, o: &StatsCopy) {
        fn add(a: &mut Vec<Traffic>, b: &[Traffic]) {
            if a.len() < b.len() {
                a.resize(b.len(), Traffic::default());
            }
            for (x, y) in a.iter_mut().zip(b) {
                x.merge(y);
            }
        }
        add(&mut self.fe, &o.fe);
        add(&mut self.be, &o.be);
        add(&mut self.srv, &o.srv);
        self.dropped_logs += o.dropped_logs;
        self.pipes_used += o.pipes_used;
        self.pipes_free += o.pipes_free;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sessions_and_rates() {
        let t0 = Instant::now();
        let mut c = Counted::new();
        c.open(t0);
        c.open(t0);
        c.close();
        assert_eq!((c.t.scur, c.t.stot, c.t.smax), (1, 2, 2));
        let s = c.snapshot(t0 + Duration::from_millis(1_100));
        assert_eq!(s.rate, 2);
        let s = c.snapshot(t0 + Duration::from_secs(5));
        assert_eq!(s.rate, 0);
        assert_eq!(s.rate_max, 2);
    }
}
