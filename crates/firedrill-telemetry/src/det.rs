//! Deterministic helpers shared by the renderers: seeded generators keyed by (purpose, tick, service), uniform
//! and normal draws, and the mapping from world time to unix time.
//!
//! Every draw made while rendering comes from a generator seeded from the world's seed and the key of what is
//! being rendered, so any tick renders the same way whatever else was rendered before it.

use firedrill_world::changes::ChangeKind;
use firedrill_world::{ServiceId, World};
use rand_distr::Distribution;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng, SeedableRng};

/// The generator of every keyed stream: xoshiro256++, seeded through splitmix64. A render seeds one per trace,
/// per tick and service, per dropped event, so seeding must be cheap: xoshiro's is four splitmix64 outputs,
/// where ChaCha8's first draw computes four blocks of the cipher (the switch took a tenth off a trace query).
/// The world's own stream, one per episode, stays ChaCha8.
pub(crate) type KeyedRng = Xoshiro256PlusPlus;

/// What a generator is for; keeps the streams of different renderers apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Purpose {
    /// Per-tick log lines.
    TickLogs = 1,
    /// Which event lines the log pipeline drops.
    EventDrop = 2,
    /// Trace walks.
    Trace = 3,
    /// Trace ids.
    TraceId = 4,
}

/// The splitmix64 finaliser: a cheap bijective mix of 64 bits.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit key from the seed, a purpose and two coordinates.
pub(crate) fn key(seed: u64, purpose: Purpose, a: u64, b: u64) -> u64 {
    let mut x = splitmix64(seed ^ (purpose as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    x = splitmix64(x ^ a);
    splitmix64(x ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The generator for one (purpose, tick, service) of a world.
pub(crate) fn rng_for(world: &World, purpose: Purpose, tick: u64, service: u64) -> KeyedRng {
    KeyedRng::seed_from_u64(world.seed() ^ key(world.seed(), purpose, tick, service))
}

/// A uniform draw in [0, 1).
pub(crate) fn unit(rng: &mut KeyedRng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal draw, by rand_distr's ziggurat: usually one 64-bit draw and a table lookup, where
/// Box–Muller (what this used before) takes a logarithm, a square root and a cosine per draw, a tenth of a trace
/// walk.
pub(crate) fn normal(rng: &mut KeyedRng) -> f64 {
    rand_distr::StandardNormal.sample(rng)
}

/// `floor(x)` plus one more with probability `fract(x)`: a count whose mean is `x`.
pub(crate) fn stochastic_round(rng: &mut KeyedRng, x: f64) -> usize {
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    x.floor() as usize + (unit(rng) < x.fract()) as usize
}

/// One of `items`, uniformly.
pub(crate) fn pick<'a>(rng: &mut KeyedRng, items: &[&'a str]) -> &'a str {
    items[((unit(rng) * items.len() as f64) as usize).min(items.len() - 1)]
}

/// Unix milliseconds of a world time given in milliseconds since the world began.
pub(crate) fn unix_ms(world: &World, world_ms: i64) -> i64 {
    world.epoch_unix_s() * 1000 + world_ms
}

/// Unix milliseconds of the end of tick `tick` (`(epoch + tick * tick_s) * 1000`).
pub(crate) fn tick_end_ms(world: &World, tick: u64) -> i64 {
    // `f64::round` without the library call: every read of a window computes a few of these.
    crate::metrics::round((world.epoch_unix_s() as f64 + tick as f64 * world.tick_s()) * 1000.0)
        as i64
}

/// World milliseconds (since the world began) of the end of tick `tick`.
pub(crate) fn tick_world_ms(world: &World, tick: u64) -> i64 {
    (tick as f64 * world.tick_s() * 1000.0).round() as i64
}

/// A tick's length in whole milliseconds.
pub(crate) fn tick_len_ms(world: &World) -> i64 {
    (world.tick_s() * 1000.0).round() as i64
}

/// A world time in seconds as whole milliseconds, rounded as change records are compared.
pub(crate) fn round_ms(t_s: f64) -> i64 {
    (t_s * 1000.0).round() as i64
}

/// A configuration value as it was in effect during the tick ending at `tick_world_ms` (world ms): the current
/// value with every change made after the tick began undone. A tick's frame was computed with the configuration
/// set before the tick began; changes made at the tick's end take effect in the next one.
///
/// Borrowed from the world: renderers read a value per call or per tick and rarely keep it.
pub(crate) fn config_at<'w>(
    world: &'w World,
    id: ServiceId,
    key: &str,
    tick_world_ms: i64,
) -> Option<&'w str> {
    let tick_ms = tick_len_ms(world);
    let mut v = world.service(id).config.get(key).map(String::as_str);
    for c in world.changes().iter().rev() {
        if round_ms(c.t_s) <= tick_world_ms - tick_ms {
            break;
        }
        if c.service == id
            && let ChangeKind::Config { key: k, old, .. } = &c.kind
            && k == key
        {
            v = old.as_deref();
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_every_coordinate() {
        let k = key(7, Purpose::TickLogs, 3, 4);
        assert_ne!(k, key(8, Purpose::TickLogs, 3, 4));
        assert_ne!(k, key(7, Purpose::Trace, 3, 4));
        assert_ne!(k, key(7, Purpose::TickLogs, 4, 3));
        assert_ne!(k, key(7, Purpose::TickLogs, 3, 5));
        assert_eq!(k, key(7, Purpose::TickLogs, 3, 4));
    }

    #[test]
    fn draws_are_in_range() {
        let mut rng = KeyedRng::seed_from_u64(1);
        for _ in 0..1000 {
            let u = unit(&mut rng);
            assert!((0.0..1.0).contains(&u));
            assert!(normal(&mut rng).is_finite());
        }
        // A standard normal: mean 0, variance 1, and tails as far as the distribution's (a bounded
        // approximation would never pass 4).
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / n as f64;
        let beyond_2 = draws.iter().filter(|z| z.abs() > 2.0).count() as f64 / n as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
        assert!((beyond_2 - 0.0455).abs() < 0.003, "{beyond_2}");
        assert!(draws.iter().any(|z| z.abs() > 4.0));
        assert_eq!(stochastic_round(&mut rng, 0.0), 0);
        assert_eq!(stochastic_round(&mut rng, f64::NAN), 0);
        assert_eq!(stochastic_round(&mut rng, 3.0), 3);
    }
}
