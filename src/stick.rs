//! Stick tables: the runtime store behind `stick-table`, `track-sc*` and the `sc*`/`src_*`
//! fetches, with HAProxy 2.6's semantics.
//!
//! One [`Table`] per proxy that declares a `stick-table`, named after the proxy; all of them
//! live in [`Tables`], which the supervisor leaks so that every worker and the admin thread
//! share them as `&'static`. An entry is keyed by an address (converted to the table's type
//! as HAProxy converts samples) and holds the counters the table stores. A connection that
//! tracks an entry holds a [`Tracker`]: a reference that keeps the entry alive, and whose
//! `Drop` gives the reference back (RAII, like `balance::counters`' leases).
//!
//! Semantics (HAProxy's `stick_table.c`, `freq_ctr.c`):
//! - rates are `freq_ctr` over a period: the current period's count plus the previous
//!   period's scaled by the part of the current period still to come; a period starts at
//!   the first event after the previous one ended;
//! - an entry expires `expire` after its last update ("touch": tracking, a session, bytes,
//!   the release when `conn_cur` is stored); a referenced entry never goes; without
//!   `expire` entries never expire;
//! - `size` caps the entry count; inserting into a full table first drops the expired
//!   entries, then the `size / 256 + 1` least recently updated unreferenced ones; when all
//!   are referenced the key is not tracked.
//! - a table named by a `stick` rule also stores a server per entry (HAProxy's `server_id`
//!   and `server_key`, the server's numeric id and name): [`Table::stick_store`] writes it
//!   once a connection has its server, [`Table::stick_match`] reads it (and touches the
//!   entry, as HAProxy's `stktable_touch_local` does).
//!
//! Concurrency: entries are spread over mutex-protected shards by key hash; each entry has
//! its own small mutex. Locks are taken shard then entry, never two shards at once, never
//! across I/O. Expiry is lazy (on access, on a full table) plus [`Table::purge`] for a
//! timer and before every dump.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::model::{GpcOp, Model, StickTable, StoreItem, TableRef, TableType};

// ---------------------------------------------------------------------------------------------
// public API

/// Every stick table of the model.
pub struct Tables {
    /// In declaration order.
    tables: Vec<Table>,
    /// Index into `tables` per frontend and per backend id (a `listen` maps both).
    by_frontend: Vec<Option<usize>>,
    by_backend: Vec<Option<usize>>,
}

impl Tables {
    /// One table per proxy with a `stick-table`, named after the proxy. A `listen` section
    /// (a frontend and a backend of one name) has one table.
    pub fn from_model(model: &Model) -> Tables {
        let mut out = Tables {
            tables: Vec::new(),
            by_frontend: vec![None; model.frontends.len()],
            by_backend: vec![None; model.backends.len()],
        };
        // Walk frontends and backends together in declaration order.
        let (mut fi, mut bi) = (0, 0);
        loop {
            let f = model.frontends.get(fi);
            let b = model.backends.get(bi);
            let take_frontend = match (f, b) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(f), Some(b)) => f.span.file != b.span.file || f.span.line <= b.span.line,
            };
            let (name, table, slot) = if take_frontend {
                fi += 1;
                let f = &model.frontends[fi - 1];
                (&f.name, &f.stick_table, TableRef::Frontend(f.id))
            } else {
                bi += 1;
                let b = &model.backends[bi - 1];
                (&b.name, &b.stick_table, TableRef::Backend(b.id))
            };
            let Some(table) = table else { continue };
            // A name already taken (the other half of a `listen`) shares that table, as
            // the configuration resolves table names to the first proxy declaring one.
            let idx = match out.tables.iter().position(|t| t.name == *name) {
                Some(i) => i,
                None => {
                    out.tables.push(Table::new(name, table));
                    out.tables.len() - 1
                }
            };
            match slot {
                TableRef::Frontend(id) => out.by_frontend[id.index()] = Some(idx),
                TableRef::Backend(id) => out.by_backend[id.index()] = Some(idx),
            }
        }
        // A table a `stick` rule names stores a server per entry (HAProxy allocates
        // server_id and server_key in it).
        for rule in model.backends.iter().flat_map(|b| &b.sticking) {
            if let Some(t) = out.index(rule.table).and_then(|i| out.tables.get_mut(i)) {
                t.store.server_id = true;
            }
        }
        out
    }

    /// Tables not attached to any proxy (tests, tools).
    pub fn from_tables(tables: Vec<Table>) -> Tables {
        Tables {
            tables,
            by_frontend: Vec::new(),
            by_backend: Vec::new(),
        }
    }

    pub fn get(&self, r: TableRef) -> Option<&Table> {
        self.index(r).and_then(|i| self.tables.get(i))
    }

    pub fn by_name(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// In declaration order (HAProxy's `show table` lists them the other way round).
    pub fn iter(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter()
    }

    /// Drops the expired unreferenced entries of every table.
    pub fn purge(&self, now: Instant) {
        for t in &self.tables {
            t.purge(now);
        }
    }

    /// The index in `tables` of the table `r` names.
    fn index(&self, r: TableRef) -> Option<usize> {
        match r {
            TableRef::Frontend(id) => self.by_frontend.get(id.index()).copied().flatten(),
            TableRef::Backend(id) => self.by_backend.get(id.index()).copied().flatten(),
        }
    }
}

/// One stick table. `Send + Sync`: shared by every worker thread.
pub struct Table {
    name: String,
    kind: TableType,
    size: usize,
    /// In milliseconds; None: entries never expire.
    expire: Option<u64>,
    store: Store,
    /// Time zero of the table's millisecond clock.
    epoch: Instant,
    hasher: RandomState,
    shards: Box<[Mutex<Shard>]>,
    /// Entries in the table, changed only under a shard lock with the shard's map.
    used: AtomicUsize,
}

/// The counters of an entry. A field is None when the table does not store that item
/// (HAProxy then fails the fetch).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub conn_cnt: Option<u64>,
    pub conn_cur: Option<u32>,
    pub conn_rate: Option<u32>,
    pub sess_cnt: Option<u64>,
    pub sess_rate: Option<u32>,
    pub bytes_in_cnt: Option<u64>,
    pub bytes_out_cnt: Option<u64>,
    /// General purpose counters 0 and 1 and their rates.
    pub gpc: [Option<u32>; 2],
    pub gpc_rate: [Option<u32>; 2],
    /// The server a `stick` rule stored (0: none yet), in tables `stick` rules use.
    pub server_id: Option<u32>,
}

/// What the table stores, with the rate periods in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Store {
    pub conn_cnt: bool,
    pub conn_cur: bool,
    pub conn_rate: Option<u64>,
    pub sess_cnt: bool,
    pub sess_rate: Option<u64>,
    pub bytes_in_cnt: bool,
    pub bytes_out_cnt: bool,
    pub gpc: [bool; 2],
    pub gpc_rate: [Option<u64>; 2],
    /// `server_id` and `server_key`: a `stick` rule uses the table.
    pub server_id: bool,
}

