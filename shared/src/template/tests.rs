use serde_json::json;

use super::*;

fn refused(source: &str) -> String {
    check(source).err().unwrap_or_else(|| panic!("{source:?} was accepted"))
}

#[test]
fn partials_inline_partials_decorators_and_unlisted_helpers_are_refused() {
    let recursive = r#"{{#*inline "a"}}x{{> b}}{{/inline}}{{#*inline "b"}}y{{> a}}{{/inline}}{{> a}}"#;
    assert!(refused(recursive).contains("inline partials"), "{}", refused(recursive));
    assert!(refused("{{> footer}}").contains("partials"));
    assert!(refused("{{#> layout}}x{{/layout}}").contains("partials"));
    assert!(refused(r#"{{log email level="error"}}"#).contains("`log`"));
    assert!(refused("{{log}}").contains("`log`"), "a bare built-in call");
    assert!(refused("{{{{raw}}}}{{x}}{{{{/raw}}}}").contains("`raw`"));
    assert!(refused("{{#mystery x}}y{{/mystery}}").contains("`mystery`"));
    assert!(refused("{{shout name}}").contains("`shout`"));
    assert!(refused("{{#if (log x)}}y{{/if}}").contains("`log`"), "inside a subexpression");
    assert!(refused("{{#if x}}").starts_with("template error"));
}

#[test]
fn ordinary_templates_pass() {
    for ok in [
        "Hello {{name}}, {{email}}",
        "{{#if vip}}Gold{{else}}Hi{{/if}} {{#unless x}}u{{/unless}}",
        "{{#each items}}{{@index}}: {{this.title}} {{lookup ../prices @index}}{{/each}}",
        "{{#with address}}{{city}}{{/with}} {{#if (eq plan \"pro\")}}pro{{/if}} {{len items}}",
        "{{! a comment }}{{{html_block}}}",
    ] {
        check(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
}

#[test]
fn deep_nesting_is_refused_before_the_parser_sees_it() {
    let deep = "{{#if a}}".repeat(100_000) + &"{{/if}}".repeat(100_000);
    assert!(refused(&deep).contains("nested deeper"));
    let parens = format!("{{{{x {}y{}}}}}", "(not ".repeat(50_000), ")".repeat(50_000));
    assert!(refused(&parens).contains("nested deeper"));
    let fine = "{{#if a}}".repeat(MAX_DEPTH) + &"{{/if}}".repeat(MAX_DEPTH);
    check(&fine).unwrap();
}

fn compiled(source: &str) -> Handlebars<'static> {
    let mut h = registry(false);
    h.register_template("t", check(source).unwrap());
    h
}

#[test]
fn output_past_the_cap_stops_the_render() {
    let h = compiled("{{#each a}}{{#each ../a}}{{#each ../../a}}0123456789{{/each}}{{/each}}{{/each}}");
    let data = json!({"a": (0..60).collect::<Vec<_>>()});
    let err = render(&h, "t", &Data::new(data), 1024 * 1024).unwrap_err();
    assert_eq!(err, "rendered output exceeds 1048576 bytes");
    assert_eq!(render(&h, "t", &Data::new(json!({"a": [1, 2]})), 1024).unwrap(), "0123456789".repeat(8));
}

#[test]
fn loops_that_could_run_too_long_are_refused_before_rendering() {
    let nested = "{{#each @root.a}}".repeat(5) + &"{{/each}}".repeat(5);
    let h = compiled(&nested);
    let err = render(&h, "t", &Data::new(json!({"a": (0..100).collect::<Vec<_>>()})), 1 << 20).unwrap_err();
    assert!(err.contains("steps; the limit is 1000000"), "{err}");
    assert_eq!(render(&h, "t", &Data::new(json!({"a": [1, 2, 3]})), 1 << 20).unwrap(), "");
}

#[test]
fn the_worker_registry_has_no_log_helper() {
    let mut h = registry(false);
    h.register_template_string("t", "{{log}}").unwrap();
    assert_eq!(render(&h, "t", &Data::new(json!({"log": "a value"})), 100).unwrap(), "a value", "a plain variable");
}
