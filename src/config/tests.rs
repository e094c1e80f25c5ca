//! Tests of parsing, validation, the demo config and the effective-config
//! round trip. Router tests live next to the router.

use std::time::Duration;

use super::*;
use crate::domain::{Exhaustion, Sku, SkuPattern};

const DEMO: &str = include_str!("../../config/default.toml");

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, "t.toml")
}

fn err(text: &str) -> String {
    parse(text)
        .expect_err("config should be rejected")
        .to_string()
}

/// The (path, message) pairs of a config that parses but breaks rules.
fn problems(text: &str) -> Vec<(String, String)> {
    match parse(text) {
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.into_iter().map(|p| (p.path, p.message)).collect()
        }
        other => panic!("expected semantic problems, got {other:?}"),
    }
}

fn w(s: &str) -> WarehouseId {
    WarehouseId::new(s).unwrap()
}

#[test]
fn empty_file_is_the_default_config() {
    assert_eq!(parse("").unwrap(), Config::default());
    assert_eq!(
        parse("# nothing here\n\n[shards]\n").unwrap(),
        Config::default()
    );
    let c = Config::default();
    assert!(c.problems().is_empty());
    assert_eq!(c.shards.count, 4);
    assert_eq!(c.retry_policy(), RetryPolicy::default());
    assert_eq!(c.exhaustion_rules(), ExhaustionRules::default());
    assert_eq!(c.max_wait(), Duration::from_secs(5));
    assert_eq!(c.dedupe_horizon(), 200_000);
    assert_eq!(c.cancel_confirmed(), CancelConfirmed::Restock);
    assert_eq!(c.concurrency_for(&w("any")), 64);
    assert_eq!(c.max_quantity(), 1000);
    assert_eq!(c.limits.max_payload_bytes, 65536);
    assert_eq!(c.limits.max_batch_size, 1000);
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    assert_eq!(
        err("[shards]\ncount = 4\ncolour = 1\n"),
        "t.toml: shards.colour: unknown field `colour`, expected `count` or `pins`"
    );
    assert!(err("shard = 1\n").starts_with("t.toml: shard: unknown field `shard`"));
    assert!(err("[[shards.pins]]\nsku = \"A\"\nshard = 0\nweight = 2\n")
        .starts_with("t.toml: shards.pins[0].weight: unknown field `weight`"));
    assert!(
        err("[exhaustion]\ndefault = { policy = \"reject\", tll = \"1s\" }\n")
            .starts_with("t.toml: exhaustion.default.tll: unknown field `tll`")
    );
    assert!(
        err("[[exhaustion.rules]]\nsku = \"A\"\npolicy = \"reject\"\nx = 1\n")
            .starts_with("t.toml: exhaustion.rules[0].x: unknown field `x`")
    );
}

#[test]
fn bad_names_fail_at_their_key_path() {
    let pins = "[[routing.pins]]\nsku = \"A-*\"\nwarehouse = \"fra\"\n\
                [[routing.pins]]\nsku = \"TV.*\"\nwarehouse = \"fra\"\n";
    assert_eq!(
        err(pins),
        "t.toml: routing.pins[1].sku: SKU pattern \"TV.*\" has '.'; \
         allowed: A-Z a-z 0-9 _ - and the wildcards * ?"
    );
    assert!(
        err("[[shards.pins]]\nsku = \"\"\nshard = 0\n").starts_with("t.toml: shards.pins[0].sku: ")
    );
    let e = Config::from_toml(
        "[routing.regions]\neu = [\"ams\", \"f.ra\"]\n",
        "config/default.toml",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "config/default.toml: routing.regions.eu[1]: warehouse has '.' at byte 1; \
         allowed: A-Z a-z 0-9 _ -"
    );
    // A key that is not a bare TOML key is quoted, so its dot is not a separator.
    assert!(err("[routing.regions]\n\"e.u\" = [\"ams\"]\n")
        .starts_with("t.toml: routing.regions.\"e.u\": region has '.'"));
    assert!(err("[workers.warehouses]\n\"a b\" = 1\n")
        .starts_with("t.toml: workers.warehouses.\"a b\": warehouse has ' '"));
}