/// One entry as `show table` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryView {
    /// The entry's address in memory (HAProxy prints its `stksess` pointer).
    pub id: usize,
    pub key: IpAddr,
    /// References held by connections (`use=`).
    pub refs: u32,
    /// Milliseconds until the entry expires; 0 without `expire` or when overdue.
    pub exp_ms: u64,
    pub counts: Counts,
    /// The stored server's name (`server_key`), in tables `stick` rules use.
    pub server_key: Option<Arc<str>>,
}

/// What `clear table <t> key <k>` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleared {
    Removed,
    NotFound,
    InUse,
}

impl Table {
    pub fn new(name: &str, t: &StickTable) -> Table {
        let mut store = Store::default();
        let period = |d: &Duration| Some((d.as_millis() as u64).clamp(1, u64::from(u32::MAX)));
        for item in &t.store {
            match item {
                StoreItem::ConnCnt => store.conn_cnt = true,
                StoreItem::ConnCur => store.conn_cur = true,
                StoreItem::ConnRate(p) => store.conn_rate = period(p),
                StoreItem::SessCnt => store.sess_cnt = true,
                StoreItem::SessRate(p) => store.sess_rate = period(p),
                StoreItem::BytesInCnt => store.bytes_in_cnt = true,
                StoreItem::BytesOutCnt => store.bytes_out_cnt = true,
                StoreItem::Gpc0 => store.gpc[0] = true,
                StoreItem::Gpc1 => store.gpc[1] = true,
                StoreItem::Gpc0Rate(p) => store.gpc_rate[0] = period(p),
                StoreItem::Gpc1Rate(p) => store.gpc_rate[1] = period(p),
            }
        }
        // HAProxy: an expire of 0 is no expire.
        let expire = t.expire.map(|d| d.as_millis() as u64).filter(|&ms| ms > 0);
        Table {
            name: name.to_string(),
            kind: t.kind,
            size: usize::try_from(t.size).unwrap_or(usize::MAX).max(1),
            expire,
            store,
            epoch: Instant::now(),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            used: AtomicUsize::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> TableType {
        self.kind
    }

    /// The configured `size`.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Entries currently in the table (expired ones count until purged).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn store(&self) -> Store {
        self.store
    }

    /// Whether `key` can be a key of this table (HAProxy's sample cast to the table type).
    pub fn fits(&self, key: IpAddr) -> bool {
        self.convert(key).is_some()
    }

    /// Marks the table as one `stick` rules use: entries store a server (what
    /// [`Tables::from_model`] does for the tables the model's rules name).
    pub fn with_server_id(mut self) -> Table {
        self.store.server_id = true;
        self
    }

    /// `stick match`: the server id stored for `key`, if a live entry has one. A found
    /// entry is touched (its expiry restarts), as HAProxy does on a match.
    pub fn stick_match(&self, key: IpAddr, now: Instant) -> Option<u32> {
        self.with_live(key, now, |st, ms| {
            st.touched = st.touched.max(ms);
            st.server.as_ref().map(|(id, _)| *id)
        })?
    }

    /// `stick store-request`, once the connection has its server: finds or creates the
    /// entry of `key` (making room as a track does) and stores the server's id and name
    /// in it. False when the key does not fit the table or the table is full of
    /// referenced entries.
    pub fn stick_store(&self, key: IpAddr, server: (u32, &Arc<str>), now: Instant) -> bool {
        let Some(key) = self.convert(key) else {
            return false;
        };
        let ms = self.ms(now);
        let (id, name) = server;
        let mut set = |st: &mut EntryState| {
            st.server = Some((id, Arc::clone(name)));
            st.touched = st.touched.max(ms);
        };
        self.find_or_make(key, ms, &mut set).is_some()
    }

    /// `track-sc`: finds or creates the entry of `key`, counts a new connection on it and
    /// takes a reference. None when the key does not fit the table (a v6 address that is
    /// not v4-mapped, into an `ip` table) or when the table is full of referenced entries.
    pub fn track(&'static self, key: IpAddr, now: Instant) -> Option<Tracker> {
        let key = self.convert(key)?;
        let ms = self.ms(now);
        let entry = self.find_or_make(key, ms, &mut |st| self.count_connection(st, ms))?;
        Some(Tracker {
            table: self,
            entry,
            released: false,
        })
    }

    /// `src_{get,inc,clr}_gpc<idx>` and `src_gpc<idx>_rate` on `key`: Get and Rate read
    /// the live entry (None if there is none or the table does not store the data), Inc
    /// and Clr create the entry if needed, as HAProxy does.
    /// With `create` false (an `sc<n>_*` fetch naming another table), Inc and Clr only
    /// change an existing entry.
    pub fn gpc(
        &self,
        key: IpAddr,
        idx: usize,
        op: GpcOp,
        create: bool,
        now: Instant,
    ) -> Option<u32> {
        let idx = idx.min(1);
        if !self.stores_gpc(idx, op) {
            return None;
        }
        if !(create && matches!(op, GpcOp::Inc | GpcOp::Clr)) {
            return self.with_live(key, now, |st, ms| self.gpc_op(st, idx, op, ms))?;
        }
        let key = self.convert(key)?;
        let ms = self.ms(now);
        let mut out = None;
        self.find_or_make(key, ms, &mut |st| out = self.gpc_op(st, idx, op, ms))?;
        out
    }

    /// Whether the table stores what `op` on counter `idx` needs.
    pub fn stores_gpc(&self, idx: usize, op: GpcOp) -> bool {
        let s = &self.store;
        match op {
            GpcOp::Rate => s.gpc_rate[idx].is_some(),
            // Inc also counts in the rate alone; Clr needs the counter.
            GpcOp::Inc => s.gpc[idx] || s.gpc_rate[idx].is_some(),
            GpcOp::Get | GpcOp::Clr => s.gpc[idx],
        }
    }

    /// One general purpose counter operation on an entry, as HAProxy's
    /// `smp_fetch_sc_{get,inc,clr}_gpc*`: Inc adds one to the counter and its rate and
    /// returns the counter (or the rate when only the rate is stored); Clr returns the
    /// counter and zeroes it. Changes touch the entry.
    fn gpc_op(&self, st: &mut EntryState, idx: usize, op: GpcOp, ms: u64) -> Option<u32> {
        let s = &self.store;
        match op {
            GpcOp::Get => s.gpc[idx].then_some(st.gpc[idx]),
            GpcOp::Rate => s.gpc_rate[idx].map(|p| st.gpc_rate[idx].read(ms, p)),
            GpcOp::Inc => {
                if let Some(p) = s.gpc_rate[idx] {
                    st.gpc_rate[idx].update(ms, p, 1);
                }
                if s.gpc[idx] {
                    st.gpc[idx] = st.gpc[idx].wrapping_add(1);
                }
                st.touched = st.touched.max(ms);
                if s.gpc[idx] {
                    Some(st.gpc[idx])
                } else {
                    s.gpc_rate[idx].map(|p| st.gpc_rate[idx].read(ms, p))
                }
            }
            GpcOp::Clr => {
                let was = st.gpc[idx];
                st.gpc[idx] = 0;
                st.touched = st.touched.max(ms);
                s.gpc[idx].then_some(was)
            }
        }
    }

    /// The counters of `key`, without creating or refreshing its entry.
    pub fn lookup(&self, key: IpAddr, now: Instant) -> Option<Counts> {
        self.with_live(key, now, |st, ms| self.counts_of(st, ms))
    }

    /// Drops every expired entry that no connection references.
    pub fn purge(&self, now: Instant) {
        if self.expire.is_some() {
            self.purge_ms(self.ms(now));
        }
    }

    /// Every live entry, sorted by key as HAProxy's tree orders them (by address bytes).
    pub fn entries(&self, now: Instant) -> Vec<EntryView> {
        let ms = self.ms(now);
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            for e in shard.map.values() {
                let st = lock(&e.state);
                if !self.expired(&st, ms) {
                    out.push(self.view(e, &st, ms));
                }
            }
        }
        out.sort_by_key(|e| e.key);
        out
    }

