//! Hostile episodes never break the environment: every basic family played with actions that are well formed
//! but push every parameter to its edges (zero and `u32::MAX` windows, limits and replicas, huge waits, unknown
//! services and versions, odd configuration values), PromQL, LogQL and TraceQL queries that are valid but
//! unusual (zero and year-long ranges, subqueries, `offset`, `@`, extreme quantiles) or token soup, and resolves
//! that cite ids never issued. Each step must give an observation (an error observation at worst) that renders
//! as text and as JSON, an episode must end once and then refuse steps, and replaying an episode's action texts
//! in a fresh environment must give the same observations byte for byte. Batches of such actions through a
//! `VecEnv` must give the same results on one thread, on two, and with starts prepared ahead.
//!
//! `FIREDRILL_HOSTILE_EPISODES=N` plays N episodes instead of the default five per family. When this test was
//! written, a run of 3,000 found no failure, nor did an earlier harness of the same actions (queries as token
//! soup only, no replays) over 20,000 episodes and 364,837 steps.

use std::sync::Arc;

use firedrill_env::{
    Action, AutoReset, Env, EnvError, EpisodeSpec, Observation, VecEnv, parse_action,
};
use firedrill_scenario::Catalog;
use firedrill_scenario::library::BASIC_FAMILIES;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};

/// Episodes per run unless `FIREDRILL_HOSTILE_EPISODES` says otherwise: five per family.
const EPISODES: u64 = 45;
/// Steps per episode at most (most end sooner: one action in sixteen resolves).
const MAX_STEPS: usize = 60;

trait Draw {
    fn below(&mut self, n: usize) -> usize;
    fn coin(&mut self, p: f64) -> bool;
}

impl Draw for ChaCha8Rng {
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    fn coin(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

fn pick<'a>(r: &mut ChaCha8Rng, xs: &[&'a str]) -> &'a str {
    xs[r.below(xs.len())]
}

/// A valid query of the list half the time, token soup the other half.
fn query(r: &mut ChaCha8Rng, valid: &[&str], tokens: &[&str]) -> String {
    if r.coin(0.5) {
        return pick(r, valid).to_string();
    }
    let n = r.below(12);
    (0..n).map(|_| pick(r, tokens)).collect::<Vec<_>>().join("")
}

