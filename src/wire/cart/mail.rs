//! Cart mail: several items of allot's own cart traffic for one shard in
//! one intake message (`Allot-Kind: cart-mail`), so a busy coordinator's
//! lines, answers and settlements cost the broker one write per batch,
//! not one per item. The body is a MessagePack array of `[kind, body]`
//! pairs, `kind` one of the cart kinds and `body` (binary) that kind's
//! message. Each item is decoded, validated and acked on its own.

use super::traffic::decode_item;
use super::{encode_cart_item, CART_KINDS};
use crate::domain::FieldError;
use crate::wire::intake::{reserved_item_id, Encoded, Intake};
use crate::wire::Limits;

/// Several items of cart traffic for one shard: see the module.
pub const KIND_CART_MAIL: &str = "cart-mail";

/// `items` as one cart-mail message; `None` if one of them is not cart
/// traffic.
pub fn encode_cart_mail<'a, I>(items: I) -> Option<Encoded>
where
    I: IntoIterator<Item = &'a Intake>,
    I::IntoIter: ExactSizeIterator,
{
    let items = items.into_iter();
    let mut body = Vec::new();
    // Writes into a Vec cannot fail.
    rmp::encode::write_array_len(&mut body, u32::try_from(items.len()).ok()?).ok()?;
    for item in items {
        let encoded = encode_cart_item(item)?;
        rmp::encode::write_array_len(&mut body, 2).ok()?;
        rmp::encode::write_str(&mut body, encoded.kind?).ok()?;
        rmp::encode::write_bin(&mut body, &encoded.body).ok()?;
    }
    Some(Encoded {
        kind: Some(KIND_CART_MAIL),
        body,
    })
}

/// Every item of the cart mail stored at `seq`; an item that cannot be
/// read is [`Intake::Invalid`] under `invalid:<seq>.<i>` (with the whole
/// message's when the list itself is unreadable).
pub(in crate::wire) fn decode_cart_mail(payload: &[u8], seq: u64, limits: &Limits) -> Vec<Intake> {
    let invalid = |i: usize, what: String| Intake::Invalid {
        id: reserved_item_id(seq, i),
        errors: vec![FieldError::new("payload", what)],
        partition: None,
    };
    let mut rest = payload;
    let count = match rmp::decode::read_array_len(&mut rest) {
        // Each item takes at least 3 bytes: a count beyond that is a lie.
        Ok(n) if (n as usize) <= payload.len() / 3 => n as usize,
        Ok(n) => {
            return vec![invalid(
                0,
                format!("unreadable cart mail: {n} items claimed"),
            )]
        }
        Err(e) => return vec![invalid(0, format!("unreadable cart mail: {e}"))],
    };
    let mut items = Vec::with_capacity(count);
    for i in 0..count {
        match next_item(&mut rest) {
            Ok((kind, body)) if CART_KINDS.contains(&kind) => {
                items.push(match decode_item(kind, body, limits) {
                    Ok(item) => item,
                    Err((what, why)) => invalid(i, format!("unreadable {what}: {why}")),
                });
            }
            Ok((kind, _)) => items.push(invalid(i, format!("{kind:?} is not a cart kind"))),
            Err(why) => {
                // The rest cannot be found: one rejection for it all.
                items.push(invalid(i, format!("unreadable cart mail item: {why}")));
                break;
            }
        }
    }
    items
}

/// One `[kind, body]` pair off the front of `rest`.
fn next_item<'a>(rest: &mut &'a [u8]) -> Result<(&'a str, &'a [u8]), String> {
    let pair = rmp::decode::read_array_len(rest).map_err(|e| e.to_string())?;
    if pair != 2 {
        return Err(format!("an item is [kind, body], got {pair} values"));
    }
    let slice: &'a [u8] = rest;
    let (kind, after) = rmp::decode::read_str_from_slice(slice).map_err(|e| e.to_string())?;
    *rest = after;
    let len = rmp::decode::read_bin_len(rest).map_err(|e| e.to_string())? as usize;
    if len > rest.len() {
        return Err(format!("a body of {len} bytes, {} left", rest.len()));
    }
    let (body, after) = rest.split_at(len);
    *rest = after;
    Ok((kind, body))
}
