//! One seed's sale: shards, partitions with their exhaustion policies,
//! stock, and the orders and restocks a producer sends, with when.

use std::num::NonZeroU64;
use std::time::Duration;

use allot::domain::{
    Cart, CartConfig, CartLine, Command, Exhaustion, ExhaustionRules, Fill, Order, OrderId,
    PartitionKey, Priority, Quantity, RetryPolicy, Rules, Sku, SkuPattern, WarehouseId,
};
use allot::ports::{Intake, ShardId};
use allot::wire::cart::{coordinator, CartOp};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const WAREHOUSES: [&str; 3] = ["ams", "ber", "cph"];
/// SKUs by exhaustion policy: REJ-* reject, RR-* reroute, BO-* backorder.
pub const SKUS: [&str; 3] = ["REJ-1", "RR-1", "BO-1"];

/// What the producer sends, and after how long a pause.
pub struct Publish {
    pub after: Duration,
    pub shard: ShardId,
    pub item: Intake,
}

pub struct Scenario {
    pub shards: u32,
    pub sends: Vec<Publish>,
    /// Every order id submitted (each needs one final decision): carts
    /// and their lines too.
    pub orders: Vec<OrderId>,
}

pub fn partition(w: usize, s: usize) -> PartitionKey {
    PartitionKey::new(
        WarehouseId::new(WAREHOUSES[w]).expect("valid warehouse"),
        Sku::new(SKUS[s]).expect("valid sku"),
    )
}

/// Partitions spread over shards by a fixed table, so reroutes cross shards.
pub fn shard_of(shards: u32) -> impl Fn(&PartitionKey) -> ShardId + Send + Sync + Clone {
    move |p: &PartitionKey| {
        let w = WAREHOUSES
            .iter()
            .position(|w| *w == p.warehouse.as_str())
            .unwrap_or(0);
        let s = SKUS.iter().position(|s| *s == p.sku.as_str()).unwrap_or(0);
        ((w * SKUS.len() + s) % shards as usize) as ShardId
    }
}