#[test]
fn bad_values_say_what_is_allowed() {
    assert!(err("[retry]\nbase_backoff = \"5 parsecs\"\n").starts_with(
        "t.toml: retry.base_backoff: invalid duration \"5 parsecs\" (unknown time unit"
    ));
    assert!(err("[scheduler]\nmax_wait = 5\n").contains(
        "scheduler.max_wait: invalid type: integer `5`, expected a duration string such as \"250ms\""
    ));
    assert_eq!(
        err("[scheduler]\ncancel_confirmed = \"undo\"\n"),
        "t.toml: scheduler.cancel_confirmed: unknown variant `undo`, expected `restock` or `refuse`"
    );
    assert_eq!(
        err("[[exhaustion.rules]]\nsku = \"A\"\npolicy = \"wait\"\n"),
        "t.toml: exhaustion.rules[0].policy: unknown variant `wait`, \
         expected one of `reject`, `backorder`, `reroute`"
    );
    assert_eq!(
        err("[exhaustion]\ndefault = { policy = \"backorder\" }\n"),
        "t.toml: exhaustion.default: policy \"backorder\" needs a ttl, e.g. ttl = \"10m\""
    );
    assert_eq!(
        err("[[exhaustion.rules]]\nsku = \"A\"\npolicy = \"reroute\"\nttl = \"1s\"\n"),
        "t.toml: exhaustion.rules[0]: ttl only applies to policy \"backorder\", \
         not \"reroute\"; remove the ttl"
    );
}

#[test]
fn syntax_errors_give_line_and_column_on_one_line() {
    let e = err("[shards]\ncount = 4\npins = [\n");
    assert!(e.starts_with("t.toml: line 4, column 1: "), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn each_semantic_rule_names_its_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("[shards]\ncount = 0", "shards.count", "0 is out of range, must be 1..=1024"),
        ("[shards]\ncount = 1025", "shards.count", "1025 is out of range, must be 1..=1024"),
        (
            "[shards]\ncount = 2\n[[shards.pins]]\nsku = \"A\"\nshard = 2",
            "shards.pins[0].shard",
            "shard 2 does not exist, must be 0..=1 (shards.count is 2)",
        ),
        (
            "[routing.regions]\neu = []",
            "routing.regions.eu",
            "lists no warehouses; give at least one, in order of preference",
        ),
        (
            "[routing.regions]\neu = [\"ams\", \"fra\", \"ams\"]",
            "routing.regions.eu[2]",
            "warehouse \"ams\" is already listed at [0]; list each warehouse once",
        ),
        (
            "[routing]\ndefault_region = \"apac\"\n[routing.regions]\neu = [\"ams\"]\nus = [\"nyc\"]",
            "routing.default_region",
            "region \"apac\" is not in routing.regions; known regions: eu, us",
        ),
        (
            "[routing]\ndefault_region = \"eu\"",
            "routing.default_region",
            "region \"eu\" is not in routing.regions; no regions are configured (routing.regions is empty)",
        ),
        (
            "[exhaustion]\ndefault = { policy = \"backorder\", ttl = \"0s\" }",
            "exhaustion.default.ttl",
            "backorder ttl is 0, must be positive, e.g. \"10m\"",
        ),
        (
            "[[exhaustion.rules]]\nsku = \"A\"\npolicy = \"reject\"\n\
             [[exhaustion.rules]]\nsku = \"B\"\npolicy = \"backorder\"\nttl = \"0ms\"",
            "exhaustion.rules[1].ttl",
            "backorder ttl is 0, must be positive, e.g. \"10m\"",
        ),
        (
            "[retry]\nbase_backoff = \"1s\"\nmax_backoff = \"500ms\"",
            "retry.max_backoff",
            "500ms is below retry.base_backoff (1s); must be at least that",
        ),
        ("[scheduler]\ndedupe_horizon = 0", "scheduler.dedupe_horizon", "is 0, must be at least 1"),
        ("[workers]\ndefault_concurrency = 0", "workers.default_concurrency", "is 0, must be at least 1"),
        ("[workers.warehouses]\nams = 0", "workers.warehouses.ams", "is 0, must be at least 1"),
        ("[limits]\nmax_quantity = 0", "limits.max_quantity", "0 is out of range, must be 1..=4294967295"),
        (
            "[limits]\nmax_quantity = 4294967296",
            "limits.max_quantity",
            "4294967296 is out of range, must be 1..=4294967295",
        ),
        ("[limits]\nmax_payload_bytes = 0", "limits.max_payload_bytes", "is 0, must be at least 1"),
        ("[limits]\nmax_batch_size = 0", "limits.max_batch_size", "is 0, must be at least 1"),
    ];
    for &(text, path, message) in cases {
        assert_eq!(
            problems(text),
            vec![(path.to_owned(), message.to_owned())],
            "config:\n{text}"
        );
    }
}

#[test]
fn boundaries_are_accepted() {
    let c = parse(
        "[shards]\ncount = 1024\n[[shards.pins]]\nsku = \"A\"\nshard = 1023\n\
         [retry]\nbase_backoff = \"2s\"\nmax_backoff = \"2s\"\n\
         [limits]\nmax_quantity = 4294967295\n\
         [scheduler]\nmax_wait = \"0s\"",
    )
    .unwrap();
    assert_eq!(c.max_quantity(), u32::MAX);
    assert_eq!(c.max_wait(), Duration::ZERO);
}

