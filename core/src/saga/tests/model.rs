//! The coordinator against a model of its world, over many seeds: random
//! carts; partitions and workers that answer in any order, sometimes
//! twice; confirms, cancels, timeouts; crashes that lose the unwritten
//! tail and recover from the log. A small seeded PRNG stands in for
//! proptest (which `--locked` cannot add to this crate).

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// splitmix64: tiny, seedable, good enough to pick steps.
pub(super) struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// Removes a random element (messages arrive in any order); with
    /// `dup_percent` it stays queued too (delivered twice).
    fn take<T: Clone>(&mut self, queue: &mut Vec<T>, dup_percent: u64) -> Option<T> {
        if queue.is_empty() {
            return None;
        }
        let i = self.below(queue.len());
        if self.chance(dup_percent) {
            Some(queue[i].clone())
        } else {
            Some(queue.swap_remove(i))
        }
    }
}

/// What a partition did with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Held {
    Reserved,
    Rejected,
    Committed,
    Released,
}

/// Everything outside the coordinator, and what it saw.
pub(super) struct World {
    pub(super) rng: Rng,
    pub(super) config: CartConfig,
    pub(super) carts: Carts,
    pub(super) now: Timestamp,
    pub(super) log: Vec<CartEvent>,
    pub(super) inflight: Option<Vec<CartEvent>>,
    pub(super) to_partitions: Vec<Output>,
    pub(super) to_workers: Vec<Output>,
    pub(super) answers: Vec<(LineId, LineAnswer)>,
    pub(super) results: Vec<(OrderId, WarehouseId, u32, EnactResult)>,
    pub(super) partitions: BTreeMap<LineId, Held>,
    pub(super) enacted: BTreeSet<(OrderId, WarehouseId)>,
    pub(super) revoked: BTreeSet<(OrderId, WarehouseId)>,
    pub(super) opened: BTreeMap<OrderId, Cart>,
    /// Carts filed but not acked: the intake delivers them again.
    pub(super) intake: BTreeMap<u64, Cart>,
    pub(super) decided: BTreeMap<OrderId, Vec<Decision>>,
    pub(super) crashes: u32,
    pub(super) crashes_allowed: bool,
    pub(super) violations: Vec<String>,
}

impl World {
    pub(super) fn new(seed: u64) -> Self {
        let config = CartConfig {
            max_lines: 4,
            ..CartConfig::default()
        };
        Self {
            rng: Rng(seed),
            carts: Carts::new(config.clone()),
            config,
            now: Timestamp(0),
            log: Vec::new(),
            inflight: None,
            to_partitions: Vec::new(),
            to_workers: Vec::new(),
            answers: Vec::new(),
            results: Vec::new(),
            partitions: BTreeMap::new(),
            enacted: BTreeSet::new(),
            revoked: BTreeSet::new(),
            opened: BTreeMap::new(),
            intake: BTreeMap::new(),
            decided: BTreeMap::new(),
            crashes: 0,
            crashes_allowed: true,
            violations: Vec::new(),
        }
    }

    fn new_cart(&mut self) {
        let n = 1 + self.rng.below(4);
        let lines = (0..n)
            .map(|_| {
                let w = ["w1", "w2", "w3"][self.rng.below(3)];
                let s = ["a", "b", "c", "d"][self.rng.below(4)];
                line(w, s, 1 + self.rng.below(3) as u64)
            })
            .collect();
        let fill = if self.rng.chance(40) {
            Fill::Partial
        } else {
            Fill::All
        };
        let hold = self
            .rng
            .chance(30)
            .then(|| Duration::from_millis(200 + self.rng.below(2_000) as u64));
        let cart_id = id(&format!("c{}", self.opened.len()));
        let cart = Cart::new(cart_id.clone(), lines, fill, hold, &self.config).unwrap();
        let ack = AckId(self.opened.len() as u64);
        assert_eq!(
            self.carts.handle_cart(cart.clone(), Some(ack), self.now),
            CartReply::Accepted
        );
        self.intake.insert(ack.0, cart.clone());
        self.opened.insert(cart_id, cart);
    }

    /// Takes every output; effects go onto the "network" at once (the
    /// contract: carried out in the order polled).
    fn drain(&mut self) {
        while let Some(out) = self.carts.poll_output() {
            match out {
                Output::Append(events) => {
                    assert!(self.inflight.is_none(), "one append outstanding");
                    self.inflight = Some(events);
                }
                Output::Reserve(_) | Output::Release { .. } | Output::Commit { .. } => {
                    self.to_partitions.push(out)
                }
                Output::Enact { .. } | Output::Revoke { .. } => self.to_workers.push(out),
                Output::Decided(d) => self.decided.entry(d.cart.clone()).or_default().push(d),
                Output::Ack(ack) => {
                    self.intake.remove(&ack.0);
                }
            }
        }
    }

    fn durable(&mut self) {
        if let Some(events) = self.inflight.take() {
            self.log.extend(events);
            self.carts.handle_appended(self.now);
        }
    }

    fn partition(&mut self, msg: Output) {
        match msg {
            Output::Reserve(l) => {
                let held = self.partitions.get(&l.line).cloned();
                let answer = match held {
                    None if self.rng.chance(75) => Held::Reserved,
                    None => Held::Rejected,
                    Some(h) => h,
                };
                self.partitions
                    .entry(l.line.clone())
                    .or_insert(answer.clone());
                let answer = match answer {
                    Held::Rejected => LineAnswer::Rejected(RejectReason::OutOfStock),
                    _ => LineAnswer::Reserved,
                };
                self.answers.push((l.line, answer));
            }
            Output::Release { line, .. } => self.settle(line, Held::Released),
            Output::Commit { line, .. } => self.settle(line, Held::Committed),
            _ => unreachable!(),
        }
    }

