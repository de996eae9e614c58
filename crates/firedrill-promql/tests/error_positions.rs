//! Every parse error says where it is: the byte offset of the offending part of the query (and from it the
//! line and column), including the errors `promql-parser` raises without one.

use firedrill_promql::{QueryError, parse_query};

/// The message and position of the parse error of `q`.
fn parse_error(q: &str) -> (String, Option<usize>) {
    match parse_query(q) {
        Err(QueryError::Parse { message, position }) => (message, position),
        other => panic!("{q:?} should not parse, got {other:?}"),
    }
}

/// Asserts the message and the byte offset of the error of `q`.
#[track_caller]
fn assert_error(q: &str, position: usize, message: &str) {
    let (m, p) = parse_error(q);
    assert_eq!(m, message, "message of {q:?}");
    assert_eq!(
        p,
        Some(position),
        "position of {q:?} ({message}); got {:?}, expected {:?}",
        p.map(|p| &q[p..]),
        &q[position..]
    );
}

/// Asserts the 1-based line and column of the error of `q`.
#[track_caller]
fn assert_line_column(q: &str, line: usize, column: usize) {
    let err = parse_query(q).expect_err("must fail");
    assert_eq!(err.line_column(q), Some((line, column)), "{q:?}: {err}");
}

const BINARY_TYPES: &str = "binary expression must contain only scalar and instant vector types";

