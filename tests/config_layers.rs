//! Config layering through the `allot` binary, as an operator meets it:
//! built-in defaults < config/default.toml < config/<env>.toml <
//! ALLOT__SECTION__KEY < flags, and errors that name the key and the layer.

use std::path::Path;
use std::process::{Command, Output};

fn allot(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_allot"));
    cmd.current_dir(dir).arg("config").arg("check").args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("ALLOT__") || k == "ALLOT_ENV" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run allot config check")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The value of `key = ...` in `[section]` of the printed config.
fn value(printed: &str, section: &str, key: &str) -> String {
    let mut current = "";
    for line in printed.lines() {
        if let Some(s) = line.strip_prefix('[') {
            current = s.trim_end_matches(']');
        } else if current == section {
            if let Some(v) = line.strip_prefix(&format!("{key} = ")) {
                return v.trim_matches('"').to_owned();
            }
        }
    }
    panic!("{section}.{key} not printed:\n{printed}")
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/default.toml"),
        "[shards]\ncount = 8\n[scheduler]\nmax_wait = \"2s\"\ndedupe_horizon = 1000\n[retry]\nmax_retries = 5\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("config/prod.toml"),
        "[scheduler]\nmax_wait = \"3s\"\ndedupe_horizon = 2000\n",
    )
    .unwrap();
    dir
}

#[test]
fn each_layer_overrides_the_one_before() {
    let dir = project();
    let p = dir.path();
    let out = allot(p, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert_eq!(value(&printed, "shards", "count"), "8", "the file");
    assert_eq!(value(&printed, "scheduler", "max_wait"), "2s");
    assert_eq!(
        value(&printed, "workers", "default_concurrency"),
        "64",
        "a default"
    );

    let out = allot(p, &["--env", "prod"], &[]);
    let printed = text(&out);
    assert_eq!(
        value(&printed, "scheduler", "max_wait"),
        "3s",
        "the environment's file"
    );
    assert_eq!(
        value(&printed, "retry", "max_retries"),
        "5",
        "kept from default.toml"
    );

    let env = [
        ("ALLOT_ENV", "prod"),
        ("ALLOT__SCHEDULER__MAX_WAIT", "4s"),
        ("ALLOT__SCHEDULER__DEDUPE_HORIZON", "3000"),
        ("ALLOT__HTTP__AUTH_TOKEN", "12345"),
    ];
    let out = allot(p, &[], &env);
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert_eq!(
        value(&printed, "scheduler", "max_wait"),
        "4s",
        "an env variable"
    );
    assert_eq!(value(&printed, "scheduler", "dedupe_horizon"), "3000");
    assert_eq!(
        value(&printed, "http", "auth_token"),
        "<redacted>",
        "secrets masked"
    );

    let out = allot(
        p,
        &[
            "--set",
            "scheduler.max_wait=5s",
            "--nats-url",
            "nats://a:1,nats://b:2",
        ],
        &env,
    );
    let printed = text(&out);
    assert_eq!(value(&printed, "scheduler", "max_wait"), "5s", "a flag");
    assert_eq!(value(&printed, "scheduler", "dedupe_horizon"), "3000");
    assert_eq!(value(&printed, "nats", "url"), "nats://a:1,nats://b:2");
}

#[test]
fn errors_name_the_key_and_the_layer() {
    let dir = project();
    let p = dir.path();
    let out = allot(p, &[], &[("ALLOT__HTTP__BIND", "not-an-address")]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains("environment variable ALLOT__HTTP__BIND: http.bind:"),
        "{msg}"
    );

    let out = allot(p, &["--set", "fulfiller.failure_rate=2"], &[]);
    let msg = text(&out);
    assert!(
        msg.contains(
            "fulfiller.failure_rate: 2 is out of range, must be 0..=1 (set by command-line flag)"
        ),
        "{msg}"
    );

    std::fs::write(p.join("config/bad.toml"), "[scheduler]\nmax_wait = 5\n").unwrap();
    let out = allot(p, &["--env", "bad"], &[]);
    let msg = text(&out);
    assert!(msg.contains("config/bad.toml"), "{msg}");
    assert!(msg.contains("scheduler.max_wait"), "{msg}");

    let out = allot(p, &["--env", "missing"], &[]);
    let msg = text(&out);
    assert!(
        msg.contains("config/missing.toml: cannot read the file"),
        "{msg}"
    );

    let out = allot(p, &["--set", "nokey"], &[]);
    assert!(text(&out).contains("write KEY=VALUE"), "{}", text(&out));

    let out = allot(p, &["--set", "scheduler.typo=1"], &[]);
    let msg = text(&out);
    assert!(msg.contains("scheduler") && msg.contains("typo"), "{msg}");
}
