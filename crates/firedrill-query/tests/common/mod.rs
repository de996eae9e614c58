//! Helpers shared by the integration tests of this crate.

use firedrill_promql::{KeyedStorage, WindowFacts};

/// The series of a window, sorted by key. The store's facts about each window must hold of its samples, and
/// be all of them where `exact` (the cache knows them exactly; plans skip reading what they promise).
pub fn sorted_window(
    storage: &dyn KeyedStorage,
    name: &str,
    start: i64,
    end: i64,
    exact: bool,
) -> Vec<(u64, Vec<(i64, u64)>)> {
    let mut out = Vec::new();
    storage
        .select_windows(name, start, end, &mut |key, samples, facts| {
            let read = WindowFacts::of(samples);
            assert!(
                (!facts.no_stale || read.no_stale) && (!facts.no_decrease || read.no_decrease),
                "{name} {key:x} over [{start}, {end}]: the store promised {facts:?}, the samples show {read:?}"
            );
            if exact {
                assert_eq!(facts, read, "{name} {key:x} over [{start}, {end}]");
            }
            out.push((key, samples.iter().map(|x| (x.t, x.v.to_bits())).collect()));
        })
        .expect("select");
    out.sort();
    out
}
