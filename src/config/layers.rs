//! The effective config, from layers that each override the one before:
//!
//! 1. built-in defaults ([`Config::default`]);
//! 2. `config/default.toml` if present, or the files given with `--config`;
//! 3. `config/<environment>.toml` when an environment is named
//!    (`--env prod` or `ALLOT_ENV=prod`); it must then exist;
//! 4. environment variables `ALLOT__SECTION__KEY` (`ALLOT__HTTP__BIND=...`,
//!    `ALLOT__SCHEDULER__MAX_WAIT=250ms`); keys are lowercased, values are
//!    read as TOML-like scalars or `[a, b]` arrays;
//! 5. command-line flags (`--nats-url`, `--set http.bind=127.0.0.1:0`).
//!
//! Tables merge key by key; any other value, arrays included, is replaced
//! whole. Every error names the key and the layer it came from, e.g.
//! `environment variable ALLOT__HTTP__BIND: http.bind: invalid socket
//! address syntax`.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::error::{ConfigError, Problem};
use super::{Config, DEFAULT_PATH};

/// Environment variables with this prefix set config keys; `__` separates
/// the section from the key.
pub const ENV_PREFIX: &str = "ALLOT__";

/// How errors name the command-line layer.
const FLAGS: &str = "command-line flag";

/// Where the effective config comes from (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Layers {
    /// Files in order; empty means `config/default.toml` if it exists.
    pub files: Vec<PathBuf>,
    /// Adds `config/<environment>.toml`.
    pub environment: Option<String>,
    /// Whether `ALLOT__*` environment variables are read.
    pub env_vars: bool,
    /// `(dotted.key, value)` from the command line, applied last.
    pub overrides: Vec<(String, Value)>,
}

impl Layers {
    /// Files, the environment's file and `ALLOT__*` variables, as a CLI
    /// command uses them.
    pub fn standard(files: Vec<PathBuf>, environment: Option<String>) -> Self {
        Self {
            files,
            environment: environment.filter(|e| !e.is_empty()),
            env_vars: true,
            overrides: Vec::new(),
        }
    }

    /// Sets `key` (dotted, e.g. `scheduler.max_wait`) from the command
    /// line, reading `value` as environment variables are read: `16` is a
    /// number, `[a, b]` an array, `250ms` a string.
    pub fn set(&mut self, key: &str, value: &str) {
        let value: Value = value.parse().unwrap_or_else(|e| match e {});
        self.overrides.push((key.to_owned(), value));
    }

    /// Sets `key` to the text `value` as it is (a password stays text even
    /// when it looks like a number).
    pub fn set_text(&mut self, key: &str, value: impl Into<String>) {
        self.overrides
            .push((key.to_owned(), Value::from(value.into())));
    }

    /// Parses `key=value` (a `--set` flag).
    pub fn set_pair(&mut self, pair: &str) -> Result<(), String> {
        match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                self.set(key.trim(), value);
                Ok(())
            }
            _ => Err(format!(
                "--set {pair:?}: write KEY=VALUE, e.g. --set scheduler.max_wait=250ms"
            )),
        }
    }

    /// The config files that apply, in order, each checked to exist.
    pub fn files(&self) -> Result<Vec<PathBuf>, ConfigError> {
        let mut files = self.files.clone();
        if files.is_empty() && Path::new(DEFAULT_PATH).exists() {
            files.push(PathBuf::from(DEFAULT_PATH));
        }
        if let Some(env) = &self.environment {
            files.push(PathBuf::from(format!("config/{env}.toml")));
        }
        for f in &files {
            if let Err(source) = std::fs::metadata(f) {
                return Err(ConfigError::Read {
                    origin: f.display().to_string(),
                    source,
                });
            }
        }
        Ok(files)
    }

    fn figment(&self) -> Result<Figment, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        for file in self.files()? {
            figment = figment.merge(Toml::file_exact(file));
        }
        if self.env_vars {
            figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        }
        if !self.overrides.is_empty() {
            figment = figment.merge(Flags(&self.overrides));
        }
        Ok(figment)
    }

    /// Loads, merges and validates every layer.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let figment = self.figment()?;
        let config: Config = figment
            .extract()
            .map_err(|first| every_section_error(&figment, first))?;
        let problems: Vec<Problem> = config
            .problems()
            .into_iter()
            .map(|p| match origin_of(&figment, &p.path) {
                Some(origin) => Problem::new(p.path, format!("{} (set by {origin})", p.message)),
                None => p,
            })
            .collect();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                origin: "config".into(),
                problems,
            })
        }
    }
}

