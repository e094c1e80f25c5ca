//! The reply to a request on `allot.submit` (MessagePack, named fields):
//! `{accepted, id, warehouse, sku, shard, duplicate, errors}`.

use serde::{Deserialize, Serialize};

use crate::domain::FieldError;

/// The answer to a submit request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitReply {
    pub accepted: bool,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub warehouse: Option<String>,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub shard: Option<u32>,
    /// The id was filed before (the stream's duplicate window dropped this
    /// copy): the order already exists and this one changed nothing.
    #[serde(default)]
    pub duplicate: bool,
    /// Why it was not accepted: one entry per bad field (`broker` when the
    /// broker did not take it: retry with the same id).
    #[serde(default)]
    pub errors: Vec<FieldError>,
}

impl SubmitReply {
    /// A refusal naming every bad field.
    pub fn refused(id: Option<String>, errors: Vec<FieldError>) -> Self {
        Self {
            accepted: false,
            id,
            warehouse: None,
            sku: None,
            shard: None,
            duplicate: false,
            errors,
        }
    }
}
