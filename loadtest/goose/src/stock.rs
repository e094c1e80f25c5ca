//! Setup before the run: stock on every partition of the workload, set over
//! the HTTP API (`PUT /v1/stock/{warehouse}/{sku}`), so orders are confirmed
//! rather than rejected out of stock. Not measured: it happens before goose
//! starts its users.

use allot::domain::PartitionKey;
use anyhow::{bail, Context};

/// Sets `on_hand` units on each of `partitions` through the API at `host`.
/// Fails on the first partition allot does not take, naming it and the answer.
pub async fn set_stock(
    host: &str,
    partitions: &[PartitionKey],
    on_hand: u64,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let base = host.trim_end_matches('/');
    for p in partitions {
        let url = format!("{base}/v1/stock/{}/{}", p.warehouse, p.sku);
        let response = client
            .put(&url)
            .json(&serde_json::json!({ "on_hand": on_hand }))
            .send()
            .await
            .with_context(|| format!("setting stock: PUT {url}: is allot serving at {base}?"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("setting stock: PUT {url} answered {status}: {body}");
        }
    }
    Ok(())
}
