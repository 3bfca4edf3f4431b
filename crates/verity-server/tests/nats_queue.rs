//! The JetStream work queue against the real NATS server (127.0.0.1:4222): two workers share
//! the work, each item is processed once, and an item a worker does not acknowledge goes to
//! another worker.

use std::collections::BTreeSet;
use std::time::Duration;
use verity_server::queue::{NatsSettings, WorkItem, WorkQueue};

fn settings(tag: &str) -> NatsSettings {
    NatsSettings {
        url: std::env::var("VERITY_TEST_NATS").unwrap_or_else(|_| "127.0.0.1:4222".into()),
        stream: format!("VERITY_TEST_{tag}_{}", std::process::id()),
        ack_wait: Duration::from_secs(1),
    }
}

/// Connects, or skips loudly (fails when VERITY_REQUIRE_NATS=1).
async fn connect(s: &NatsSettings) -> Option<WorkQueue> {
    match WorkQueue::nats(s).await {
        Ok(q) => Some(q),
        Err(e) => {
            if std::env::var("VERITY_REQUIRE_NATS").as_deref() == Ok("1") {
                panic!("NATS is required (VERITY_REQUIRE_NATS=1) but not usable: {e}");
            }
            eprintln!("!!! NATS NOT REACHABLE ({e}): JetStream queue test SKIPPED");
            None
        }
    }
}

#[tokio::test]
async fn two_workers_share_the_work_and_each_item_is_done_once() {
    let s = settings("SHARE");
    let Some(producer) = connect(&s).await else {
        return;
    };
    let worker_a = connect(&s).await.expect("second connection");
    let worker_b = connect(&s).await.expect("third connection");
    let n = 40;
    for i in 0..n {
        producer
            .publish(&WorkItem {
                kind: "booking".into(),
                id: format!("B{i:03}"),
            })
            .await
            .expect("publish");
    }
    let mut done = Vec::new();
    let mut per_worker = [0usize; 2];
    'outer: loop {
        let mut any = false;
        for (w, q) in [&worker_a, &worker_b].into_iter().enumerate() {
            if let Some(d) = q.next(Duration::from_millis(500)).await.expect("next") {
                done.push(d.item.id.clone());
                per_worker[w] += 1;
                d.ack().await.expect("ack");
                any = true;
            }
            if done.len() == n {
                break 'outer;
            }
        }
        if !any {
            break;
        }
    }
    let unique: BTreeSet<_> = done.iter().cloned().collect();
    assert_eq!(done.len(), n, "every item delivered");
    assert_eq!(
        unique.len(),
        n,
        "no item delivered twice after acknowledgement"
    );
    assert!(
        per_worker[0] > 0 && per_worker[1] > 0,
        "both workers got work: {per_worker:?}"
    );
    producer.delete_stream().await.expect("clean up");
}

#[tokio::test]
async fn an_unacknowledged_item_is_delivered_again() {
    let s = settings("REDELIVER");
    let Some(q) = connect(&s).await else { return };
    q.publish(&WorkItem {
        kind: "booking".into(),
        id: "B1".into(),
    })
    .await
    .expect("publish");
    let first = q
        .next(Duration::from_secs(2))
        .await
        .expect("next")
        .expect("delivered");
    drop(first); // a worker that dies before acknowledging
                 // Redelivery happens after the 1 s ack wait; `next` blocks until it arrives.
    let again = q
        .next(Duration::from_secs(5))
        .await
        .expect("next")
        .expect("delivered again");
    assert_eq!(again.item.id, "B1");
    again.ack().await.expect("ack");
    assert!(
        q.next(Duration::from_millis(1500))
            .await
            .expect("next")
            .is_none(),
        "acknowledged work does not return"
    );
    q.delete_stream().await.expect("clean up");
}