    /// The live entry of `key` (a key that does not fit the table finds nothing).
    pub fn entry(&self, key: IpAddr, now: Instant) -> Option<EntryView> {
        let key = self.convert(key)?;
        let ms = self.ms(now);
        let shard = lock(self.shard(&key));
        let e = shard.map.get(&key)?;
        let st = lock(&e.state);
        (!self.expired(&st, ms)).then(|| self.view(e, &st, ms))
    }

    /// `clear table <t> key <k>`: removes the entry unless a connection references it.
    pub fn clear_key(&self, key: IpAddr, now: Instant) -> Cleared {
        let Some(key) = self.convert(key) else {
            return Cleared::NotFound;
        };
        let ms = self.ms(now);
        let mut shard = lock(self.shard(&key));
        let Some(entry) = shard.map.get(&key).map(Arc::clone) else {
            return Cleared::NotFound;
        };
        let st = lock(&entry.state);
        let expired = self.expired(&st, ms);
        if st.refs > 0 {
            return Cleared::InUse;
        }
        drop(st);
        shard.map.remove(&key);
        self.used.fetch_sub(1, Ordering::Relaxed);
        if expired {
            Cleared::NotFound
        } else {
            Cleared::Removed
        }
    }

    /// `clear table <t> [data filters]`: removes every unreferenced entry for which `remove`
    /// says true; returns how many went.
    pub fn clear_where(&self, now: Instant, remove: impl Fn(&Counts) -> bool) -> usize {
        let ms = self.ms(now);
        let mut total = 0;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let before = shard.map.len();
            shard.map.retain(|_, e| {
                let st = lock(&e.state);
                if st.refs > 0 {
                    return true;
                }
                !(self.expired(&st, ms) || remove(&self.counts_of(&st, ms)))
            });
            let gone = before - shard.map.len();
            self.used.fetch_sub(gone, Ordering::Relaxed);
            total += gone;
        }
        total
    }
}

/// One connection's reference on an entry. Dropping it gives the reference back.
pub struct Tracker {
    table: &'static Table,
    entry: Arc<Entry>,
    released: bool,
}

impl Tracker {
    pub fn table(&self) -> &'static Table {
        self.table
    }

    /// The entry's key, as stored (converted to the table's type).
    pub fn key(&self) -> IpAddr {
        self.entry.key
    }

    pub fn counts(&self, now: Instant) -> Counts {
        let ms = self.table.ms(now);
        self.table.counts_of(&lock(&self.entry.state), ms)
    }

    /// A session on the tracked connection: sess_cnt + 1, a sess_rate event.
    pub fn session(&self, now: Instant) {
        let t = self.table;
        let ms = t.ms(now);
        let mut st = lock(&self.entry.state);
        if t.store.sess_cnt {
            st.sess_cnt = st.sess_cnt.wrapping_add(1);
        }
        if let Some(p) = t.store.sess_rate {
            st.sess_rate.update(ms, p, 1);
        }
        if t.store.sess_cnt || t.store.sess_rate.is_some() {
            st.touched = ms;
        }
    }

    /// A general purpose counter operation on the tracked entry (`sc<n>_*_gpc<idx>`,
    /// `sc-inc-gpc<idx>`); None when the table does not store what it needs.
    pub fn gpc(&self, idx: usize, op: GpcOp, now: Instant) -> Option<u32> {
        let t = self.table;
        let idx = idx.min(1);
        if !t.stores_gpc(idx, op) {
            return None;
        }
        let ms = t.ms(now);
        let mut st = lock(&self.entry.state);
        t.gpc_op(&mut st, idx, op, ms)
    }

    /// Bytes from the client (`bytes_in`) and to the client (`bytes_out`).
    pub fn add_bytes(&self, bytes_in: u64, bytes_out: u64) {
        let t = self.table;
        let touched_in = bytes_in > 0 && t.store.bytes_in_cnt;
        let touched_out = bytes_out > 0 && t.store.bytes_out_cnt;
        if !touched_in && !touched_out {
            return;
        }
        let ms = t.ms(Instant::now());
        let mut st = lock(&self.entry.state);
        if touched_in {
            st.bytes_in = st.bytes_in.wrapping_add(bytes_in);
        }
        if touched_out {
            st.bytes_out = st.bytes_out.wrapping_add(bytes_out);
        }
        st.touched = st.touched.max(ms);
    }

    /// Gives the reference back at `now` (what `Drop` does at `Instant::now()`).
    pub fn release(mut self, now: Instant) {
        self.release_at(now);
    }

    fn release_at(&mut self, now: Instant) {
        if self.released {
            return;
        }
        self.released = true;
        let t = self.table;
        let ms = t.ms(now);
        let mut shard = lock(t.shard(&self.entry.key));
        let mut st = lock(&self.entry.state);
        debug_assert!(st.refs > 0, "a tracker without a reference");
        st.refs = st.refs.saturating_sub(1);
        if t.store.conn_cur {
            st.conn_cur = st.conn_cur.saturating_sub(1);
            st.touched = st.touched.max(ms);
        }
        // An entry that expired while referenced goes now, as in HAProxy.
        if t.expired(&st, ms) {
            drop(st);
            let ours = shard
                .map
                .get(&self.entry.key)
                .is_some_and(|e| Arc::ptr_eq(e, &self.entry));
            if ours {
                shard.map.remove(&self.entry.key);
                t.used.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.release_at(Instant::now());
    }
}

// ---------------------------------------------------------------------------------------------
// internals

/// Shards per table: enough that worker threads rarely meet on one lock.
const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    map: HashMap<IpAddr, Arc<Entry>>,
}