#[test]
fn binary_operand_types_point_at_the_operator() {
    assert_error("foo[5m] + 1", 8, BINARY_TYPES);
    assert_error("1 - foo[5m]", 2, BINARY_TYPES);
    assert_error(r#"1 + "a""#, 2, BINARY_TYPES);
    // The inner operator, not the outer one.
    assert_error("a * (b / c[1m]) - d", 7, BINARY_TYPES);
    assert_error("a and b atan2 c[1m]", 8, BINARY_TYPES);
    assert_eq!(
        parse_query("foo[5m] + 1").unwrap_err().to_string(),
        format!("parse error at position 8: {BINARY_TYPES}")
    );
}

#[test]
fn scalar_comparisons_without_bool_point_at_the_operator() {
    let m = "comparisons between scalars must use BOOL modifier";
    assert_error("1 > 2", 2, m);
    assert_error("foo > 1 and 2 == 2", 14, m);
    assert_error("(1 + 2) != 3", 8, m);
    assert!(parse_query("1 > bool 2").is_ok());
}

#[test]
fn other_binary_errors_point_at_the_operator() {
    assert_error(
        "1 and foo",
        2,
        "set operator 'and' not allowed in binary scalar expression",
    );
    assert_error(
        "foo + bool bar",
        4,
        "bool modifier can only be used on comparison operators",
    );
    assert_error(
        "sort(foo) == on(a) 1",
        10,
        "vector matching only allowed between vectors",
    );
    assert_error(
        "foo or on(bar) group_left(baz) bar",
        4,
        "no grouping allowed for 'or' operation",
    );
    assert_error(
        "a + on(x) group_left(x) b",
        2,
        "label 'x' must not occur in ON and GROUP clause at once",
    );
    assert_error("foo + group_left(baz) bar", 6, "unexpected <group_left>");
}

#[test]
fn aggregation_argument_types_point_at_the_argument() {
    let vector = "expected type vector in aggregation expression, got matrix";
    assert_error("sum(foo[5m])", 4, vector);
    assert_error("sum by (job) (rate(x[1m])[5m:])", 14, vector);
    assert_error("bottomk(1, foo[5m])", 11, vector);
    let scalar = "expected type scalar in aggregation expression, got vector";
    assert_error("topk(foo, bar)", 5, scalar);
    assert_error("bottomk(foo, bar) by (a)", 8, scalar);
    assert_error(
        r#"quantile("x", foo)"#,
        9,
        "expected type scalar in aggregation expression, got string",
    );
    assert_error(
        "count_values(1, foo)",
        13,
        "expected type string in aggregation expression, got scalar",
    );
}

/// `promql-parser` does not check the parameter of `limitk` and `limit_ratio`; the engine does, as Prometheus.
#[test]
fn limit_parameters_must_be_scalars() {
    assert_error(
        "limitk(foo, bar)",
        7,
        "expected type scalar in aggregation expression, got vector",
    );
    assert_error(
        r#"limit_ratio("x", foo)"#,
        12,
        "expected type scalar in aggregation expression, got string",
    );
    assert_error(
        "sum(limitk(2, a)) + limitk(b[1m], c)",
        27,
        "expected type scalar in aggregation expression, got matrix",
    );
    for ok in [
        "limitk(2, foo)",
        "limit_ratio(0.5, foo) by (a)",
        "limitk(scalar(bar), foo)",
        "LIMITK(-(1), foo)",
    ] {
        assert!(parse_query(ok).is_ok(), "{ok}");
    }
}

#[test]
fn aggregation_arity_points_at_the_operator_or_the_extra_argument() {
    assert_error(
        "topk(1)",
        0,
        "wrong number of arguments for aggregate expression provided, expected 2, got 1",
    );
    assert_error(
        "1 + topk(1, 2, 3)",
        15,
        "wrong number of arguments for aggregate expression provided, expected 2, got 3",
    );
    assert_error(
        "sum () by (test)",
        0,
        "no arguments for aggregate expression 'sum' provided",
    );
    assert_error(
        "topk(some_metric,)",
        16,
        "trailing commas not allowed in function call args",
    );
    assert_error(
        "sum by (foo:bar) (x)",
        8,
        "foo:bar is not valid label in grouping opts",
    );
}

#[test]
fn function_argument_errors_point_at_the_argument() {
    assert_error(
        "rate(up)",
        5,
        "expected type matrix in call to function 'rate', got vector",
    );
    // The call that is wrong, not the first call of that function.
    assert_error(
        "rate(x[5m]) + rate(y)",
        19,
        "expected type matrix in call to function 'rate', got vector",
    );
    assert_error(
        r#"label_replace(foo, "a", "b", 1, "d")"#,
        29,
        "expected type string in call to function 'label_replace', got scalar",
    );
    assert_error(
        r#"round(foo, "x")"#,
        11,
        "expected type scalar in call to function 'round', got string",
    );
    assert_error(
        "clamp(foo, 1, 2, 3)",
        17,
        "expected 3 argument(s) in call to 'clamp', got 4",
    );
    assert_error(
        "round(foo, 1, 2)",
        14,
        "expected at most 2 argument(s) in call to 'round', got 3",
    );
    assert_error(
        "histogram_quantile(0.9)",
        0,
        "expected 2 argument(s) in call to 'histogram_quantile', got 1",
    );
    assert_error(
        "1 + unknown_fn(up)",
        4,
        "unknown function with name 'unknown_fn'",
    );
    assert_error(
        "rate(x[5m],)",
        10,
        "trailing commas not allowed in function call args",
    );
}

#[test]
fn modifier_errors_point_at_the_modifier() {
    assert_error(
        "-foo[5m]",
        0,
        "unary expression only allowed on expressions of type scalar or vector, got: matrix",
    );
    assert_error(
        "foo[5m][1h:]",
        7,
        "subquery is only allowed on vector, got matrix instead",
    );
    assert_error(
        "(foo + 1)[5m]",
        9,
        "ranges only allowed for vector selectors",
    );
    assert_error(
        "foo offset 5m[5m]",
        13,
        "no offset modifiers allowed before range",
    );
    assert_error(
        "foo offset 5m offset 1m",
        14,
        "offset may not be set multiple times",
    );
    assert_error(
        "foo @ 1 @ 2",
        8,
        "@ <timestamp> may not be set multiple times",
    );
    assert_error(
        "sum(foo) offset 5m",
        9,
        "offset modifier must be preceded by an vector selector or matrix selector or a subquery",
    );
    assert_error(
        "foo @ 1e999",
        6,
        "timestamp out of bounds for @ modifier: inf",
    );
    assert_error("foo[5m:0s]", 7, "duration must be greater than 0");
    assert_error("foo[5m1h]", 4, "not a valid duration string: 5m1h");
    assert_error("foo[]", 4, "missing unit character in duration");
    assert_error(
        "foo offset",
        10,
        "unexpected end of input in offset, expected duration",
    );
}

#[test]
fn selector_errors_point_at_the_matcher() {
    assert_error(
        r#"foo{a="b", __name__="bar"}"#,
        11,
        "metric name must not be set twice: 'foo' or 'bar'",
    );
    assert_error(
        r#"x + {a=""}"#,
        4,
        "vector selector must contain at least one non-empty matcher",
    );
    assert_error(
        "{a}",
        1,
        "invalid label matcher, expected label matching operator after 'a'",
    );
    assert_error(
        r#"foo{a == "b"}"#,
        7,
        "unexpected '=' in label matching, expected string",
    );
    assert_error(
        r#"foo{a="b", c=d}"#,
        13,
        "unexpected identifier 'd' in label matching, expected string",
    );
    assert_error(r#"foo{a="b", c=~"("}"#, 14, "illegal regex for (");
    assert_error(
        "{,}",
        1,
        "unexpected ',' in label matching, expected identifier or right_brace",
    );
}

#[test]
fn unclosed_brackets_point_at_the_earliest_unmatched_opening() {
    let m = "unclosed left parenthesis";
    assert_error("sum(rate(foo[5m])", 3, m);
    assert_error("a + (b", 4, m);
    assert_error("(a) + (b", 6, m);
    assert_error("sum(rate(foo[5m]", 3, m);
    // Brackets in strings and comments do not count.
    assert_error("f(\")\", (x", 1, m);
    assert_error("(a) # (\n + (b", 11, m);
    assert_error(
        r#"a{b="c"} + d{e="f""#,
        12,
        "unexpected end of input inside braces",
    );
    assert_error("a[5m] + b[5m", 9, "unexpected end of input inside brackets");
    assert_error(r#""a" + "b"#, 6, "unterminated quoted string \"");
}

#[test]
fn multi_line_queries_report_line_and_column() {
    let q = "sum by (job) (\n  rate(http_requests_total[5m])\n) > 1 +\n  foo[5m]";
    assert_error(q, 53, BINARY_TYPES);
    assert_line_column(q, 3, 7);

    let q = "sum(\n  foo[5m]\n)";
    assert_error(
        q,
        7,
        "expected type vector in aggregation expression, got matrix",
    );
    assert_line_column(q, 2, 3);

    let q = "quantile( # the level\n  \"x\",\n  foo)";
    assert_error(
        q,
        24,
        "expected type scalar in aggregation expression, got string",
    );
    assert_line_column(q, 2, 3);

    let q = "1\n  > 2";
    assert_error(q, 4, "comparisons between scalars must use BOOL modifier");
    assert_line_column(q, 2, 3);

    let q = "label_replace(\n  up,\n  \"dst\",\n  \"$1\",\n  1,\n  \"(.*)\"\n)";
    assert_error(
        q,
        40,
        "expected type string in call to function 'label_replace', got scalar",
    );
    assert_line_column(q, 5, 3);

    let q = "sum(\n  rate(foo[5m])";
    assert_error(q, 3, "unclosed left parenthesis");
    assert_line_column(q, 1, 4);

    let q = "a +\n  (b";
    assert_error(q, 6, "unclosed left parenthesis");
    assert_line_column(q, 2, 3);

    // Columns count characters: the offset is 9 bytes in, the column the 7th character.
    let q = "\"ééé\" + x[5m]";
    assert_error(q, 9, BINARY_TYPES);
    assert_line_column(q, 1, 7);
}

#[test]
fn errors_located_before_keep_their_positions() {
    // Lexer and syntax errors, located by lexing and parsing prefixes.
    assert_error("foo $ bar", 4, "unexpected character: '$'");
    assert_error("sum by (le) up", 12, "invalid promql query");
    assert_error("1 +* 2", 3, "invalid promql query");
    assert_error("up + ", 5, "invalid promql query");
}

#[test]
fn engine_limits_and_parser_panics_are_located() {
    let deep = format!("{}x{}", "(".repeat(250), ")".repeat(250));
    let (m, p) = parse_error(&deep);
    assert_eq!(m, "query nesting too deep (250 levels)");
    assert_eq!(p, Some(200));
    // The parser would panic on a range too long for a `Duration`: refused before parsing, where the number is.
    assert_error("rate(x[1e999])", 7, "duration out of range: 1e999");
    assert_error("x offset 1e999", 9, "duration out of range: 1e999");
}