#[test]
fn all_semantic_problems_are_reported_at_once() {
    let text = "[shards]\ncount = 0\n\
                [routing]\ndefault_region = \"eu\"\n\
                [routing.regions]\nus = [\"nyc\", \"nyc\"]\n\
                [retry]\nbase_backoff = \"1s\"\nmax_backoff = \"1ms\"\n\
                [limits]\nmax_batch_size = 0\n";
    let e = Config::from_toml(text, "prod.toml").unwrap_err();
    let paths: Vec<&str> = e.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "shards.count",
            "routing.default_region",
            "routing.regions.us[1]",
            "retry.max_backoff",
            "limits.max_batch_size",
        ]
    );
    let shown = e.to_string();
    assert_eq!(shown.lines().count(), 5, "{shown}");
    assert!(
        shown.lines().all(|l| l.starts_with("prod.toml: ")),
        "{shown}"
    );
}

#[test]
fn demo_config_is_valid_and_means_what_it_says() {
    let c = Config::from_toml(DEMO, "config/default.toml").unwrap();
    assert_eq!(c.shards.count, 4);
    assert_eq!(c.routing.regions.len(), 2);
    let rules = c.exhaustion_rules();
    assert_eq!(
        rules.for_sku(&Sku::new("PRE-SWITCH2").unwrap()),
        &Exhaustion::Backorder {
            ttl: Duration::from_secs(24 * 3600)
        }
    );
    assert_eq!(
        rules.for_sku(&Sku::new("MUG").unwrap()),
        &Exhaustion::Reroute
    );
    assert_eq!(c.concurrency_for(&w("ams")), 128);
    assert_eq!(c.concurrency_for(&w("fra")), 64);
    assert_eq!(
        c.warehouses(),
        ["ams", "fra", "nyc", "sfo"].map(w),
        "every warehouse named once, sorted"
    );
    let route = c
        .router()
        .route(&Sku::new("PS5-DISC").unwrap(), None, None)
        .unwrap();
    assert_eq!(route.partition.warehouse, w("ams"));
    assert_eq!(route.shard, 3);
}

#[test]
fn effective_config_round_trips_through_toml() {
    let mut every_policy = Config::default();
    every_policy.exhaustion.default = Exhaustion::Backorder {
        ttl: Duration::from_millis(1500),
    };
    every_policy.exhaustion.rules = vec![
        ExhaustionRule {
            sku: SkuPattern::new("A*").unwrap(),
            policy: Exhaustion::Reject,
        },
        ExhaustionRule {
            sku: SkuPattern::new("B?").unwrap(),
            policy: Exhaustion::Reroute,
        },
    ];
    every_policy.scheduler.cancel_confirmed = CancelConfirmed::Refuse;
    let demo = parse(DEMO).unwrap();
    for c in [Config::default(), demo, every_policy] {
        let text = c.to_toml();
        assert_eq!(parse(&text).unwrap(), c, "effective config:\n{text}");
    }
    assert!(parse(DEMO).unwrap().to_toml().contains("ttl = \"24h\""));
}

#[test]
fn check_loads_validates_and_prints_the_effective_config() {
    // Unit tests run in the package root, so the default path resolves.
    let files = |f: Vec<std::path::PathBuf>| Layers {
        files: f,
        ..Layers::default()
    };
    let printed = check(&files(vec![])).unwrap();
    assert_eq!(parse(&printed).unwrap(), parse(DEMO).unwrap());

    let dir = std::env::temp_dir().join(format!("allot-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    std::fs::write(&good, "[shards]\ncount = 8\n").unwrap();
    let printed = check(&files(vec![good.clone()])).unwrap();
    assert!(printed.contains("count = 8"), "{printed}");
    assert!(
        printed.contains("[limits]"),
        "defaults are written out: {printed}"
    );

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[shards]\ncount = 0\n").unwrap();
    let e = check(&files(vec![bad.clone()])).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "config: shards.count: 0 is out of range, must be 1..=1024 (set by {})",
            bad.display()
        )
    );
    // A later layer wins, and a wrong type names its file and key.
    let mut layered = files(vec![good.clone()]);
    layered.set("shards.count", "16");
    assert!(check(&layered).unwrap().contains("count = 16"));
    layered.set("scheduler.max_wait", "soon");
    let e = check(&layered).unwrap_err().to_string();
    assert!(
        e.starts_with("command-line flag: scheduler.max_wait: invalid duration \"soon\""),
        "{e}"
    );

    let missing = dir.join("missing.toml");
    let e = check(&files(vec![missing.clone()])).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(e
        .to_string()
        .starts_with(&format!("{}: cannot read the file: ", missing.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}
