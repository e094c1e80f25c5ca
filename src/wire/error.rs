//! Why a message was refused, in a shape the scheduler can record as a
//! [`RejectReason::Invalid`] and a producer can act on.

use super::RESERVED_ID_PREFIX;
use crate::domain::{FieldError, OrderId, RejectReason};

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
        problems: Vec<FieldError>,
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
    pub fn problems(&self) -> Vec<FieldError> {
        match self {
            WireError::TooLarge { size, max } => vec![FieldError::new(
                "payload",
                format!("{size} bytes, more than the {max} allowed"),
            )],
            WireError::Malformed { field, why, .. } => vec![FieldError::new(*field, why.clone())],
            WireError::Invalid { problems, .. } => problems.clone(),
        }
    }

    /// The reason to record: every problem, each as `{field, why}`.
    pub fn reject_reason(&self) -> RejectReason {
        RejectReason::Invalid {
            errors: self.problems(),
        }
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

fn list(problems: &[FieldError]) -> String {
    let all: Vec<String> = problems.iter().map(FieldError::to_string).collect();
    format!("invalid {}", all.join("; "))
}
