//! Config errors. Every problem names where it is (`origin: key.path`) and
//! says what would be accepted, so a user can fix the file without reading
//! the code.

use std::fmt;

/// One broken rule in a config that parsed: the dotted key path
/// (`routing.regions.eu[1]`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a config could not be loaded. `Display` gives one line per problem,
/// each `origin: key.path: message`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{origin}: cannot read the file: {source}")]
    Read {
        origin: String,
        source: std::io::Error,
    },
    /// The text is not TOML, or does not fit the schema (unknown key, wrong
    /// type, invalid value). Parsing stops at the first such problem.
    #[error("{origin}: {problem}")]
    Parse { origin: String, problem: Problem },
    /// The config parsed but breaks one or more rules; all are listed.
    #[error("{}", Lines(origin, problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Every problem this error reports; empty for [`ConfigError::Read`].
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Parse { problem, .. } => std::slice::from_ref(problem),
            ConfigError::Invalid { problems, .. } => problems,
        }
    }

    /// Wraps a serde error, keeping the key path it happened at. A syntax
    /// error has no key path, so its line and column stand in for one.
    pub(crate) fn parse(
        origin: &str,
        text: &str,
        err: serde_path_to_error::Error<toml::de::Error>,
    ) -> Self {
        let inner = err.inner();
        let path = match (key_path(err.path()), inner.span()) {
            (path, _) if !path.is_empty() => path,
            (_, Some(span)) => line_col(text, span.start),
            (_, None) => "(top level)".to_owned(),
        };
        // toml puts hints on extra lines; one line per problem keeps the
        // output greppable.
        let message: Vec<&str> = inner.message().lines().map(str::trim).collect();
        ConfigError::Parse {
            origin: origin.to_owned(),
            problem: Problem::new(path, message.join("; ")),
        }
    }
}

/// The path in TOML's dotted-key syntax: `routing.regions.eu[1]`, with keys
/// that are not bare TOML keys quoted (`workers.warehouses."a b"`), so a
/// dot inside a key is not read as a separator.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        let key = match seg {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } | Segment::Enum { variant: key } => key.as_str(),
            Segment::Unknown => {
                out.push_str(if out.is_empty() { "?" } else { ".?" });
                continue;
            }
        };
        if !out.is_empty() {
            out.push('.');
        }
        let bare = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if bare {
            out.push_str(key);
        } else {
            out.push_str(&format!("{key:?}"));
        }
    }
    out
}

/// `line L, column C` (both 1-based) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

struct Lines<'a>(&'a String, &'a Vec<Problem>);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.1.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}: {p}", self.0)?;
        }
        Ok(())
    }
}
