//! Waiting for something another process does: a request reaching a registry, an item reaching
//! the table.

use std::time::Duration;

/// Polls `condition` until it holds, panicking with `what` after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        if tokio::time::Instant::now() > deadline {
            panic!("waited {limit:?} for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
