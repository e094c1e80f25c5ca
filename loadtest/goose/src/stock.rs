//! Setup before the run: stock on every partition of the workload, set over
//! the HTTP API (`PUT /v1/stock/{warehouse}/{sku}`), so orders are confirmed
//! rather than rejected out of stock. Not measured: it happens before goose
//! starts its users.

use allot::domain::PartitionKey;
use anyhow::{bail, Context};

/// Sets `on_hand` units on each of `partitions` through the API at `host`,
/// `hot` units on the first when given. Fails on the first partition allot
/// does not take, naming it and the answer.
pub async fn set_stock(
    host: &str,
    partitions: &[PartitionKey],
    on_hand: u64,
    hot: Option<u64>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let base = host.trim_end_matches('/');
    for (i, p) in partitions.iter().enumerate() {
        let on_hand = if i == 0 {
            hot.unwrap_or(on_hand)
        } else {
            on_hand
        };
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

/// After a sell-out run: waits (up to 30 s, the views trail the log) until
/// the hot partition has nothing queued, reserved or in flight, then checks
/// it sold exactly `stock` units with none left. The error says what it saw.
pub async fn check_sold_out(host: &str, hot: &PartitionKey, stock: u64) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = format!(
        "{}/v1/stock/{}/{}",
        host.trim_end_matches('/'),
        hot.warehouse,
        hot.sku
    );
    let mut view = serde_json::Value::Null;
    for _ in 0..300 {
        view = client.get(&url).send().await?.json().await?;
        let settled = ["queued", "reserved", "in_flight"]
            .iter()
            .all(|k| view[k] == 0);
        if settled && view["sold"] == stock {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if view["sold"] != stock || view["available"] != 0 {
        bail!("{url}: not sold out exactly: {stock} units, the view says {view}");
    }
    println!("sold out exactly: {url} sold {stock} of {stock}, none left");
    Ok(())
}