const PROMQL_VALID: &[&str] = &[
    "up",
    "up == 0",
    "-up",
    "1/0",
    "sum by (service) (rate(http_requests_total[5m]))",
    "rate(http_requests_total[0s])",
    "rate(http_requests_total[1y])",
    "increase(kube_pod_container_status_restarts_total[15m])",
    "histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(-1, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "histogram_quantile(2, rate(http_request_duration_seconds_bucket[1m]))",
    "topk(1e10, up)",
    "bottomk(0, up)",
    "quantile_over_time(2, up[5m])",
    "count_values(\"v\", up)",
    "label_replace(up, \"a\", \"$1\", \"job\", \"(.*)\")",
    "up offset 1h",
    "up @ 0",
    "sum(up[5m:1m])",
    "max_over_time(rate(http_requests_total[1m])[30m:15s])",
    "predict_linear(up[5m], 1e300)",
    "absent(no_such_metric)",
    "sort_desc(sum by (service) (container_memory_working_set_bytes))",
    "up and on(service) kube_deployment_spec_replicas",
    "up / on(service) group_left kube_deployment_spec_replicas",
    "scalar(up)",
    "vector(1) + vector(2)",
];
const PROMQL_TOKENS: &[&str] = &[
    "rate(",
    "sum by (service) (",
    "http_requests_total",
    "{",
    "}",
    "[5m]",
    "[0s]",
    "[1y]",
    ")",
    " / ",
    " > ",
    "histogram_quantile(0.99, ",
    "le",
    "=~",
    "\".*\"",
    "\"",
    "1e309",
    "-",
    "offset 1h",
    "@ 0",
    "[5m:1m]",
    " or ",
    " and ",
    " unless ",
    "count_values(\"x\", ",
    "topk(1e10, ",
    "label_replace(",
    ",",
    "abs(",
    "time()",
    "up",
    "==",
    "bool",
    "on(service)",
    "group_left",
    "ignoring(job)",
    "absent(",
    "scalar(",
    "%",
    "^",
    "/0",
];
const LOGQL_VALID: &[&str] = &[
    "{service=\"order-service\"}",
    "{service=~\".+\"} |= \"timeout\"",
    "{service=~\".*\", level=\"error\"} != \"ok\" |~ \"(time|dead)\"",
    "{service=\"order-service\"} | logfmt | line_format \"{{.msg}}\"",
    "{service=\"order-service\"} | json",
    "sum by (level) (count_over_time({service=~\".+\"}[5m]))",
    "topk(2, sum by (service) (rate({service=~\".+\"}[1m])))",
    "count_over_time({service=\"order-service\"}[0s])",
    "bytes_over_time({service=~\".+\"}[1y])",
    "{service=\"no-such-service\"}",
];
const LOGQL_TOKENS: &[&str] = &[
    "{",
    "}",
    "service=\"",
    "order-service",
    "\"",
    "|=",
    "!=",
    "|~",
    "\"(\"",
    "| logfmt",
    "| json",
    "| level=\"error\"",
    "count_over_time(",
    "rate(",
    "[5m]",
    "[0s]",
    ")",
    "sum by (level) (",
    "topk(3, ",
    "| line_format \"{{.x}}\"",
    " | unwrap latency",
    "quantile_over_time(0.9, ",
    ",",
    "=~",
    "\".*\"",
];
const TRACEQL_VALID: &[&str] = &[
    "{ status = error }",
    "{ duration > 1s } >> { }",
    "{ } | count() > 2",
    "{ resource.service.name =~ \".*\" && span.http.status_code >= 500 }",
    "{ name =~ \"GET.*\" } ~ { }",
    "{ kind = server } | avg(duration) > 1ms",
    "{ duration > 1000h }",
    "{ resource.service.name = \"no-such-service\" }",
];
const TRACEQL_TOKENS: &[&str] = &[
    "{",
    "}",
    " status = error ",
    "resource.service.name = \"",
    "checkout",
    "\"",
    " duration > 1s ",
    " && ",
    " || ",
    " >> ",
    " ~ ",
    " name =~ \"",
    ".*",
    "| count() > 2",
    "| avg(duration) > 1ms",
    "span.http.status_code >= 500",
    "(",
    ")",
    "!",
    "nil",
    "1e400",
    "kind = server",
    "rootName",
];

