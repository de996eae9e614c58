//! How much of the history before the page a reset must simulate, per basic family over seeds `0..N`
//! (difficulty 0.5): the mean ticks up to the page, after the first fault's onset, and after the first fault or
//! scheduled event (a distractor deploy, a config change, a traffic swing), whichever comes first. Before that
//! point nothing but the daily traffic curve and its noise moves the world.
//!
//! `cargo run --release -p firedrill-scenario --example history -- 20`
fn main() {
    let catalog = firedrill_scenario::Catalog::builtin().expect("library");
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    println!("family                      ticks to page  after onset  after first event");
    for scenario in catalog.scenarios() {
        let (mut page, mut after_onset, mut after_event) = (0.0, 0.0, 0.0);
        for seed in 0..seeds {
            let incident = catalog.start(&scenario.id, seed, 0.5).expect("start");
            let instance = incident.instance();
            let page_s = incident.page_s();
            let onset = instance
                .faults
                .iter()
                .filter_map(|f| f.onset_s)
                .fold(page_s, f64::min);
            let event = instance
                .scheduled
                .iter()
                .map(|s| s.t_s)
                .fold(onset, f64::min);
            let tick_s = incident.world().tick_s();
            page += page_s / tick_s;
            after_onset += (page_s - onset) / tick_s;
            after_event += (page_s - event) / tick_s;
        }
        let n = seeds.max(1) as f64;
        println!(
            "{:<27} {:>13.1}  {:>11.1}  {:>17.1}",
            scenario.id,
            page / n,
            after_onset / n,
            after_event / n
        );
    }
}
