//! Carts (orders of envelope version 2) against a real nats-server, over
//! HTTP and `allot.submit`: all or nothing, partial, holds confirmed,
//! expired and cancelled, bad carts refused by field path, and stock
//! conserved in every partition a cart touched.

mod common;

mod carts_running;

use reqwest::{Method, StatusCode};
use serde_json::json;

use carts_running::{statuses, Running, CONFIG};
use common::nats::NatsServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_or_nothing_sells_every_line_or_none_and_conserves_stock() {
    let r = Running::start().await;
    for (w, s) in [("ams", "MUG"), ("fra", "LID"), ("ams", "TEA")] {
        r.stock(w, s, 5).await;
    }
    r.stock("ams", "GONE", 0).await;

    let placed = r
        .post_cart(&json!({"v": 2, "id": "cart-1", "lines": [
            {"sku": "MUG", "quantity": 2, "warehouse": "ams"},
            {"sku": "LID", "quantity": 1, "warehouse": "fra"},
            {"sku": "TEA", "quantity": 3, "warehouse": "ams"},
        ]}))
        .await;
    assert_eq!(placed["lines"][1]["id"], "cart-1#1", "{placed}");
    let cart = r.final_cart("cart-1").await;
    assert_eq!(cart["status"], "confirmed", "{cart}");
    assert_eq!(statuses(&cart), ["committed"; 3], "{cart}");
    assert!(
        cart["lines"][0]["history"]
            .as_array()
            .is_some_and(|h| !h.is_empty()),
        "each line shows its history in its partition: {cart}"
    );
    r.available("ams", "MUG", 3).await;
    r.available("fra", "LID", 4).await;
    r.available("ams", "TEA", 2).await;

    // One line cannot be had: every other reservation is given back.
    r.post_cart(&json!({"v": 2, "id": "cart-2", "lines": [
        {"sku": "MUG", "quantity": 3, "warehouse": "ams"},
        {"sku": "GONE", "quantity": 1, "warehouse": "ams"},
        {"sku": "LID", "quantity": 4, "warehouse": "fra"},
    ]}))
    .await;
    let cart = r.final_cart("cart-2").await;
    assert_eq!(cart["status"], "rejected", "{cart}");
    assert_eq!(cart["reason"], "line_rejected", "{cart}");
    let lines = statuses(&cart);
    assert_eq!(lines[1], "rejected", "{cart}");
    assert!(
        !lines.contains(&"committed".to_owned()),
        "no line of a rejected all-or-nothing cart is sold: {cart}"
    );
    r.available("ams", "MUG", 3).await;
    r.available("fra", "LID", 4).await;

    // Partial: what can be had is sold, the rest rejected line by line.
    r.post_cart(
        &json!({"v": 2, "id": "cart-3", "fill": "partial", "lines": [
            {"sku": "MUG", "quantity": 1, "warehouse": "ams"},
            {"sku": "GONE", "quantity": 1, "warehouse": "ams"},
        ]}),
    )
    .await;
    let cart = r.final_cart("cart-3").await;
    assert_eq!(cart["status"], "confirmed", "{cart}");
    assert_eq!(statuses(&cart), ["committed", "rejected"], "{cart}");
    r.available("ams", "MUG", 2).await;

    // The same cart again changes nothing.
    let (s, again) = r
        .send(
            Method::POST,
            "/v1/orders",
            Some(&json!({"v": 2, "id": "cart-3", "lines": [{"sku": "MUG", "quantity": 1}]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    r.available("ams", "MUG", 2).await;

    // EVENTS alone says the same: each cart decided once, all or nothing.
    let js = common::allot::jetstream(&r.url).await;
    let mut ledger = common::allot::Ledger::default();
    ledger.catch_up(&js).await.expect("read EVENTS");
    let carts = common::allot::order_ids(&["cart-1".into(), "cart-2".into(), "cart-3".into()]);
    let f = ledger.findings(&carts);
    assert!(f.clean(), "{f:?}");
    assert_eq!((f.carts_confirmed, f.carts_rejected), (2, 1), "{f:?}");
    r.allot.stop().await.expect("allot stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_wait_for_payment_expire_or_are_cancelled() {
    let r = Running::start().await;
    r.stock("ams", "HAT", 4).await;
    r.stock("fra", "SCARF", 4).await;
    let cart = |id: &str, hold: &str| {
        json!({"v": 2, "id": id, "hold": hold, "lines": [
            {"sku": "HAT", "quantity": 1, "warehouse": "ams"},
            {"sku": "SCARF", "quantity": 2, "warehouse": "fra"},
        ]})
    };

    // Held until paid, then sold.
    r.post_cart(&cart("held-paid", "30s")).await;
    let held = r
        .until("/v1/orders/held-paid", |v| v["status"] == "held")
        .await;
    assert!(held["held_until_ms"].as_u64().is_some(), "{held}");
    let hat = r.until("/v1/stock/ams/HAT", |v| v["available"] == 3).await;
    assert_eq!(hat["in_flight"], 1, "a held line stays reserved: {hat}");
    let (s, body) = r
        .send(Method::POST, "/v1/orders/held-paid/confirm", None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let paid = r.final_cart("held-paid").await;
    assert_eq!(paid["status"], "confirmed", "{paid}");
    assert_eq!(paid["paid"], true, "{paid}");

    // Not paid in time: every line goes back.
    r.post_cart(&cart("held-expired", "2s")).await;
    let expired = r.final_cart("held-expired").await;
    assert_eq!(expired["status"], "rejected", "{expired}");
    assert_eq!(expired["reason"], "hold_expired", "{expired}");
    assert_eq!(statuses(&expired), ["released"; 2], "{expired}");
    r.available("ams", "HAT", 3).await;
    r.available("fra", "SCARF", 2).await;
    let (s, body) = r
        .send(Method::POST, "/v1/orders/held-expired/confirm", None)
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a decided cart is not confirmed: {body}"
    );

    // Cancelled while held.
    r.post_cart(&cart("held-cancelled", "30s")).await;
    r.until("/v1/orders/held-cancelled", |v| v["status"] == "held")
        .await;
    let (s, body) = r
        .send(Method::DELETE, "/v1/orders/held-cancelled", None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "cancel_requested", "{body}");
    let cancelled = r.final_cart("held-cancelled").await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    r.available("ams", "HAT", 3).await;
    r.available("fra", "SCARF", 2).await;

    // A cart without a hold has nothing to confirm.
    r.post_cart(&json!({"v": 2, "id": "no-hold", "lines": [{"sku": "HAT", "quantity": 1, "warehouse": "ams"}]}))
        .await;
    r.final_cart("no-hold").await;
    let (s, _) = r
        .send(Method::POST, "/v1/orders/no-hold/confirm", None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    r.allot.stop().await.expect("allot stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_carts_are_refused_by_field_path_and_nats_producers_submit_carts() {
    let r = Running::start().await;
    let bad = json!({"v": 2, "id": "bad-1", "fill": "most", "hold": "2h", "lines": [
        {"sku": "MUG", "quantity": 1},
        {"sku": "MUG", "quantity": 0},
        {"quantity": 1},
        "MUG",
    ]});
    let (s, body) = r.send(Method::POST, "/v1/orders", Some(&bad)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let text = body.to_string();
    for field in [
        "lines[1].quantity",
        "lines[2].sku",
        "lines[3]",
        "fill",
        "hold",
    ] {
        assert!(
            text.contains(&format!("\"{field}\"")),
            "{field} not named: {body}"
        );
    }
    let too_many =
        json!({"v": 2, "id": "bad-2", "lines": vec![json!({"sku": "MUG", "quantity": 1}); 6]});
    let (s, body) = r.send(Method::POST, "/v1/orders", Some(&too_many)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("must have 1..=5"), "{body}");

    // Over NATS: a MessagePack cart as a request on allot.submit.
    r.stock("ams", "PEN", 2).await;
    let client = async_nats::connect(&r.url).await.expect("connect");
    let cart = json!({"v": 2, "id": "nats-cart", "region": "eu", "lines": [{"sku": "PEN", "quantity": 2}]});
    let payload = rmp_serde::to_vec_named(&cart).expect("encode");
    let reply = client
        .request("allot.submit", payload.into())
        .await
        .expect("allot.submit answers");
    let reply = allot::wire::SubmitReply::decode(&reply.payload).expect("a reply");
    assert!(reply.accepted, "{reply:?}");
    assert_eq!(reply.kind.as_deref(), Some("cart"), "{reply:?}");
    let cart = r.final_cart("nats-cart").await;
    assert_eq!(cart["status"], "confirmed", "{cart}");
    assert_eq!(cart["lines"][0]["warehouse"], "ams", "{cart}");
    r.available("ams", "PEN", 0).await;

    // Published straight to an order subject (any: here one of a SKU the
    // cart does not have), twice: handed on to its coordinator, decided
    // once. A bad one published there is rejected by field path.
    r.stock("fra", "CUP", 3).await;
    let js = async_nats::jetstream::new(client);
    let direct = json!({"v": 2, "id": "direct-cart", "lines": [
        {"sku": "CUP", "quantity": 2, "warehouse": "fra"}]});
    let bad = json!({"v": 2, "id": "direct-bad", "lines": [{"sku": "CUP", "quantity": 0}]});
    for body in [&direct, &direct, &bad] {
        let payload = rmp_serde::to_vec_named(body).expect("encode");
        js.publish("orders.ams.MUG", payload.into())
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    let cart = r.final_cart("direct-cart").await;
    assert_eq!(cart["status"], "confirmed", "{cart}");
    r.available("fra", "CUP", 1).await;
    let bad = r.final_cart("direct-bad").await;
    assert_eq!(bad["status"], "rejected", "{bad}");
    assert!(bad.to_string().contains("lines[0].quantity"), "{bad}");
    r.allot.stop().await.expect("allot stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carts_survive_a_restart_from_snapshot_and_log() {
    // Snapshots every few events, so recovery reads carts from one.
    let toml = format!("{CONFIG}\n[runtime]\nsnapshot_every = 3\n");
    let r = Running::start_on(NatsServer::start(), &toml).await;
    r.stock("ams", "BOOT", 5).await;
    for (id, hold) in [("r-paid", "50s"), ("r-expires", "6s")] {
        r.post_cart(&json!({"v": 2, "id": id, "hold": hold, "lines": [
            {"sku": "BOOT", "quantity": 2, "warehouse": "ams"},
        ]}))
        .await;
        r.until(&format!("/v1/orders/{id}"), |v| v["status"] == "held")
            .await;
    }
    // More decisions after the holds, so a snapshot follows them.
    for i in 0..3 {
        r.post_cart(&json!({"v": 2, "id": format!("r-filler-{i}"), "lines": [
            {"sku": "NONE", "quantity": 1, "warehouse": "fra"},
        ]}))
        .await;
        r.final_cart(&format!("r-filler-{i}")).await;
    }
    let Running { server, allot, .. } = r;
    allot.stop().await.expect("allot stops cleanly");

    let r = Running::start_on(server, &toml).await;
    let (s, body) = r
        .send(Method::POST, "/v1/orders/r-paid/confirm", None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let paid = r.final_cart("r-paid").await;
    assert_eq!(paid["status"], "confirmed", "{paid}");
    let expired = r.final_cart("r-expires").await;
    assert_eq!(
        expired["reason"], "hold_expired",
        "the hold's deadline outlives a restart: {expired}"
    );
    let boot = r.available("ams", "BOOT", 3).await;
    assert_eq!(boot["sold"], 2, "{boot}");
    r.allot.stop().await.expect("allot stops cleanly");
}
