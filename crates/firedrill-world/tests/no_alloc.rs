//! The tick's hot path makes no heap allocation: a counting global allocator counts allocations while a warmed
//! world ticks (counts, not time).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use firedrill_world::spec::TopologySpec;
use firedrill_world::topology::SpecPath;
use firedrill_world::{Topology, World, WorldOptions};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the wrapper only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SPEC: &str = r#"{
  "tick_s": 15,
  "entrypoints": [{"service": "edge", "rps": 100}],
  "services": [
    {"name": "edge", "kind": "edge", "version": "v1", "versions": [{"name": "v1"}],
     "tls": {"expires_at_s": 1e9}, "rate_limit": {"rps_per_replica": 500},
     "calls": [{"to": "api", "timeout_ms": 1000, "retries": 2}]},
    {"name": "api", "kind": "service", "version": "v1", "autoscale": {"min": 2, "max": 6, "target_cpu": 0.6},
     "versions": [{"name": "v1"}, {"name": "v2", "behaviour": {"leak_mb_per_min": 50, "conn_leak_per_min": 3}}],
     "disk": {"size_gb": 10, "data_gb": 5},
     "calls": [{"to": "db", "per_request": 2, "pool": 10, "via_cache": "cache"}],
     "publishes": [{"topic": "events", "rate_hz": 20, "qos": {"reliability": "reliable"}}]},
    {"name": "worker", "kind": "worker", "version": "v1", "versions": [{"name": "v1"}],
     "subscribes": [{"topic": "events", "qos": {"reliability": "reliable"}, "capacity_hz_per_replica": 5}]},
    {"name": "cache", "kind": "cache", "version": "v1", "versions": [{"name": "v1"}]},
    {"name": "db", "kind": "database", "replicas": 1, "version": "v1", "versions": [{"name": "v1"}]},
    {"name": "logs", "kind": "observability", "replicas": 1, "version": "v1", "versions": [{"name": "v1"}]}
  ]
}"#;

#[test]
fn ticking_allocates_nothing() {
    let spec: TopologySpec = serde_json::from_str(SPEC).expect("spec");
    let topology = Arc::new(Topology::compile(&spec, &SpecPath::root()).expect("topology"));
    let mut world = World::new(
        topology,
        7,
        WorldOptions {
            retention_ticks: 256,
            event_capacity: 1024,
            ..WorldOptions::default()
        },
    );
    // A leaking version makes the world crash-loop, autoscale and log: the busy paths, not just the idle one.
    let api = world.topology().service_id("api").expect("api");
    world
        .apply(
            &firedrill_world::Operation::Deploy {
                service: api,
                version: 1,
            },
            &firedrill_world::Actor::oncall(),
        )
        .expect("deploy");
    world.run(300);
    let mut fork = world.clone();

    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    world.run(500);
    fork.run(50);
    COUNTING.store(false, Ordering::SeqCst);

    assert!(
        world.frame(api).restarts_total > 0,
        "the busy path was not exercised"
    );
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "ticks allocated");

    // The counter itself works: an allocation while counting is seen.
    COUNTING.store(true, Ordering::SeqCst);
    let probe = std::hint::black_box(vec![1u8; 64]);
    COUNTING.store(false, Ordering::SeqCst);
    drop(probe);
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > 0);
}
