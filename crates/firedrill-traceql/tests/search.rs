//! Search and JSON-shape tests over a small `MemTraceSource`.

use std::collections::BTreeMap;

use firedrill_traceql::{
    AttrValue, IdEncoding, MemTraceSource, SearchOptions, Span, SpanKind, SpanStatus, TraceSource,
    TraceqlError, parse, parse_trace_id, search, search_with, to_tempo_search_json,
    trace_to_tempo_json, trace_to_tempo_json_with,
};
use proptest::prelude::*;
use serde_json::json;

const MS: i64 = 1_000_000;
const T0: i64 = 1_700_000_000_000_000_000;

fn tid(n: u8) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[0] = 0xab;
    id[15] = n;
    id
}

fn sid(n: u8) -> [u8; 8] {
    [0x10, 0, 0, 0, 0, 0, 0, n]
}

#[allow(clippy::too_many_arguments)]
fn span(
    t: u8,
    s: u8,
    parent: Option<u8>,
    service: &str,
    name: &str,
    kind: SpanKind,
    start_ms: i64,
    dur_ms: i64,
    status: SpanStatus,
    attrs: &[(&str, AttrValue)],
) -> Span {
    Span {
        trace_id: tid(t),
        span_id: sid(s),
        parent_span_id: parent.map(sid),
        service: service.into(),
        name: name.into(),
        kind,
        start_ns: T0 + start_ms * MS,
        duration_ns: dur_ms * MS,
        status,
        attributes: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// A: a failing checkout through three services; B: a fast healthy page load 10 s later;
/// C: an orphan payment span (its root was never received) 20 s later.
fn fixture() -> MemTraceSource {
    use SpanKind::*;
    use SpanStatus::*;
    let mut src = MemTraceSource::new();
    for s in [
        span(
            1,
            1,
            None,
            "frontend",
            "GET /checkout",
            Server,
            0,
            800,
            Error,
            &[("http.status_code", 502.into())],
        ),
        span(
            1,
            2,
            Some(1),
            "frontend",
            "POST checkout-service",
            Client,
            10,
            750,
            Unset,
            &[],
        ),
        span(
            1,
            3,
            Some(2),
            "checkout-service",
            "POST /pay",
            Server,
            20,
            700,
            Error,
            &[("http.status_code", 502.into()), ("retry", true.into())],
        ),
        span(
            1,
            4,
            Some(3),
            "payment-service",
            "charge",
            Server,
            30,
            650,
            Unset,
            &[("db.system", "postgres".into()), ("ratio", 0.25.into())],
        ),
        span(
            2,
            1,
            None,
            "frontend",
            "GET /home",
            Server,
            10_000,
            50,
            Ok,
            &[("http.status_code", 200.into())],
        ),
        span(
            2,
            2,
            Some(1),
            "catalog",
            "list",
            Internal,
            10_005,
            30,
            Unset,
            &[],
        ),
        span(
            3,
            1,
            Some(9),
            "payment-service",
            "charge",
            Consumer,
            20_000,
            5,
            Ok,
            &[],
        ),
    ] {
        src.push(s);
    }
    src
}

fn ids(q: &str) -> Vec<u8> {
    search(&fixture(), q, T0, T0 + 60_000 * MS, 20)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .iter()
        .map(|t| parse_trace_id(&t.trace_id).unwrap()[15])
        .collect()
}

#[test]
fn opensre_query_exact_json() {
    let hits = search(
        &fixture(),
        r#"{.service.name="checkout-service"}"#,
        T0,
        T0 + 60_000 * MS,
        20,
    )
    .unwrap();
    let body = to_tempo_search_json(&hits);
    let set = json!({
        "spans": [{
            "spanID": "1000000000000003",
            "name": "POST /pay",
            "startTimeUnixNano": (T0 + 20 * MS).to_string(),
            "durationNanos": (700 * MS).to_string(),
            "attributes": [{"key": "service.name", "value": {"stringValue": "checkout-service"}}]
        }],
        "matched": 1
    });
    assert_eq!(
        body["traces"],
        json!([{
            "traceID": "ab000000000000000000000000000001",
            "rootServiceName": "frontend",
            "rootTraceName": "GET /checkout",
            "startTimeUnixNano": T0.to_string(),
            "durationMs": 800,
            "spanSets": [set.clone()],
            "spanSet": set,
            "serviceStats": {
                "checkout-service": {"spanCount": 1, "errorCount": 1},
                "frontend": {"spanCount": 2, "errorCount": 1},
                "payment-service": {"spanCount": 1}
            }
        }])
    );
    assert!(body["metrics"].is_object());
}

#[test]
fn intrinsics() {
    assert_eq!(ids("{ status = error }"), [1]);
    assert_eq!(ids("{ status = ok }"), [3, 2]);
    assert_eq!(ids("{ status != unset && kind = server }"), [2, 1]);
    assert_eq!(ids("{ duration > 500ms && kind = server }"), [1]);
    assert_eq!(ids("{ duration <= 5ms }"), [3]);
    assert_eq!(ids(r#"{ name =~ "GET .*" }"#), [2, 1]);
    assert_eq!(
        ids(r#"{ name =~ "GET" }"#),
        Vec::<u8>::new(),
        "regexes are anchored"
    );
    assert_eq!(
        ids(r#"{ name !~ "GET .*|charge|list|POST.*" }"#),
        Vec::<u8>::new()
    );
    assert_eq!(
        ids(r#"{ rootServiceName = "frontend" && traceDuration > 100ms }"#),
        [1]
    );
    assert_eq!(ids(r#"{ kind = consumer }"#), [3]);
}

#[test]
fn attributes_and_scopes() {
    assert_eq!(ids("{ span.http.status_code >= 500 }"), [1]);
    assert_eq!(ids("{ .http.status_code = 200 }"), [2]);
    assert_eq!(
        ids(r#"{ .http.status_code = "200" }"#),
        Vec::<u8>::new(),
        "typed comparison"
    );
    assert_eq!(ids(r#"{ resource.service.name = "catalog" }"#), [2]);
    assert_eq!(
        ids(r#"{ span.service.name = "catalog" }"#),
        Vec::<u8>::new()
    );
    assert_eq!(ids("{ .retry = true }"), [1]);
    assert_eq!(ids("{ .ratio < 0.5 && .ratio > 0 }"), [1]);
    assert_eq!(
        ids(r#"{ .db.system = "postgres" || .http.status_code = 200 }"#),
        [2, 1]
    );
    assert_eq!(ids("{ .http.status_code != nil }"), [2, 1]);
    assert_eq!(ids("{ .nope = nil && kind = consumer }"), [3]);
    assert_eq!(
        ids("{ .http.status_code != 502 }"),
        [2],
        "missing attributes never compare"
    );
}

#[test]
fn spanset_combinations() {
    assert_eq!(
        ids(r#"{ resource.service.name = "frontend" } && { status = error }"#),
        [1]
    );
    assert_eq!(
        ids(r#"{ .service.name = "catalog" } && { status = error }"#),
        Vec::<u8>::new()
    );
    assert_eq!(
        ids(r#"{ .service.name = "catalog" } || { status = error }"#),
        [2, 1]
    );
    assert_eq!(
        ids(r#"({ .service.name = "catalog" } || { status = error }) && { kind = client }"#),
        [1]
    );
    assert_eq!(ids("{}"), [3, 2, 1]);
    assert_eq!(ids(""), [3, 2, 1]);
    let hits = search(
        &fixture(),
        r#"{ status = error } && { .service.name = "payment-service" }"#,
        T0,
        T0 + 60_000 * MS,
        20,
    )
    .unwrap();
    assert_eq!(hits[0].span_sets[0].matched, 3);
}

#[test]
fn orphans_limits_spss_and_time_range() {
    let hits = search(
        &fixture(),
        r#"{ .service.name = "payment-service" }"#,
        T0,
        T0 + 60_000 * MS,
        20,
    )
    .unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].root_service_name, "<root span not yet received>");
    assert_eq!(hits[0].root_trace_name, "");
    assert_eq!(ids_limit("{}", 1), [3]);
    let mut o = SearchOptions::new(T0, T0 + 60_000 * MS);
    o.spss = 1;
    let r = search_with(&fixture(), "{ kind = server }", &o).unwrap();
    let a = r
        .traces
        .iter()
        .find(|t| t.trace_id.ends_with("01"))
        .unwrap();
    assert_eq!((a.span_sets[0].spans.len(), a.span_sets[0].matched), (1, 3));
    assert_eq!(r.metrics.inspected_traces, 3);
    assert_eq!(r.metrics.inspected_spans, 7);
    assert_eq!(
        search(&fixture(), "{}", T0 + 5_000 * MS, T0 + 15_000 * MS, 20)
            .unwrap()
            .len(),
        1
    );
    let mut o = SearchOptions::new(T0, T0 + 60_000 * MS);
    o.max_inspected_spans = 3;
    assert!(matches!(
        search_with(&fixture(), "{}", &o),
        Err(TraceqlError::LimitExceeded(_))
    ));
    assert!(search(&fixture(), "{}", T0, T0 - 1, 20).is_err());
}

fn ids_limit(q: &str, limit: usize) -> Vec<u8> {
    search(&fixture(), q, T0, T0 + 60_000 * MS, limit)
        .unwrap()
        .iter()
        .map(|t| parse_trace_id(&t.trace_id).unwrap()[15])
        .collect()
}

#[test]
fn parse_errors_have_positions() {
    let e = search(&fixture(), r#"{ .a = "x" "#, T0, T0 + 1, 20).unwrap_err();
    assert_eq!(e.position(), Some(11));
    assert_eq!(
        e.to_string(),
        "parse error at position 11: expected '}', '&&' or '||' but found end of query"
    );
}

#[test]
fn tempo_trace_json_exact() {
    let t = fixture().trace(&tid(2)).unwrap();
    let j = trace_to_tempo_json(&t);
    assert_eq!(
        j,
        json!({"batches": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "catalog"}}]},
                "scopeSpans": [{"scope": {"name": "firedrill"}, "spans": [{
                    "traceId": "ab000000000000000000000000000002",
                    "spanId": "1000000000000002",
                    "parentSpanId": "1000000000000001",
                    "name": "list",
                    "kind": "SPAN_KIND_INTERNAL",
                    "startTimeUnixNano": (T0 + 10_005 * MS).to_string(),
                    "endTimeUnixNano": (T0 + 10_035 * MS).to_string(),
                    "attributes": [],
                    "status": {}
                }]}]
            },
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "frontend"}}]},
                "scopeSpans": [{"scope": {"name": "firedrill"}, "spans": [{
                    "traceId": "ab000000000000000000000000000002",
                    "spanId": "1000000000000001",
                    "name": "GET /home",
                    "kind": "SPAN_KIND_SERVER",
                    "startTimeUnixNano": (T0 + 10_000 * MS).to_string(),
                    "endTimeUnixNano": (T0 + 10_050 * MS).to_string(),
                    "attributes": [{"key": "http.status_code", "value": {"intValue": "200"}}],
                    "status": {"code": "STATUS_CODE_OK"}
                }]}]
            }
        ]})
    );
    let b = trace_to_tempo_json_with(&t, IdEncoding::Base64);
    assert_eq!(
        b["batches"][1]["scopeSpans"][0]["spans"][0]["spanId"],
        "EAAAAAAAAAE="
    );
}

#[test]
fn deterministic() {
    let a = to_tempo_search_json(&search(&fixture(), "{}", T0, T0 + 60_000 * MS, 20).unwrap());
    let b = to_tempo_search_json(&search(&fixture(), "{}", T0, T0 + 60_000 * MS, 20).unwrap());
    assert_eq!(a.to_string(), b.to_string());
}

fn cond_strategy() -> impl Strategy<Value = String> {
    let field = proptest::sample::select(
        &[
            "name",
            "status",
            "duration",
            "kind",
            ".http.status_code",
            "span.retry",
            "resource.service.name",
            ".ratio",
            "rootServiceName",
            "traceDuration",
        ][..],
    );
    let op = proptest::sample::select(&["=", "!=", ">", ">=", "<", "<=", "=~", "!~"][..]);
    let value = proptest::sample::select(
        &[
            "error",
            "ok",
            "server",
            "500ms",
            "502",
            "0.5",
            "true",
            "nil",
            "\"frontend\"",
            "\"GET .*\"",
            "-3",
        ][..],
    );
    let leaf = (field, op, value).prop_map(|(f, o, v)| format!("{f} {o} {v}"));
    leaf.prop_recursive(3, 8, 2, |inner| {
        (
            inner.clone(),
            proptest::sample::select(&["&&", "||"][..]),
            inner,
        )
            .prop_map(|(a, op, b)| format!("({a}) {op} {b}"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = parse(&s);
    }

    #[test]
    fn parse_never_panics_traceql_alphabet(s in r#"[{}()&|=!<>~."a-z0-9 :_-]{0,60}"#) {
        let _ = parse(&s);
    }

    #[test]
    fn search_never_panics(c in cond_strategy(), c2 in cond_strategy(), join in proptest::sample::select(&["&&", "||"][..])) {
        let q = format!("{{ {c} }} {join} {{ {c2} }}");
        let _ = search(&fixture(), &q, T0, T0 + 60_000 * MS, 5);
    }
}