struct Entry {
    key: IpAddr,
    state: Mutex<EntryState>,
}

#[derive(Default)]
struct EntryState {
    refs: u32,
    /// Last update, in table milliseconds: the entry expires `expire` after it.
    touched: u64,
    /// HAProxy keeps these two on 32 bits (they wrap).
    conn_cnt: u32,
    sess_cnt: u32,
    conn_cur: u32,
    bytes_in: u64,
    bytes_out: u64,
    conn_rate: FreqCtr,
    sess_rate: FreqCtr,
    gpc: [u32; 2],
    gpc_rate: [FreqCtr; 2],
    /// What a `stick` rule stored: the server's numeric id and its name.
    server: Option<(u32, Arc<str>)>,
}

/// HAProxy's `freq_ctr` over a period: events in the current period and in the previous
/// one, the current period starting at `tick` (milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FreqCtr {
    tick: u64,
    curr: u32,
    prev: u32,
    /// False until the first event (HAProxy's zeroed counter, whose first update starts
    /// a period at that event).
    started: bool,
}

impl FreqCtr {
    /// `update_freq_ctr_period`.
    pub(crate) fn update(&mut self, now: u64, period: u64, inc: u32) {
        if !self.started {
            *self = FreqCtr {
                tick: now,
                curr: inc,
                prev: 0,
                started: true,
            };
            return;
        }
        if now.saturating_sub(self.tick) < period {
            self.curr = self.curr.wrapping_add(inc);
            return;
        }
        self.prev = self.curr;
        self.curr = inc;
        self.tick += period;
        if now.saturating_sub(self.tick) >= period {
            // At least two periods went by without an event.
            self.prev = 0;
            self.tick = now;
        }
    }

    /// `read_freq_ctr_period`: `freq_ctr_total(ctr, period, -1) / period`, with its
    /// correction against flapping at very low rates.
    pub(crate) fn read(&self, now: u64, period: u64) -> u32 {
        if !self.started {
            return 0;
        }
        let period_i = period as i64;
        let mut remain = self.tick as i64 + period_i - now as i64;
        let (mut curr, mut past) = (u64::from(self.curr), u64::from(self.prev));
        if remain < 0 {
            // Past the current period: part of it may still count as the previous one.
            remain += period_i;
            past = if remain >= 0 { curr } else { 0 };
            curr = 0;
        }
        if curr == 0 && past <= 1 {
            return past as u32;
        }
        let remain = remain.clamp(0, period_i) as u64;
        let total = past * remain + curr * period;
        (total / period).min(u64::from(u32::MAX)) as u32
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the tables down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Table {
    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn shard(&self, key: &IpAddr) -> &Mutex<Shard> {
        let h = self.hasher.hash_one(key) as usize;
        &self.shards[h % self.shards.len()]
    }

    /// The key as the table stores it (HAProxy's ipv6->ip and ip->ipv6 sample casts).
    fn convert(&self, key: IpAddr) -> Option<IpAddr> {
        match (self.kind, key) {
            (TableType::Ip, IpAddr::V4(_)) | (TableType::Ipv6, IpAddr::V6(_)) => Some(key),
            (TableType::Ip, IpAddr::V6(v6)) => v4_mapped(&v6).map(IpAddr::V4),
            (TableType::Ipv6, IpAddr::V4(v4)) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        }
    }

    /// `apply` to the live entry of `key` (the key converted, `now` in table milliseconds);
    /// None when there is none. An expired entry found on the way is removed, as HAProxy's
    /// expiry task would have done already.
    fn with_live<R>(
        &self,
        key: IpAddr,
        now: Instant,
        apply: impl FnOnce(&mut EntryState, u64) -> R,
    ) -> Option<R> {
        let key = self.convert(key)?;
        let ms = self.ms(now);
        let mut shard = lock(self.shard(&key));
        let entry = Arc::clone(shard.map.get(&key)?);
        let mut st = lock(&entry.state);
        if self.expired(&st, ms) {
            drop(st);
            shard.map.remove(&key);
            self.used.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(apply(&mut st, ms))
    }

    fn expired(&self, st: &EntryState, ms: u64) -> bool {
        st.refs == 0 && self.expire.is_some_and(|exp| ms >= st.touched + exp)
    }

    fn counts_of(&self, st: &EntryState, ms: u64) -> Counts {
        let s = &self.store;
        Counts {
            conn_cnt: s.conn_cnt.then_some(u64::from(st.conn_cnt)),
            conn_cur: s.conn_cur.then_some(st.conn_cur),
            conn_rate: s.conn_rate.map(|p| st.conn_rate.read(ms, p)),
            sess_cnt: s.sess_cnt.then_some(u64::from(st.sess_cnt)),
            sess_rate: s.sess_rate.map(|p| st.sess_rate.read(ms, p)),
            bytes_in_cnt: s.bytes_in_cnt.then_some(st.bytes_in),
            bytes_out_cnt: s.bytes_out_cnt.then_some(st.bytes_out),
            gpc: [0, 1].map(|i| s.gpc[i].then_some(st.gpc[i])),
            gpc_rate: [0, 1].map(|i| s.gpc_rate[i].map(|p| st.gpc_rate[i].read(ms, p))),
            server_id: s
                .server_id
                .then(|| st.server.as_ref().map_or(0, |(id, _)| *id)),
        }
    }

    /// Counts a new connection on `st` and takes a reference.
    fn count_connection(&self, st: &mut EntryState, ms: u64) {
        let s = &self.store;
        st.refs += 1;
        if s.conn_cnt {
            st.conn_cnt = st.conn_cnt.wrapping_add(1);
        }
        if s.conn_cur {
            st.conn_cur = st.conn_cur.saturating_add(1);
        }
        if let Some(p) = s.conn_rate {
            st.conn_rate.update(ms, p, 1);
        }
        if s.conn_cnt || s.conn_cur || s.conn_rate.is_some() {
            st.touched = st.touched.max(ms);
        }
    }

    /// One attempt: `apply` to the existing live entry, or to a new one if there is room.
    /// The live entry of `key` (converted), or a new one, `apply` run on it under its lock;
    /// when the table is full, room is made (as HAProxy's eviction) and it tries again, a
    /// few times. None when the table is full of referenced entries.
    fn find_or_make(
        &self,
        key: IpAddr,
        ms: u64,
        apply: &mut dyn FnMut(&mut EntryState),
    ) -> Option<Arc<Entry>> {
        for _ in 0..3 {
            if let Some(e) = self.entry_once(key, ms, apply) {
                return Some(e);
            }
            if !self.make_room(ms) {
                return None;
            }
        }
        None
    }

    fn entry_once(
        &self,
        key: IpAddr,
        ms: u64,
        apply: &mut dyn FnMut(&mut EntryState),
    ) -> Option<Arc<Entry>> {
        let mut shard = lock(self.shard(&key));
        if let Some(e) = shard.map.get(&key).map(Arc::clone) {
            let mut st = lock(&e.state);
            if !self.expired(&st, ms) {
                apply(&mut st);
                drop(st);
                return Some(e);
            }
            // Expired: HAProxy's expiry task would have removed it already.
            drop(st);
            shard.map.remove(&key);
            self.used.fetch_sub(1, Ordering::Relaxed);
        }
        let size = self.size;
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                (u < size).then_some(u + 1)
            })
            .ok()?;
        let mut st = EntryState {
            touched: ms,
            ..EntryState::default()
        };
        apply(&mut st);
        let e = Arc::new(Entry {
            key,
            state: Mutex::new(st),
        });
        shard.map.insert(key, Arc::clone(&e));
        Some(e)
    }

    /// A full table: drops the expired entries, then the oldest unreferenced ones
    /// (HAProxy's `stktable_trash_oldest`, `size / 256 + 1` at a time). False when
    /// nothing could go.
    fn make_room(&self, ms: u64) -> bool {
        let before = self.used();
        if self.expire.is_some() {
            self.purge_ms(ms);
        }
        if self.used() < self.size {
            return true;
        }
        let batch = (self.size >> 8) + 1;
        // The `batch` least recently updated unreferenced entries: (touched, key).
        let mut oldest: Vec<(u64, IpAddr)> = Vec::with_capacity(batch + 1);
        for shard in self.shards.iter() {
            let shard = lock(shard);
            for e in shard.map.values() {
                let st = lock(&e.state);
                if st.refs > 0 {
                    continue;
                }
                let cand = (st.touched, e.key);
                if oldest.len() < batch || cand < oldest[oldest.len() - 1] {
                    let at = oldest.partition_point(|x| *x < cand);
                    oldest.insert(at, cand);
                    oldest.truncate(batch);
                }
            }
        }
        let mut gone = 0;
        for (touched, key) in oldest {
            let mut shard = lock(self.shard(&key));
            let still = shard.map.get(&key).is_some_and(|e| {
                let st = lock(&e.state);
                st.refs == 0 && st.touched == touched
            });
            if still {
                shard.map.remove(&key);
                self.used.fetch_sub(1, Ordering::Relaxed);
                gone += 1;
            }
        }
        gone > 0 || self.used() < before
    }

    fn purge_ms(&self, ms: u64) {
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let before = shard.map.len();
            shard.map.retain(|_, e| !self.expired(&lock(&e.state), ms));
            self.used
                .fetch_sub(before - shard.map.len(), Ordering::Relaxed);
        }
    }

