//! Carts in the audit: each cart's decision, from its coordinator's
//! events, held against how its lines (orders `<cart>#<index>`) ended in
//! their partitions: all or nothing, and one decision per cart.

use super::{Audit, Findings, Stage};
use crate::domain::{CartEvent, Fill, OrderId};

/// A cart as the audit follows it, from its coordinator's events.
#[derive(Debug, Clone, Default)]
pub(super) struct CartTrack {
    lines: u32,
    all: bool,
    /// Confirmed (`Some(true)`), rejected or cancelled (`Some(false)`).
    pub(super) sold: Option<bool>,
    finals: u32,
}

impl Audit {
    pub(super) fn cart(&mut self, event: &CartEvent) {
        let (id, sold) = match event {
            CartEvent::Opened { cart, .. } => {
                let track = self.carts.entry(cart.id().clone()).or_default();
                track.lines = cart.lines().len() as u32;
                track.all = cart.fill() == Fill::All;
                return;
            }
            CartEvent::Confirmed { cart } => (cart, true),
            CartEvent::Rejected { cart, .. } | CartEvent::Cancelled { cart } => (cart, false),
            _ => return,
        };
        let track = self.carts.entry(id.clone()).or_default();
        track.sold = Some(sold);
        track.finals += 1;
        if track.finals == 2 {
            self.findings.duplicate_decisions += 1;
            self.findings
                .example(|| format!("cart {id}: decided twice"));
        }
    }

    /// Holds each decided cart against how its lines (orders
    /// `<cart>#<index>`) ended in their partitions.
    pub(super) fn check_carts(&self, f: &mut Findings) {
        let mut carts: Vec<_> = self.carts.iter().collect();
        carts.sort_by(|a, b| a.0.cmp(b.0));
        for (id, c) in carts {
            let Some(sold) = c.sold else {
                continue;
            };
            if sold {
                f.carts_confirmed += 1;
            } else {
                f.carts_rejected += 1;
            }
            let tracks: Vec<_> = (0..c.lines)
                .map(|i| {
                    let line = OrderId::new(&format!("{id}#{i}")).ok();
                    line.and_then(|l| self.orders.get(&l))
                })
                .collect();
            let lines_sold = tracks
                .iter()
                .flatten()
                .filter(|t| t.lives.iter().any(|l| l.stage == Stage::Confirmed))
                .count() as u32;
            // A decided cart's lines placed in their partitions end there
            // too (committed, or released and rejected): none stays
            // reserved or queued.
            for (i, _) in tracks
                .iter()
                .enumerate()
                .filter(|(_, t)| t.is_some_and(|t| t.finals == 0))
            {
                f.undecided += 1;
                f.example(|| format!("cart {id}: decided, but its line {i} is not"));
            }
            let broken = match (sold, c.all) {
                (true, true) => lines_sold != c.lines,
                (true, false) => lines_sold == 0,
                (false, _) => lines_sold > 0,
            };
            if broken {
                f.broken_carts += 1;
                f.example(|| {
                    let how = if sold { "confirmed" } else { "not sold" };
                    format!(
                        "cart {id}: {how}, but {lines_sold} of its {} lines sold",
                        c.lines
                    )
                });
            }
        }
    }
}
