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

const SPEC: &str = include_str!("fixtures/small.json");

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
    // A world whose history is frozen (as an incident's is at the page), and a fork sharing it: their ticks
    // write to storage of their own, past the shared ticks and round the ring again.
    let mut frozen = world.clone();
    let mut young = World::new(
        Arc::clone(frozen.topology_arc()),
        8,
        WorldOptions {
            retention_ticks: 256,
            event_capacity: 1024,
            ..WorldOptions::default()
        },
    );
    young.run(100);
    young.freeze_history();
    frozen.freeze_history();
    let mut young_fork = young.clone();

    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    world.run(500);
    fork.run(50);
    frozen.run(50);
    young.run(300);
    young_fork.run(300);
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