    /// `e` as `show table` prints it; `st` is its locked state.
    fn view(&self, e: &Arc<Entry>, st: &EntryState, ms: u64) -> EntryView {
        EntryView {
            id: Arc::as_ptr(e) as usize,
            key: e.key,
            refs: st.refs,
            exp_ms: self
                .expire
                .map_or(0, |exp| (st.touched + exp).saturating_sub(ms)),
            counts: self.counts_of(st, ms),
            server_key: st.server.as_ref().map(|(_, n)| Arc::clone(n)),
        }
    }
}

/// The IPv4 address of a v4-mapped IPv6 address (`::ffff:a.b.c.d`, HAProxy's v6tov4).
fn v4_mapped(v6: &Ipv6Addr) -> Option<Ipv4Addr> {
    let o = v6.octets();
    (o[..10] == [0; 10] && o[10] == 0xff && o[11] == 0xff)
        .then(|| Ipv4Addr::new(o[12], o[13], o[14], o[15]))
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::error::Span;

    /// A table specification as the config would give it (`expire` in milliseconds).
    pub(crate) fn spec(
        kind: TableType,
        size: u64,
        expire: Option<u64>,
        store: &[StoreItem],
    ) -> StickTable {
        StickTable {
            span: Span::new(&Arc::from("t.cfg"), 1),
            kind,
            size,
            expire: expire.map(Duration::from_millis),
            store: store.to_vec(),
        }
    }

    fn all() -> Vec<StoreItem> {
        vec![
            StoreItem::ConnCur,
            StoreItem::ConnCnt,
            StoreItem::ConnRate(Duration::from_secs(10)),
            StoreItem::SessCnt,
            StoreItem::SessRate(Duration::from_secs(10)),
            StoreItem::BytesInCnt,
            StoreItem::BytesOutCnt,
        ]
    }

    fn leak(t: Table) -> &'static Table {
        Box::leak(Box::new(t))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn at(t: &Table, ms: u64) -> Instant {
        t.epoch + Duration::from_millis(ms)
    }

    #[test]
    fn counting_and_conn_cur_back_to_zero() {
        let t = leak(Table::new("fe", &spec(TableType::Ip, 100, None, &all())));
        let a = t.track(ip("10.0.0.1"), at(t, 0)).unwrap();
        let b = t.track(ip("10.0.0.1"), at(t, 1)).unwrap();
        a.session(at(t, 1));
        b.session(at(t, 1));
        a.add_bytes(10, 20);
        b.add_bytes(1, 0);
        let c = a.counts(at(t, 2));
        assert_eq!(c.conn_cnt, Some(2));
        assert_eq!(c.conn_cur, Some(2));
        assert_eq!(c.conn_rate, Some(2));
        assert_eq!(c.sess_cnt, Some(2));
        assert_eq!(c.sess_rate, Some(2));
        assert_eq!(c.bytes_in_cnt, Some(11));
        assert_eq!(c.bytes_out_cnt, Some(20));
        assert_eq!(t.entries(at(t, 2))[0].refs, 2);
        drop(a);
        b.release(at(t, 3));
        let c = t.lookup(ip("10.0.0.1"), at(t, 4)).unwrap();
        assert_eq!(c.conn_cur, Some(0));
        assert_eq!(c.conn_cnt, Some(2));
        assert_eq!(t.entries(at(t, 4))[0].refs, 0);
        assert_eq!(t.used(), 1);
        assert_eq!(t.lookup(ip("10.0.0.2"), at(t, 4)), None);
        assert_eq!(t.used(), 1, "lookup creates nothing");
    }

    #[test]
    fn stick_store_then_match() {
        let t = leak(
            Table::new(
                "be",
                &spec(TableType::Ip, 10, Some(1_000), &[StoreItem::ConnCnt]),
            )
            .with_server_id(),
        );
        let s1: Arc<str> = Arc::from("s1");
        let s2: Arc<str> = Arc::from("s2");
        assert_eq!(t.stick_match(ip("10.0.0.1"), at(t, 0)), None);
        assert!(t.stick_store(ip("10.0.0.1"), (7, &s1), at(t, 0)));
        assert_eq!(t.stick_match(ip("10.0.0.1"), at(t, 10)), Some(7));
        // A store overwrites (the server a connection moved to after a failure).
        assert!(t.stick_store(ip("10.0.0.1"), (2, &s2), at(t, 20)));
        let e = &t.entries(at(t, 20))[0];
        assert_eq!(
            (e.counts.server_id, e.server_key.as_deref(), e.refs),
            (Some(2), Some("s2"), 0)
        );
        // A stored entry counts no connection, and a match touches it: still alive
        // 1 s after the store because a match came at 900.
        assert_eq!(e.counts.conn_cnt, Some(0));
        assert_eq!(t.stick_match(ip("10.0.0.1"), at(t, 900)), Some(2));
        assert_eq!(t.stick_match(ip("10.0.0.1"), at(t, 1_899)), Some(2));
        assert_eq!(t.stick_match(ip("10.0.0.1"), at(t, 2_899)), None, "expired");
        assert_eq!(t.used(), 0);
        // A tracked entry has no server: server_id 0, and no match.
        drop(t.track(ip("10.0.0.2"), at(t, 3_000)).unwrap());
        assert_eq!(
            t.lookup(ip("10.0.0.2"), at(t, 3_000)).unwrap().server_id,
            Some(0)
        );
        assert_eq!(t.stick_match(ip("10.0.0.2"), at(t, 3_000)), None);
        // Keys convert as for tracking; a v6 key does not fit an ip table.
        assert!(t.fits(ip("::ffff:10.0.0.3")) && !t.fits(ip("::1")));
        assert!(!t.stick_store(ip("::1"), (7, &s1), at(t, 3_000)));
        // Without `with_server_id` the counts carry no server.
        let plain = leak(Table::new("fe", &spec(TableType::Ip, 10, None, &[])));
        assert!(plain.stick_store(ip("10.0.0.1"), (7, &s1), at(plain, 0)));
        assert_eq!(
            plain
                .lookup(ip("10.0.0.1"), at(plain, 0))
                .unwrap()
                .server_id,
            None
        );
    }

    #[test]
    fn a_full_sticky_table_evicts_the_oldest() {
        // `stick on dst` with `size 1`: the single entry is replaced by a new key.
        let t = leak(Table::new("be", &spec(TableType::Ip, 1, None, &[])).with_server_id());
        let s1: Arc<str> = Arc::from("s1");
        assert!(t.stick_store(ip("10.0.0.1"), (1, &s1), at(t, 0)));
        assert!(t.stick_store(ip("10.0.0.2"), (1, &s1), at(t, 5)));
        assert_eq!(t.used(), 1);
        assert_eq!(t.stick_match(ip("10.0.0.1"), at(t, 6)), None);
        assert_eq!(t.stick_match(ip("10.0.0.2"), at(t, 6)), Some(1));
        // An entry a connection references is never evicted: nothing is stored.
        let held = t.track(ip("10.0.0.2"), at(t, 7)).unwrap();
        assert!(!t.stick_store(ip("10.0.0.3"), (1, &s1), at(t, 8)));
        drop(held);
    }

    #[test]
    fn unstored_items_are_none() {
        let t = leak(Table::new(
            "fe",
            &spec(TableType::Ip, 10, None, &[StoreItem::ConnCnt]),
        ));
        let a = t.track(ip("10.0.0.1"), at(t, 0)).unwrap();
        a.session(at(t, 0));
        a.add_bytes(5, 5);
        assert_eq!(
            a.counts(at(t, 0)),
            Counts {
                conn_cnt: Some(1),
                ..Counts::default()
            }
        );
    }

    #[test]
    fn freq_ctr_is_haproxys_sliding_window() {
        let p = 10_000;
        let mut f = FreqCtr::default();
        assert_eq!(f.read(5, p), 0);
        // A burst of 4 at t=1000: the period runs 1000..11000.
        for _ in 0..4 {
            f.update(1_000, p, 1);
        }
        assert_eq!(f.read(1_000, p), 4);
        assert_eq!(f.read(10_999, p), 4);
        // Next period: the 4 fade out with the part of the period still to come
        // (what HAProxy 2.6.12 showed: 4 for 10 s, then 3, 2, 1, 0 over the next 10 s).
        assert_eq!(f.read(11_000, p), 4);
        assert_eq!(f.read(11_001, p), 3); // 4 * 9999 / 10000
        assert_eq!(f.read(13_500, p), 3); // 4 * 7500 / 10000
        assert_eq!(f.read(13_501, p), 2);
        assert_eq!(f.read(16_000, p), 2);
        assert_eq!(f.read(16_001, p), 1);
        assert_eq!(f.read(18_501, p), 0);
        assert_eq!(f.read(21_000, p), 0);
        assert_eq!(f.read(40_000, p), 0);
        // An event in the next period: 2 now, plus what is left of the 4.
        f.update(13_000, p, 1);
        f.update(13_000, p, 1);
        assert_eq!(
            f,
            FreqCtr {
                tick: 11_000,
                curr: 2,
                prev: 4,
                started: true
            }
        );
        assert_eq!(f.read(13_000, p), 2 + 3); // 2 + 4 * 8000 / 10000 = 5.2
                                              // Two periods without events: the window restarts at the event.
        f.update(50_000, p, 1);
        assert_eq!(
            f,
            FreqCtr {
                tick: 50_000,
                curr: 1,
                prev: 0,
                started: true
            }
        );
        // A single event keeps reading 1 over the next period (no flapping).
        assert_eq!(f.read(59_999, p), 1);
        assert_eq!(f.read(65_000, p), 1);
        assert_eq!(f.read(69_999, p), 1);
        assert_eq!(f.read(70_000, p), 1);
        assert_eq!(f.read(70_001, p), 0);
    }

    #[test]
    fn rates_through_the_table() {
        let t = leak(Table::new("fe", &spec(TableType::Ip, 10, None, &all())));
        for _ in 0..5 {
            drop(t.track(ip("10.0.0.1"), at(t, 100)).unwrap());
        }
        let r = |ms| t.lookup(ip("10.0.0.1"), at(t, ms)).unwrap().conn_rate;
        assert_eq!(r(5_000), Some(5));
        assert_eq!(r(15_100), Some(2)); // 5 * 5000 / 10000 = 2.5
        assert_eq!(r(25_100), Some(0));
        // sess_rate only moves with sessions.
        assert_eq!(
            t.lookup(ip("10.0.0.1"), at(t, 200)).unwrap().sess_rate,
            Some(0)
        );
    }

    #[test]
    fn expiry_only_when_unreferenced() {
        let t = leak(Table::new(
            "fe",
            &spec(TableType::Ip, 10, Some(1_000), &[StoreItem::ConnCnt]),
        ));
        let a = t.track(ip("10.0.0.1"), at(t, 0)).unwrap();
        drop(t.track(ip("10.0.0.2"), at(t, 0)).unwrap());
        // Long past the expiry: the referenced entry stays, the other goes.
        t.purge(at(t, 5_000));
        assert_eq!(t.used(), 1);
        assert!(t.lookup(ip("10.0.0.1"), at(t, 5_000)).is_some());
        assert!(t.lookup(ip("10.0.0.2"), at(t, 5_000)).is_none());
        let v = t.entries(at(t, 5_000));
        assert_eq!((v[0].refs, v[0].exp_ms), (1, 0));
        // Without conn_cur stored, the release does not refresh the entry: overdue, it
        // goes at once (HAProxy's stksess_kill_if_expired).
        a.release(at(t, 5_000));
        assert_eq!(t.used(), 0);

        // With conn_cur stored the release is an update: expiry restarts from it.
        let t = leak(Table::new(
            "fe",
            &spec(TableType::Ip, 10, Some(1_000), &[StoreItem::ConnCur]),
        ));
        let a = t.track(ip("10.0.0.1"), at(t, 0)).unwrap();
        a.release(at(t, 5_000));
        assert_eq!(t.entries(at(t, 5_200))[0].exp_ms, 800);
        assert!(t.lookup(ip("10.0.0.1"), at(t, 5_999)).is_some());
        assert!(t.lookup(ip("10.0.0.1"), at(t, 6_000)).is_none());
        assert_eq!(t.used(), 0, "lookup drops what it finds expired");
        // A track after expiry starts a fresh entry.
        drop(t.track(ip("10.0.0.1"), at(t, 0)).unwrap());
        let b = t.track(ip("10.0.0.1"), at(t, 9_000)).unwrap();
        assert_eq!(b.counts(at(t, 9_000)).conn_cur, Some(1));
    }

    #[test]
    fn without_expire_entries_stay() {
        let t = leak(Table::new(
            "fe",
            &spec(TableType::Ip, 10, None, &[StoreItem::ConnCnt]),
        ));
        drop(t.track(ip("10.0.0.1"), at(t, 0)).unwrap());
        t.purge(at(t, 1_000_000_000));
        assert_eq!(t.entries(at(t, 1_000_000_000))[0].exp_ms, 0);
        assert!(t.lookup(ip("10.0.0.1"), at(t, 1_000_000_000)).is_some());
    }

    #[test]
    fn a_full_table_evicts_the_oldest_unreferenced() {
        // size 2: one entry goes at a time (2 / 256 + 1), the least recently updated.
        let t = leak(Table::new(
            "fe",
            &spec(TableType::Ip, 2, None, &[StoreItem::ConnCnt]),
        ));
        drop(t.track(ip("127.0.0.1"), at(t, 0)).unwrap());
        drop(t.track(ip("127.0.0.3"), at(t, 10)).unwrap());
        drop(t.track(ip("127.0.0.1"), at(t, 20)).unwrap());
        drop(t.track(ip("127.0.0.2"), at(t, 30)).unwrap());
        let keys = |ms| {
            t.entries(at(t, ms))
                .iter()
                .map(|e| e.key.to_string())
                .collect::<Vec<_>>()
        };
        // As HAProxy 2.6.12 did with the same sequence.
        assert_eq!(keys(40), ["127.0.0.1", "127.0.0.2"]);
        drop(t.track(ip("127.0.0.4"), at(t, 50)).unwrap());
        drop(t.track(ip("127.0.0.5"), at(t, 60)).unwrap());
        assert_eq!(keys(70), ["127.0.0.4", "127.0.0.5"]);
        // Referenced entries are never evicted: a full table of them tracks nothing.
        let a = t.track(ip("127.0.0.6"), at(t, 80)).unwrap();
        let b = t.track(ip("127.0.0.7"), at(t, 90)).unwrap();
        assert!(t.track(ip("127.0.0.8"), at(t, 100)).is_none());
        assert_eq!(t.used(), 2);
        drop(a);
        let c = t.track(ip("127.0.0.8"), at(t, 110)).unwrap();
        assert_eq!(keys(120), ["127.0.0.7", "127.0.0.8"]);
        drop((b, c));
    }

    #[test]
    fn expired_entries_make_room_first() {
        let t = leak(Table::new(
            "fe",
            &spec(TableType::Ip, 2, Some(100), &[StoreItem::ConnCnt]),
        ));
        drop(t.track(ip("10.0.0.1"), at(t, 0)).unwrap());
        drop(t.track(ip("10.0.0.2"), at(t, 50)).unwrap());
        drop(t.track(ip("10.0.0.3"), at(t, 120)).unwrap());
        let keys: Vec<_> = t.entries(at(t, 120)).iter().map(|e| e.key).collect();
        assert_eq!(keys, [ip("10.0.0.2"), ip("10.0.0.3")]);
    }

    #[test]
    fn keys_are_converted_to_the_table_type() {
        let v4 = leak(Table::new(
            "v4",
            &spec(TableType::Ip, 10, None, &[StoreItem::ConnCnt]),
        ));
        let v6 = leak(Table::new(
            "v6",
            &spec(TableType::Ipv6, 10, None, &[StoreItem::ConnCnt]),
        ));
        let now = Instant::now();
        // A v4-mapped v6 address goes into an ip table as v4; other v6 addresses do not.
        let a = v4.track(ip("::ffff:10.0.0.1"), now).unwrap();
        assert_eq!(a.key(), ip("10.0.0.1"));
        let b = v4.track(ip("10.0.0.1"), now).unwrap();
        assert_eq!(b.counts(now).conn_cnt, Some(2));
        assert!(v4.track(ip("::1"), now).is_none());
        assert!(v4.track(ip("::10.0.0.1"), now).is_none());
        assert!(v4.lookup(ip("::ffff:10.0.0.1"), now).is_some());
        // A v4 address goes into an ipv6 table as ::ffff:a.b.c.d.
        let c = v6.track(ip("127.0.0.1"), now).unwrap();
        assert_eq!(c.key(), ip("::ffff:127.0.0.1"));
        let d = v6.track(ip("::1"), now).unwrap();
        assert_eq!(
            v6.lookup(ip("::ffff:127.0.0.1"), now).unwrap().conn_cnt,
            Some(1)
        );
        let keys: Vec<_> = v6.entries(now).iter().map(|e| e.key.to_string()).collect();
        assert_eq!(
            keys,
            ["::1", "::ffff:127.0.0.1"],
            "ordered by address bytes"
        );
        drop((a, b, c, d));
    }

    #[test]
    fn clear() {
        let t = leak(Table::new(
            "fe",
            &spec(TableType::Ip, 10, None, &[StoreItem::ConnCnt]),
        ));
        let now = Instant::now();
        let a = t.track(ip("10.0.0.1"), now).unwrap();
        drop(t.track(ip("10.0.0.2"), now).unwrap());
        drop(t.track(ip("10.0.0.3"), now).unwrap());
        assert_eq!(t.clear_key(ip("10.0.0.1"), now), Cleared::InUse);
        assert_eq!(t.clear_key(ip("10.0.0.9"), now), Cleared::NotFound);
        assert_eq!(t.clear_key(ip("10.0.0.2"), now), Cleared::Removed);
        assert_eq!(t.used(), 2);
        assert_eq!(t.clear_where(now, |_| true), 1);
        assert_eq!(t.used(), 1);
        drop(a);
        assert_eq!(t.clear_where(now, |c| c.conn_cnt == Some(5)), 0);
        assert_eq!(t.clear_where(now, |c| c.conn_cnt == Some(1)), 1);
        assert_eq!(t.used(), 0);
    }

    #[test]
    fn threads_count_exactly() {
        let t = leak(Table::new(
            "fe",
            &spec(TableType::Ip, 1_000, Some(60_000), &all()),
        ));
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for n in 0..2_000u32 {
                        let now = Instant::now();
                        // One key shared by all, one per thread, a few rotating ones.
                        let keys = [
                            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                            IpAddr::V4(Ipv4Addr::new(10, 1, i, 1)),
                            IpAddr::V6(Ipv4Addr::new(10, 2, 0, (n % 7) as u8).to_ipv6_mapped()),
                        ];
                        for k in keys {
                            let tr = t.track(k, now).expect("room");
                            tr.session(now);
                            tr.add_bytes(1, 2);
                            held.push(tr);
                        }
                        if n % 3 == 0 {
                            held.clear();
                        }
                        let _ = t.lookup(keys[0], now);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        let now = Instant::now();
        let shared = t.lookup(ip("10.0.0.1"), now).unwrap();
        assert_eq!(shared.conn_cnt, Some(16_000));
        assert_eq!(shared.sess_cnt, Some(16_000));
        assert_eq!(shared.conn_cur, Some(0));
        assert_eq!(shared.bytes_in_cnt, Some(16_000));
        assert_eq!(shared.bytes_out_cnt, Some(32_000));
        for i in 0..8 {
            let own = t
                .lookup(IpAddr::V4(Ipv4Addr::new(10, 1, i, 1)), now)
                .unwrap();
            assert_eq!((own.conn_cnt, own.conn_cur), (Some(2_000), Some(0)));
        }
        let rot: u64 = (0..7)
            .map(|j| {
                t.lookup(IpAddr::V4(Ipv4Addr::new(10, 2, 0, j)), now)
                    .unwrap()
                    .conn_cnt
                    .unwrap()
            })
            .sum();
        assert_eq!(rot, 16_000);
        assert_eq!(t.used(), 1 + 8 + 7);
        assert!(t.entries(now).iter().all(|e| e.refs == 0));
    }

    #[test]
    fn threads_on_a_tiny_table_never_deadlock() {
        // Constant eviction pressure: every track may have to make room.
        let t = leak(Table::new("fe", &spec(TableType::Ip, 4, Some(5), &all())));
        let threads: Vec<_> = (0..6u8)
            .map(|i| {
                std::thread::spawn(move || {
                    for n in 0..3_000u32 {
                        let k = IpAddr::V4(Ipv4Addr::new(10, i, (n % 5) as u8, 1));
                        if let Some(tr) = t.track(k, Instant::now()) {
                            tr.session(Instant::now());
                        }
                        t.purge(Instant::now());
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert!(t.used() <= 4);
        assert!(t.entries(Instant::now()).iter().all(|e| e.refs == 0));
    }

    #[test]
    fn tables_from_a_model() {
        let text = "defaults\n  mode tcp\n\
                    frontend fe\n  bind 127.0.0.1:1\n  stick-table type ip size 10 store conn_cnt\n  default_backend be\n\
                    backend be\n  stick-table type ipv6 size 1k expire 30s store conn_cur\n  server s 127.0.0.1:2\n\
                    listen both\n  bind 127.0.0.1:3\n  stick-table type ip size 5 store conn_rate(1s)\n  server s 127.0.0.1:2\n\
                    backend plain\n  server s 127.0.0.1:2\n";
        let mut ast = crate::config::ast::Ast::default();
        let mut diags = crate::config::error::Diags::default();
        let env: HashMap<String, String> = HashMap::new();
        crate::config::parse_text("t.cfg", text, &env, &mut ast, &mut diags);
        let (model, d) = crate::config::validate::build(&ast, &Default::default());
        let model = model.unwrap_or_else(|| panic!("{d:?} {diags:?}"));
        let tables = Tables::from_model(&model);
        let names: Vec<_> = tables.iter().map(Table::name).collect();
        assert_eq!(names, ["fe", "be", "both"]);
        let fe = model.frontend_by_name("fe").unwrap().id;
        let be = model.backend_by_name("be").unwrap().id;
        let both_f = model.frontend_by_name("both").unwrap().id;
        let both_b = model.backend_by_name("both").unwrap().id;
        let plain = model.backend_by_name("plain").unwrap().id;
        assert_eq!(tables.get(TableRef::Frontend(fe)).unwrap().name(), "fe");
        let be_t = tables.get(TableRef::Backend(be)).unwrap();
        assert_eq!((be_t.kind(), be_t.size()), (TableType::Ipv6, 1_024));
        assert!(std::ptr::eq(
            tables.get(TableRef::Frontend(both_f)).unwrap(),
            tables.get(TableRef::Backend(both_b)).unwrap()
        ));
        assert!(tables.get(TableRef::Backend(plain)).is_none());
        assert!(tables.by_name("be").unwrap().store().conn_cur);
        assert!(tables.by_name("plain").is_none());
        assert!(!tables.by_name("be").unwrap().store().server_id);
    }

    #[test]
    fn tables_named_by_stick_rules_store_a_server() {
        let text = "defaults\n  mode tcp\n\
                    backend be\n  stick-table type ip size 10\n  stick on dst\n  server s 127.0.0.1:2\n\
                    backend shared\n  stick-table type ip size 10\n\
                    backend user\n  stick match src table shared\n  server s 127.0.0.1:2\n\
                    backend counters\n  stick-table type ip size 10 store conn_cnt\n  server s 127.0.0.1:2\n";
        let mut ast = crate::config::ast::Ast::default();
        let mut diags = crate::config::error::Diags::default();
        let env: HashMap<String, String> = HashMap::new();
        crate::config::parse_text("t.cfg", text, &env, &mut ast, &mut diags);
        let (model, d) = crate::config::validate::build(&ast, &Default::default());
        let model = model.unwrap_or_else(|| panic!("{d:?} {diags:?}"));
        let tables = Tables::from_model(&model);
        let sticky = |n| tables.by_name(n).unwrap().store().server_id;
        assert!(sticky("be") && sticky("shared") && !sticky("counters"));
        let user = model.backend_by_name("user").unwrap();
        let shared = model.backend_by_name("shared").unwrap().id;
        assert_eq!(user.sticking.len(), 1);
        let r = &user.sticking[0];
        assert_eq!(
            (r.matches, r.stores, r.key, r.table),
            (
                true,
                false,
                crate::config::model::StickKey::Src,
                TableRef::Backend(shared)
            )
        );
    }
}
