//! Scenario "http": each transaction files one order with
//! `POST /v1/orders` and counts the 202 allot answers for a filed order as
//! success. With `--invalid-share`, that share of orders goes out with
//! quantity 0 under its own request name and succeeds only on the 400 allot
//! must answer, so the error rate stays a count of real failures.

use std::sync::Arc;

use goose::prelude::*;

use crate::workload::Workload;

/// Request name of the deliberately invalid orders (`POST` is prepended).
const INVALID_NAME: &str = "/v1/orders invalid";

/// The "http" scenario over `workload`.
pub fn scenario(workload: Arc<Workload>) -> Scenario {
    let post = Transaction::new(Arc::new(move |user| {
        let workload = Arc::clone(&workload);
        Box::pin(async move { post_order(user, &workload).await })
    }))
    .set_name("post order");
    scenario!("http").register_transaction(post)
}

async fn post_order(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let order = workload.next_order();
    let mut message = order.message;
    let (expected, name) = if workload.invalid_turn(order.seq) {
        message.quantity = 0;
        (400, INVALID_NAME)
    } else {
        (202, "/v1/orders")
    };
    let builder = user
        .get_request_builder(&GooseMethod::Post, "/v1/orders")?
        .json(&message);
    let request = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path("/v1/orders")
        .name(name)
        .set_request_builder(builder)
        .expect_status_code(expected)
        .build();
    user.request(request).await?;
    Ok(())
}