/// A well-formed action whose parameters are often at or past their edges.
fn action(r: &mut ChaCha8Rng, services: &[String]) -> Value {
    let svc = |r: &mut ChaCha8Rng| -> Value {
        if r.coin(0.05) {
            json!("no-such-service")
        } else {
            json!(services[r.below(services.len())])
        }
    };
    // Mostly in range, sometimes at or past the edges.
    let n = |r: &mut ChaCha8Rng, hi: u64| -> Value {
        match r.below(12) {
            0 => json!(0),
            1 => json!(u32::MAX),
            2 => json!(1),
            _ => json!(1 + r.below(hi as usize)),
        }
    };
    let win = |r: &mut ChaCha8Rng, o: &mut serde_json::Map<String, Value>| {
        if r.coin(0.7) {
            let v = n(r, 180);
            o.insert("window_minutes".into(), v);
        }
    };
    let page = |r: &mut ChaCha8Rng, o: &mut serde_json::Map<String, Value>| {
        if r.coin(0.3) {
            let v = n(r, 5);
            o.insert("page".into(), v);
        }
    };
    // A query in one of the languages (`key`), with a window and a page.
    let language = |r: &mut ChaCha8Rng,
                    o: &mut serde_json::Map<String, Value>,
                    key: &str,
                    valid: &[&str],
                    tokens: &[&str]| {
        o.insert(key.into(), json!(query(r, valid, tokens)));
        win(r, o);
        page(r, o);
    };
    let mut o = serde_json::Map::new();
    let name = match r.below(16) {
        0 => "list_services",
        1 => {
            o.insert("service".into(), svc(r));
            "describe_service"
        }
        2 => {
            o.insert("service".into(), svc(r));
            win(r, &mut o);
            "query_metrics"
        }
        3 => {
            if r.coin(0.5) {
                let v = n(r, 600);
                o.insert("step_seconds".into(), v);
            }
            language(r, &mut o, "promql", PROMQL_VALID, PROMQL_TOKENS);
            "query_metrics"
        }
        4 => {
            o.insert("service".into(), svc(r));
            win(r, &mut o);
            if r.coin(0.5) {
                o.insert(
                    "level".into(),
                    json!(pick(r, &["debug", "info", "warn", "error"])),
                );
            }
            if r.coin(0.5) {
                let v = n(r, 500);
                o.insert("limit".into(), v);
            }
            "query_logs"
        }
        5 => {
            language(r, &mut o, "logql", LOGQL_VALID, LOGQL_TOKENS);
            "query_logs"
        }
        6 => {
            o.insert("service".into(), svc(r));
            win(r, &mut o);
            o.insert("errors_only".into(), json!(r.coin(0.5)));
            "query_traces"
        }
        7 => {
            language(r, &mut o, "traceql", TRACEQL_VALID, TRACEQL_TOKENS);
            "query_traces"
        }
        8 => {
            o.insert("service".into(), svc(r));
            o.insert(
                "check".into(),
                json!(pick(
                    r,
                    &["connectivity", "health", "resources", "dns", "tls"]
                )),
            );
            "run_diagnostic"
        }
        9 => {
            if r.coin(0.5) {
                o.insert("service".into(), svc(r));
            }
            "query_deploys"
        }
        10 => {
            o.insert("service".into(), svc(r));
            if r.coin(0.4) {
                let v = n(r, 8192);
                o.insert("memory_mb".into(), v);
            }
            if r.coin(0.4) {
                let v = n(r, 8000);
                o.insert("cpu_millis".into(), v);
            }
            "restart_service"
        }
        11 => {
            o.insert("service".into(), svc(r));
            let v = n(r, 40);
            o.insert("replicas".into(), v);
            "scale_service"
        }
        12 => {
            o.insert("service".into(), svc(r));
            if r.coin(0.7) {
                o.insert(
                    "version".into(),
                    json!(pick(r, &["v1", "v2", "v3", "v0", "latest"])),
                );
            }
            "rollback_deploy"
        }
        13 => {
            o.insert("service".into(), svc(r));
            o.insert(
                "key".into(),
                json!(pick(
                    r,
                    &[
                        "log.level",
                        "http.client.timeout_ms",
                        "http.client.retries",
                        "db.pool.max_connections",
                        "x"
                    ]
                )),
            );
            o.insert(
                "value".into(),
                json!(pick(
                    r,
                    &[
                        "debug",
                        "info",
                        "0",
                        "-5",
                        "1e308",
                        "NaN",
                        "",
                        "100000000000",
                        "3",
                        "250"
                    ]
                )),
            );
            "update_config"
        }
        14 => {
            let m = match r.below(6) {
                0 => json!(0.0),
                1 => json!(1e300),
                2 => json!(-3.0),
                _ => json!(r.below(30) as f64 / 2.0),
            };
            o.insert("minutes".into(), m);
            "wait"
        }
        _ => {
            o.insert(
                "root_causes".into(),
                json!([services[r.below(services.len())]]),
            );
            o.insert(
                "fault_class".into(),
                json!(pick(
                    r,
                    &["memory_leak", "no_fault", "disk_full", "bad_deploy"]
                )),
            );
            o.insert(
                "evidence".into(),
                json!(["ev-1", "ev-999999999999999999999", ""]),
            );
            o.insert("remediation".into(), json!("x"));
            o.insert("summary".into(), json!("y"));
            "resolve_incident"
        }
    };
    o.insert("action".into(), json!(name));
    Value::Object(o)
}

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::builtin().expect("library"))
}

fn services(page: &Observation) -> Vec<String> {
    let names = firedrill_agents::page_services(page);
    assert!(!names.is_empty(), "a page lists the services");
    names
}