/// The command-line layer: each `(dotted.key, value)` nested into tables.
struct Flags<'a>(&'a [(String, Value)]);

impl Provider for Flags<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named(FLAGS)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (key, value) in self.0 {
            insert(
                &mut root,
                &key.split('.').collect::<Vec<_>>(),
                value.clone(),
            );
        }
        Ok(Profile::Default.collect(root))
    }
}

/// Sets `path` (table keys) in `dict` to `value`, making tables on the way.
fn insert(dict: &mut Dict, path: &[&str], value: Value) {
    let Some((key, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        dict.insert((*key).to_owned(), value);
        return;
    }
    let entry = dict
        .entry((*key).to_owned())
        .or_insert_with(|| Value::from(Dict::new()));
    if entry.as_dict().is_none() {
        *entry = Value::from(Dict::new());
    }
    if let Value::Dict(_, inner) = entry {
        insert(inner, rest, value);
    }
}

/// Which layer set `path` (`routing.regions.eu[1]`), unless the built-in
/// defaults did.
fn origin_of(figment: &Figment, path: &str) -> Option<String> {
    let key: String = path.split('[').next().unwrap_or(path).replace('"', "");
    let meta = figment.find_metadata(&key)?;
    let defaults = matches!(meta.source, Some(figment::Source::Code(_)));
    (!defaults).then(|| describe(meta, &key))
}

fn describe(meta: &figment::Metadata, key: &str) -> String {
    match &meta.source {
        Some(figment::Source::File(path)) => path.display().to_string(),
        _ if meta.name.contains("environment") => format!(
            "environment variable {ENV_PREFIX}{}",
            key.to_uppercase().replace('.', "__")
        ),
        _ => meta.name.to_string(),
    }
}

/// Deserializing stops at the first bad value; to report one per section,
/// each section is read on its own once the whole failed.
fn every_section_error(figment: &Figment, first: figment::Error) -> ConfigError {
    fn check<T: serde::de::DeserializeOwned>(
        f: &Figment,
        key: &str,
        out: &mut Vec<figment::Error>,
    ) {
        if f.contains(key) {
            if let Err(e) = f.extract_inner::<T>(key) {
                // Paths of an inner extraction come without the section.
                out.extend(e.into_iter().map(|mut e| {
                    e.path.retain(|k| k != key);
                    e.path.insert(0, key.to_owned());
                    e
                }));
            }
        }
    }
    use super::sections::*;
    use super::service::*;
    let mut errors = Vec::new();
    check::<ShardsConfig>(figment, "shards", &mut errors);
    check::<RoutingConfig>(figment, "routing", &mut errors);
    check::<ExhaustionConfig>(figment, "exhaustion", &mut errors);
    check::<RetryConfig>(figment, "retry", &mut errors);
    check::<SchedulerConfig>(figment, "scheduler", &mut errors);
    check::<WorkersConfig>(figment, "workers", &mut errors);
    check::<LimitsConfig>(figment, "limits", &mut errors);
    check::<NatsConfig>(figment, "nats", &mut errors);
    check::<HttpConfig>(figment, "http", &mut errors);
    check::<LogConfig>(figment, "log", &mut errors);
    check::<FulfillerConfig>(figment, "fulfiller", &mut errors);
    check::<RuntimeSection>(figment, "runtime", &mut errors);
    check::<ViewsSection>(figment, "views", &mut errors);
    check::<ClusterConfig>(figment, "cluster", &mut errors);
    // An unknown section, or a problem outside the sections, is only in
    // the first error.
    if !errors.iter().any(|e| e.path.first() == first.path.first()) {
        errors.insert(0, first.clone());
    }
    let mut iter = errors.into_iter();
    let e = iter.next().unwrap_or(first);
    from_figment(iter.fold(e, |acc, e| acc.chain(e)))
}

/// Figment's errors as a config error: one naming its layer and key, or
/// each of several with its layer.
fn from_figment(e: figment::Error) -> ConfigError {
    let mut problems: Vec<(String, Problem)> = e
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let origin = e
                .metadata
                .as_ref()
                .map_or_else(|| "config".to_owned(), |m| describe(m, &key));
            let path = if key.is_empty() {
                "(top level)".to_owned()
            } else {
                key
            };
            (origin, Problem::new(path, e.kind.to_string()))
        })
        .collect();
    if problems.len() == 1 {
        let (origin, problem) = problems.remove(0);
        return ConfigError::Parse { origin, problem };
    }
    ConfigError::Invalid {
        origin: "config".into(),
        problems: problems
            .into_iter()
            .map(|(origin, p)| Problem::new(p.path, format!("{} (set by {origin})", p.message)))
            .collect(),
    }
}
