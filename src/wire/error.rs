//! Why a message was refused, in a shape the scheduler can record as a
//! [`RejectReason::Invalid`] and a producer can act on.

use std::fmt;

use super::RESERVED_ID_PREFIX;
use crate::domain::{OrderId, RejectReason};

/// One field that breaks the schema: `field` is its name as in the schema
/// (`"payload"` for the message as a whole), `why` says what is wrong and
/// what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub why: String,
}

impl Invalid {
    pub(super) fn new(field: &'static str, why: impl Into<String>) -> Self {
        Self {
            field,
            why: why.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

impl From<Invalid> for RejectReason {
    fn from(i: Invalid) -> Self {
        RejectReason::Invalid {
            field: i.field.to_owned(),
            why: i.why,
        }
    }
}

/// Why a payload is not a valid message. `id` is the message's `id` field
/// as sent, if it was a string and was read before decoding stopped; it
/// may itself be invalid (see [`WireError::order_id`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Larger than `limits.max_payload_bytes`: refused before decoding, so
    /// nothing, not even the id, was read.
    #[error("payload is {size} bytes, more than the {max} allowed")]
    TooLarge { size: usize, max: usize },
    /// Not readable as a message: not MessagePack (or JSON), truncated, not
    /// a map, nested too deep, trailing bytes. `field` is the field being
    /// read when decoding broke, else `"payload"`.
    #[error("{}unreadable {field}: {why}", about(.id))]
    Malformed {
        id: Option<String>,
        field: &'static str,
        why: String,
    },
    /// Readable, but fields break the schema's rules: at least one, in
    /// schema order. An unsupported version is reported alone (field `v`):
    /// the other fields may mean something else in that version.
    #[error("{}{}", about(.id), list(.problems))]
    Invalid {
        id: Option<String>,
        problems: Vec<Invalid>,
    },
}

impl WireError {
    /// The `id` field as sent, if it could be read.
    pub fn id(&self) -> Option<&str> {
        match self {
            WireError::TooLarge { .. } => None,
            WireError::Malformed { id, .. } | WireError::Invalid { id, .. } => id.as_deref(),
        }
    }

    /// The `id` field, if it was read and is a valid producer id, so the
    /// rejection can carry the producer's own id.
    pub fn order_id(&self) -> Option<OrderId> {
        self.id()
            .filter(|id| !id.starts_with(RESERVED_ID_PREFIX))
            .and_then(|id| OrderId::new(id).ok())
    }

    /// The id to record the rejection under: [`WireError::order_id`], else
    /// `invalid:<stream_seq>`, where `stream_seq` is the message's sequence
    /// in its stream (unique there, and stable across redeliveries).
    pub fn rejection_id(&self, stream_seq: u64) -> OrderId {
        self.order_id().unwrap_or_else(|| {
            // "invalid:" and at most 20 digits: printable ASCII, 28 bytes.
            OrderId::new(&format!("{RESERVED_ID_PREFIX}{stream_seq}"))
                .expect("a reserved id is always a valid order id")
        })
    }

    /// Every problem, as `{ field, why }`.
    pub fn problems(&self) -> Vec<Invalid> {
        match self {
            WireError::TooLarge { size, max } => vec![Invalid::new(
                "payload",
                format!("{size} bytes, more than the {max} allowed"),
            )],
            WireError::Malformed { field, why, .. } => vec![Invalid::new(field, why.clone())],
            WireError::Invalid { problems, .. } => problems.clone(),
        }
    }

    /// The reason to record: the first problem's field, and its `why`
    /// followed by the other problems, if any (`"...; also sku: ..."`).
    pub fn reject_reason(&self) -> RejectReason {
        let mut problems = self.problems().into_iter();
        let Some(mut first) = problems.next() else {
            // `Invalid` is only built with problems; stay total anyway.
            return Invalid::new("payload", "invalid").into();
        };
        for (i, p) in problems.enumerate() {
            first.why.push_str(if i == 0 { "; also " } else { "; " });
            first.why.push_str(&p.to_string());
        }
        first.into()
    }

    /// A short stable label, for metrics: `too_large`, `malformed`, `invalid`.
    pub fn label(&self) -> &'static str {
        match self {
            WireError::TooLarge { .. } => "too_large",
            WireError::Malformed { .. } => "malformed",
            WireError::Invalid { .. } => "invalid",
        }
    }
}

/// `order "<id>": `, the id clipped to 64 characters, or nothing.
fn about(id: &Option<String>) -> String {
    match id {
        None => String::new(),
        Some(id) => match id.char_indices().nth(64) {
            Some((cut, _)) => format!("order {:?}...: ", &id[..cut]),
            None => format!("order {id:?}: "),
        },
    }
}

fn list(problems: &[Invalid]) -> String {
    let all: Vec<String> = problems.iter().map(Invalid::to_string).collect();
    format!("invalid {}", all.join("; "))
}