pub fn rules() -> Rules {
    let pattern = |p: &str| SkuPattern::new(p).expect("valid pattern");
    Rules {
        exhaustion: ExhaustionRules {
            rules: vec![
                (pattern("RR-*"), Exhaustion::Reroute),
                (
                    pattern("BO-*"),
                    Exhaustion::Backorder {
                        ttl: Duration::from_millis(800),
                    },
                ),
            ],
            default: Exhaustion::Reject,
        },
        retry: RetryPolicy {
            max_retries: 3,
            base_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
        ..Rules::default()
    }
}

/// Draws a sale from the seed: 2-4 shards, stock set for every partition,
/// 20-60 orders (some sent twice by the producer), a few invalid messages,
/// a few restocks.
pub fn draw(rng: &mut ChaCha8Rng) -> Scenario {
    let shards = rng.gen_range(2..=4);
    let route = shard_of(shards);
    // Stock command `n`, keyed so a redelivery is not applied twice, sent
    // `after` to the shard of its partition.
    let stock_command = |n: u64, after: Duration, command: Command| Publish {
        after,
        shard: route(
            command
                .partition()
                .expect("a stock command has a partition"),
        ),
        item: Intake::Command(Command::Keyed {
            id: OrderId::new(&format!("cmd-{n}")).expect("valid id"),
            command: Box::new(command),
        }),
    };
    let mut sends = Vec::new();
    let mut commands = 0;
    for w in 0..WAREHOUSES.len() {
        for s in 0..SKUS.len() {
            commands += 1;
            let set = Command::SetStock {
                partition: partition(w, s),
                on_hand: rng.gen_range(0..8),
                expected_version: None,
            };
            sends.push(stock_command(commands, Duration::ZERO, set));
        }
    }
    let count = rng.gen_range(20..=60);
    let mut orders = Vec::new();
    for n in 0..count {
        let (w, s) = (
            rng.gen_range(0..WAREHOUSES.len()),
            rng.gen_range(0..SKUS.len()),
        );
        let mut fallbacks: Vec<WarehouseId> = WAREHOUSES
            .iter()
            .filter(|x| **x != WAREHOUSES[w])
            .map(|x| WarehouseId::new(x).expect("valid warehouse"))
            .collect();
        fallbacks.shuffle(rng);
        let order = Order {
            line: false,
            id: OrderId::new(&format!("o-{n}")).expect("valid id"),
            partition: partition(w, s),
            quantity: Quantity::new(rng.gen_range(1..=3), 1000).expect("valid quantity"),
            region: None,
            priority: Priority(rng.gen_range(0..3)),
            fallbacks,
        };
        orders.push(order.id.clone());
        let copies = if rng.gen_bool(0.1) { 2 } else { 1 };
        for _ in 0..copies {
            sends.push(Publish {
                after: Duration::from_millis(rng.gen_range(0..40)),
                shard: route(&order.partition),
                item: Intake::Order(order.clone()),
            });
        }
        if rng.gen_bool(0.1) {
            // The same id for another partition (a producer retrying after
            // its duplicate window, rerouting on its own): whichever copy
            // claims the id first is decided, the other refused.
            let other = partition(rng.gen_range(0..WAREHOUSES.len()), (s + 1) % SKUS.len());
            let copy = Order {
                partition: other.clone(),
                ..order.clone()
            };
            sends.push(Publish {
                after: Duration::from_millis(rng.gen_range(0..40)),
                shard: route(&other),
                item: Intake::Order(copy),
            });
        }
        if rng.gen_bool(0.05) {
            // A message that failed validation: it must be rejected, once.
            let id = OrderId::new(&format!("bad-{n}")).expect("valid id");
            orders.push(id.clone());
            sends.push(Publish {
                after: Duration::from_millis(rng.gen_range(0..40)),
                shard: route(&order.partition),
                item: Intake::Invalid {
                    id,
                    errors: vec![allot::domain::FieldError::new(
                        "quantity",
                        "0, must be 1..=1000",
                    )],
                    partition: Some(order.partition.clone()),
                },
            });
        }
        if rng.gen_bool(0.05) {
            // A stock count mid-sale, often below what is reserved: the
            // partition goes short, and nothing enacted is taken back.
            let p = partition(rng.gen_range(0..WAREHOUSES.len()), s);
            commands += 1;
            let after = Duration::from_millis(rng.gen_range(0..40));
            let set = Command::SetStock {
                partition: p,
                on_hand: rng.gen_range(0..3),
                expected_version: None,
            };
            sends.push(stock_command(commands, after, set));
        }
        if rng.gen_bool(0.08) {
            let p = partition(rng.gen_range(0..WAREHOUSES.len()), s);
            commands += 1;
            let units = NonZeroU64::new(rng.gen_range(1..=4)).expect("non-zero");
            let after = Duration::from_millis(rng.gen_range(0..40));
            let restock = Command::Restock {
                partition: p,
                units,
            };
            sends.push(stock_command(commands, after, restock));
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(rng.gen());
    draw_carts(&mut rng, shards, &mut sends, &mut orders);
    Scenario {
        shards,
        sends,
        orders,
    }
}

/// 0-6 carts of 1-3 lines over any partitions, all or nothing or
/// partial, a third held (some confirmed, some left to expire), some
/// cancelled, some sent twice; sent to the shard that coordinates each.
/// Each cart and each of its lines (an order `<cart>#<i>`) needs one
/// final decision.
fn draw_carts(
    rng: &mut ChaCha8Rng,
    shards: u32,
    sends: &mut Vec<Publish>,
    orders: &mut Vec<OrderId>,
) {
    for n in 0..rng.gen_range(0..=6) {
        let id = OrderId::new(&format!("cart-{n}")).expect("valid id");
        let lines: Vec<CartLine> = (0..rng.gen_range(1..=3))
            .map(|_| CartLine {
                partition: partition(
                    rng.gen_range(0..WAREHOUSES.len()),
                    rng.gen_range(0..SKUS.len()),
                ),
                quantity: Quantity::new(rng.gen_range(1..=2), 1000).expect("valid quantity"),
            })
            .collect();
        let fill = if rng.gen_bool(0.3) {
            Fill::Partial
        } else {
            Fill::All
        };
        let hold = rng
            .gen_bool(0.33)
            .then(|| Duration::from_millis(rng.gen_range(100..1500)));
        let cart =
            Cart::new(id.clone(), lines, fill, hold, &CartConfig::default()).expect("a valid cart");
        let coordinator = coordinator(&id, shards);
        for i in 0..cart.lines().len() {
            orders.push(cart.line_id(i).into());
        }
        orders.push(id.clone());
        // Anywhere after the first stock counts, so carts compete with
        // the orders for stock.
        let first = WAREHOUSES.len() * SKUS.len();
        let copies = if rng.gen_bool(0.1) { 2 } else { 1 };
        for _ in 0..copies {
            let at = rng.gen_range(first..=sends.len());
            let send = Publish {
                after: Duration::from_millis(rng.gen_range(0..40)),
                shard: coordinator,
                item: Intake::Cart(cart.clone()),
            };
            sends.insert(at, send);
        }
        let op = match rng.gen_range(0..10) {
            0..=4 if hold.is_some() => Some(CartOp::Confirm),
            5 | 6 => Some(CartOp::Cancel),
            _ => None,
        };
        if let Some(op) = op {
            sends.push(Publish {
                after: Duration::from_millis(rng.gen_range(0..400)),
                shard: coordinator,
                item: Intake::CartCommand { cart: id, op },
            });
        }
    }
}
