//! When things first happen in the benchmark's episodes: the first scheduled event (distractors, benign
//! events), the first fault onset and the page, in simulated minutes, for the first N episodes of
//! `firedrill bench` (family `k mod 9`, seed `k div 9`, difficulty 0.5).
fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(90);
    let catalog = firedrill_scenario::Catalog::builtin().expect("library");
    let ids: Vec<String> = catalog.scenarios().iter().map(|s| s.id.clone()).collect();
    let (mut first_event, mut first_deploy, mut onset, mut page) = (vec![], vec![], vec![], vec![]);
    for k in 0..n {
        let id = &ids[(k % 9) as usize];
        let inc = catalog.start(id, k / 9, 0.5).expect("start");
        let inst = inc.instance();
        let fe = inst.scheduled.first().map_or(f64::NAN, |s| s.t_s / 60.0);
        let fd = inst
            .scheduled
            .iter()
            .find(|s| {
                matches!(&s.action, firedrill_scenario::instantiate::FaultAction::Operation(op, _)
                    if !matches!(op, firedrill_world::ops::Operation::SetConfig { .. }))
            })
            .map_or(f64::NAN, |s| s.t_s / 60.0);
        let on = inst
            .faults
            .iter()
            .filter_map(|f| f.onset_s)
            .fold(f64::NAN, f64::min)
            / 60.0;
        first_event.push(fe);
        first_deploy.push(fd);
        onset.push(on);
        page.push(inc.page_s() / 60.0);
    }
    for (name, v) in [
        ("first scheduled event", &first_event),
        ("first non-config operation", &first_deploy),
        ("first onset", &onset),
        ("page", &page),
    ] {
        let mut x: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        x.sort_by(f64::total_cmp);
        let q = |p: f64| {
            x.get(((x.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!(
            "{name:28} n={:3} min {:5.1} p25 {:5.1} median {:5.1} p75 {:5.1} max {:5.1}",
            x.len(),
            q(0.0),
            q(0.25),
            q(0.5),
            q(0.75),
            q(1.0)
        );
    }
}