/// Plays one hostile episode: its action texts and the JSON of every observation (the page first).
fn play(
    env: &mut Env,
    family: &str,
    seed: u64,
    difficulty: f64,
    r: &mut ChaCha8Rng,
) -> (Vec<String>, Vec<String>) {
    let page = env.reset(family, seed, difficulty).expect("reset");
    let names = services(&page);
    let mut seen = vec![serde_json::to_string(&page).expect("page json")];
    let mut texts = Vec::new();
    for _ in 0..MAX_STEPS {
        let text = action(r, &names).to_string();
        let step = env
            .step_json(&text)
            .unwrap_or_else(|e| panic!("{family} seed {seed}: {text} gave {e}"));
        assert!(
            step.reward.is_finite(),
            "{family} seed {seed}: {text} gave reward {}",
            step.reward
        );
        assert!(!step.observation.to_text().is_empty());
        seen.push(serde_json::to_string(&step.observation).expect("observation json"));
        texts.push(text);
        if step.terminated || step.truncated {
            // Ended once and for all.
            let again = env.step_json(r#"{"action": "wait", "minutes": 1}"#);
            assert!(
                matches!(again, Err(EnvError::EpisodeEnded)),
                "{family} seed {seed}: {again:?}"
            );
            break;
        }
    }
    (texts, seen)
}

#[test]
fn hostile_episodes_never_break_the_environment() {
    let episodes = std::env::var("FIREDRILL_HOSTILE_EPISODES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(EPISODES);
    let cat = catalog();
    let mut env = Env::new(Arc::clone(&cat));
    let mut steps = 0;
    for k in 0..episodes {
        let family = BASIC_FAMILIES[(k % BASIC_FAMILIES.len() as u64) as usize];
        let seed = k / BASIC_FAMILIES.len() as u64;
        let mut r = ChaCha8Rng::seed_from_u64(k);
        let difficulty = r.below(11) as f64 / 10.0;
        let (texts, seen) = play(&mut env, family, seed, difficulty, &mut r);
        steps += texts.len();
        // Every ninth episode is replayed from its action texts in a fresh environment.
        if k % 9 == 4 {
            let mut fresh = Env::new(Arc::clone(&cat));
            let page = fresh.reset(family, seed, difficulty).expect("reset");
            assert_eq!(serde_json::to_string(&page).expect("json"), seen[0]);
            for (i, text) in texts.iter().enumerate() {
                let step = fresh.step_json(text).expect("replayed step");
                assert_eq!(
                    serde_json::to_string(&step.observation).expect("json"),
                    seen[i + 1],
                    "{family} seed {seed}: step {i} ({text}) replayed differently"
                );
            }
        }
    }
    // The episodes did get somewhere: not every one ended at its first step.
    assert!(
        steps as u64 > episodes * 3,
        "{steps} steps in {episodes} episodes"
    );
}

/// Plays `rounds` batches of hostile actions through a vector environment of `slots` slots with auto-reset;
/// every page and step result as JSON. Each slot's actions are drawn from its own generator, for the services of
/// the episode it plays; an action that does not parse (a parameter out of its type's range) is a `wait`.
fn play_batches(mut v: VecEnv, rounds: usize) -> Vec<String> {
    let slots = v.len();
    let mut log = Vec::new();
    let mut names = Vec::new();
    for page in v.reset() {
        let page = page.expect("reset");
        names.push(services(&page));
        log.push(serde_json::to_string(&page).expect("json"));
    }
    let mut rngs: Vec<ChaCha8Rng> = (0..slots as u64).map(ChaCha8Rng::seed_from_u64).collect();
    for _ in 0..rounds {
        let actions: Vec<Action> = (0..slots)
            .map(|i| {
                parse_action(&action(&mut rngs[i], &names[i]).to_string()).unwrap_or_else(|_| {
                    parse_action(r#"{"action": "wait", "minutes": 1}"#).expect("wait")
                })
            })
            .collect();
        for (i, r) in v.step(&actions).into_iter().enumerate() {
            let r = r.expect("step");
            if let Some(page) = &r.reset_observation {
                names[i] = services(page);
            }
            log.push(serde_json::to_string(&r).expect("json"));
        }
    }
    log
}

/// Hostile batches give the same results on one thread, on two, and on two with the next starts prepared ahead
/// ([`VecEnv::set_prefetch`]): episodes of every length, error observations and auto-resets included.
#[test]
fn hostile_batches_do_not_depend_on_threads_or_prefetching() {
    let schedule: Vec<EpisodeSpec> = (0..27u64)
        .map(|k| EpisodeSpec {
            scenario: BASIC_FAMILIES[(k % BASIC_FAMILIES.len() as u64) as usize].to_string(),
            seed: 50 + k,
            difficulty: 0.5,
        })
        .collect();
    // Which resets find their start prepared depends on the threads' timing; the results must not.
    let run = |threads: usize, prefetch: bool| {
        let mut v = VecEnv::new(catalog(), 6, schedule.clone(), AutoReset::SameStep, threads);
        v.set_prefetch(prefetch);
        play_batches(v, 30)
    };
    let one = run(1, false);
    let two = run(2, false);
    let prefetched = run(2, true);
    assert_eq!(one, two);
    assert_eq!(one, prefetched);
}