    fn settle(&mut self, line: LineId, to: Held) {
        match self.partitions.get(&line) {
            Some(Held::Reserved) => {
                self.partitions.insert(line, to);
            }
            Some(h) if *h == to => {}
            other => self
                .violations
                .push(format!("{line}: {to:?} while {other:?}")),
        }
    }

    fn worker(&mut self, msg: Output) {
        match msg {
            Output::Enact {
                cart,
                warehouse,
                attempt,
                ..
            } => {
                self.enacted.insert((cart.clone(), warehouse.clone()));
                let r = match self.rng.below(10) {
                    0..=5 => EnactResult::Ok,
                    6..=8 => EnactResult::Retryable("busy".into()),
                    _ => EnactResult::Failed("declined".into()),
                };
                self.results.push((cart, warehouse, attempt, r));
            }
            Output::Revoke { cart, warehouse } => {
                self.revoked.insert((cart, warehouse));
            }
            _ => unreachable!(),
        }
    }

    fn any_cart(&mut self) -> OrderId {
        let n = self.opened.len().max(1);
        id(&format!("c{}", self.rng.below(n + 1)))
    }

    fn crash(&mut self) {
        self.crashes += 1;
        if self.rng.chance(50) {
            self.durable();
        }
        self.inflight = None;
        self.carts = Carts::recover(self.config.clone(), self.log.clone(), self.now);
        for (ack, cart) in self.intake.clone() {
            let _ = self.carts.handle_cart(cart, Some(AckId(ack)), self.now);
        }
    }

    /// When nothing is unwritten, a coordinator rebuilt from the log is
    /// in the same state.
    pub(super) fn check_recovery(&mut self) {
        self.drain();
        self.durable();
        self.drain();
        if self.carts.has_unwritten() {
            return;
        }
        let back = Carts::recover(self.config.clone(), self.log.clone(), self.now);
        let (a, b): (Vec<_>, Vec<_>) = (back.carts().collect(), self.carts.carts().collect());
        if a != b {
            self.violations
                .push(format!("recovered {a:?}\n != live {b:?}"));
        }
    }

    pub(super) fn step(&mut self) {
        match self.rng.below(20) {
            0..=1 if self.opened.len() < 12 => self.new_cart(),
            0..=3 => self.drain(),
            4..=5 => self.durable(),
            6..=8 => {
                if let Some(m) = self.rng.take(&mut self.to_partitions, 15) {
                    self.partition(m);
                }
            }
            9..=10 => {
                if let Some((l, a)) = self.rng.take(&mut self.answers, 15) {
                    self.carts.handle_line(&l, a, self.now);
                }
            }
            11 => {
                if let Some(m) = self.rng.take(&mut self.to_workers, 15) {
                    self.worker(m);
                }
            }
            12 => {
                if let Some((c, w, a, r)) = self.rng.take(&mut self.results, 15) {
                    self.carts.handle_enacted(&c, &w, a, r, self.now);
                }
            }
            13 => {
                let c = self.any_cart();
                let _ = self.carts.handle_confirm(&c, None, self.now);
            }
            14 if self.rng.chance(30) => {
                let c = self.any_cart();
                let _ = self.carts.handle_cancel(&c, None, self.now);
            }
            15..=16 => {
                self.now = self
                    .now
                    .plus(Duration::from_millis(self.rng.below(400) as u64));
                self.carts.handle_timeout(self.now);
            }
            17 if self.crashes_allowed && self.rng.chance(10) => self.crash(),
            18 => self.check_recovery(),
            _ => {
                // Answers for no line (carts have at most 4) and results
                // for no attempt; real late and repeated ones come from
                // the queues, which deliver in any order and duplicate.
                let c = self.any_cart();
                let l = LineId::new(&c, 4 + self.rng.below(3) as u32).unwrap();
                self.carts.handle_line(&l, LineAnswer::Reserved, self.now);
                self.carts
                    .handle_enacted(&c, &wh("w1"), 9, EnactResult::Ok, self.now);
            }
        }
    }

    /// Delivers everything, confirms holds at random and lets time pass,
    /// until nothing moves.
    pub(super) fn settle_all(&mut self) {
        for _ in 0..10_000 {
            self.drain();
            self.durable();
            self.drain();
            if let Some(m) = self.to_partitions.pop() {
                self.partition(m);
            } else if let Some((l, a)) = self.answers.pop() {
                self.carts.handle_line(&l, a, self.now);
            } else if let Some(m) = self.to_workers.pop() {
                self.worker(m);
            } else if let Some((c, w, a, r)) = self.results.pop() {
                self.carts.handle_enacted(&c, &w, a, r, self.now);
            } else if let Some(at) = self.carts.poll_timeout() {
                if self.rng.chance(50) {
                    let c = self.any_cart();
                    let _ = self.carts.handle_confirm(&c, None, self.now);
                }
                self.now = self.now.max(at);
                self.carts.handle_timeout(self.now);
            } else if !self.carts.has_unwritten() {
                return;
            }
        }
        panic!("did not settle");
    }
}
