//! `pick` per balancing algorithm at 2, 16 and 256 servers (each pick releases its lease at
//! once), and leastconn with 1, 2, 4 and 8 threads picking and releasing at once on shared
//! counters, beside the floor of that loop: a bare lease and release of a shared count with
//! no decision. The target is under 100 ns per pick at 256 servers for every algorithm, and
//! leastconn throughput that grows with threads.
//!
//! `cargo bench --bench balance -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use sluice::balance::first::First;
use sluice::balance::hash::Hash;
use sluice::balance::leastconn::LeastConn;
use sluice::balance::leasttime::LeastTime;
use sluice::balance::random::Random;
use sluice::balance::roundrobin::RoundRobin;
use sluice::balance::static_rr::StaticRr;
use sluice::balance::{Algorithm, ConnLease, Counters, Member, Pick, PickCtx, Pool};
use sluice::config::model::{
    BackendId, Balance, HashFunction, HashKey, HashMethod, HashType, ServerId,
};

const SIZES: [usize; 3] = [2, 16, 256];

/// `n` servers with weights 1 to 4, none full.
fn pool(n: usize) -> Pool {
    let members = (0..n)
        .map(|i| Member {
            id: ServerId(i as u32),
            uid: i as u32 + 1,
            weight: 1 + (i as u32 % 4),
            eweight: 0,
            backup: false,
            usable: true,
            maxconn: None,
            maxqueue: None,
            slowstart: None,
            up_since: None,
        })
        .collect();
    Pool::new(BackendId(0), members, false)
}

fn hash(method: HashMethod, p: &Pool) -> Box<dyn Algorithm> {
    let ht = HashType {
        method,
        function: HashFunction::Sdbm,
        avalanche: true,
    };
    Box::new(Hash::new(Balance::Hash(HashKey::Src), ht, 0, p))
}

type Make = fn(&Pool) -> Box<dyn Algorithm>;

fn algorithms() -> Vec<(&'static str, Make)> {
    vec![
        ("roundrobin", |_| Box::new(RoundRobin::default())),
        ("static-rr", |p| Box::new(StaticRr::new(p))),
        ("leastconn", |_| Box::new(LeastConn::default())),
        ("first", |_| Box::new(First::default())),
        ("source", |p| {
            let ht = HashType::default();
            Box::new(Hash::new(Balance::Source, ht, 0, p))
        }),
        ("hash-consistent", |p| hash(HashMethod::Consistent, p)),
        ("hash-maglev", |p| hash(HashMethod::Maglev, p)),
        ("random", |_| Box::new(Random::with_seed(2, 1))),
        ("leasttime", |_| Box::new(LeastTime::default())),
    ]
}

fn picks(c: &mut Criterion) {
    for (name, make) in algorithms() {
        let mut g = c.benchmark_group(format!("pick/{name}"));
        for n in SIZES {
            let p = pool(n);
            let counters = Counters::leak(n, 1);
            let mut alg = make(&p);
            alg.rebuild(&p);
            let mut client = 0u32;
            g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| {
                    // A new client address each time, for the hashing algorithms.
                    client = client.wrapping_add(0x9e37_79b9);
                    let ctx = PickCtx {
                        src: Some(IpAddr::from(client.to_be_bytes())),
                        avoid: None,
                    };
                    match alg.pick(&p, &ctx, counters) {
                        Pick::Leased(l) => black_box(l.server()),
                        other => panic!("{other:?}"),
                    };
                })
            });
        }
        g.finish();
    }
}

/// `threads` threads at once, each running `lease` in a loop and holding up to 8 leases (as
/// a busy worker holds a few connections): the time per lease per thread, and the total
/// leases per second. `lease` gets the thread's own state and the loop count.
fn threaded<S: Send>(
    b: &mut criterion::Bencher,
    threads: usize,
    make: impl Fn() -> S + Sync,
    lease: impl Fn(&mut S, u64) -> Option<ConnLease> + Sync,
) {
    b.iter_custom(|iters| {
        let start = Barrier::new(threads);
        let took: Vec<Duration> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (start, make, lease) = (&start, &make, &lease);
                    s.spawn(move || {
                        let mut state = make();
                        let mut held = std::collections::VecDeque::new();
                        start.wait();
                        let t0 = Instant::now();
                        for i in 0..iters {
                            if let Some(l) = lease(&mut state, i) {
                                held.push_back(l);
                            }
                            if held.len() > 8 {
                                held.pop_front();
                            }
                        }
                        t0.elapsed()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        took.into_iter().max().unwrap_or_default()
    })
}

/// leastconn at 256 servers with 1, 2, 4 and 8 threads picking and releasing at once on the
/// same counters; and, as the floor any algorithm with counts shared by every worker pays,
/// the same loop taking a bare lease (one atomic add and, at release, one subtract on the
/// server's cache line) on servers visited in leastconn's tie order, with no decision at all.
fn leastconn_threads(c: &mut Criterion) {
    const N: usize = 256;
    let p = pool(N);
    let stride = (N * 5 / 8..N).find(|s| s % 2 == 1).unwrap_or(1);
    for (group, floor) in [
        ("leastconn-threads/256", false),
        ("lease-floor-threads/256", true),
    ] {
        let mut g = c.benchmark_group(group);
        for threads in [1usize, 2, 4, 8] {
            g.throughput(Throughput::Elements(threads as u64));
            let counters = Counters::leak(N, 1);
            g.bench_with_input(BenchmarkId::from_parameter(threads), &threads, |b, &t| {
                if floor {
                    static PHASE: AtomicUsize = AtomicUsize::new(0);
                    let phase = || PHASE.fetch_add(97, Ordering::Relaxed);
                    threaded(b, t, phase, |turn, _| {
                        *turn = (*turn + stride) % N;
                        counters.try_lease(ServerId(*turn as u32), None)
                    });
                } else {
                    let make = || {
                        let mut lc = LeastConn::default();
                        lc.rebuild(&p);
                        lc
                    };
                    threaded(b, t, make, |lc, _| {
                        match lc.pick(&p, &PickCtx::default(), counters) {
                            Pick::Leased(l) => Some(l),
                            _ => None,
                        }
                    });
                }
            });
        }
        g.finish();
    }
}

criterion_group!(benches, picks, leastconn_threads);
criterion_main!(benches);
