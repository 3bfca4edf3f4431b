//! The work queue between intake and processing.
//!
//! A message carries only the id of work that is already durable in the store; the queue says
//! *who should process what next*, never *what was received*. On the embedded default the
//! queue is in process; when work is spread over several processes it is a NATS JetStream
//! stream with one durable pull consumer that the workers share, so each item goes to one
//! worker and an unacknowledged item is delivered again.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// What to do: `booking`, `query`, ...
    pub kind: String,
    /// The id of the durable record to process.
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("NATS at {url}: {problem}")]
    Connect { url: String, problem: String },
    #[error("NATS JetStream: {0}")]
    JetStream(String),
    #[error("queue message is not a work item: {0}")]
    BadMessage(String),
}

fn js_err(e: impl std::fmt::Display) -> QueueError {
    QueueError::JetStream(e.to_string())
}

#[derive(Default)]
struct Local {
    items: Mutex<VecDeque<WorkItem>>,
    ready: Notify,
}

#[derive(Clone)]
struct NatsQueue {
    js: async_nats::jetstream::Context,
    subject: String,
    consumer:
        async_nats::jetstream::consumer::Consumer<async_nats::jetstream::consumer::pull::Config>,
    stream: String,
}

/// The queue: in process or JetStream, chosen at start.
#[derive(Clone)]
pub struct WorkQueue(Backend);

#[derive(Clone)]
enum Backend {
    Local(Arc<Local>),
    Nats(Box<NatsQueue>),
}

/// One item handed to a worker. Acknowledge it when the work is durable; dropped without an
/// acknowledgement, JetStream delivers it again after the ack wait.
pub struct Delivery {
    pub item: WorkItem,
    message: Option<async_nats::jetstream::Message>,
}

impl Delivery {
    pub async fn ack(self) -> Result<(), QueueError> {
        if let Some(m) = self.message {
            m.ack().await.map_err(js_err)?;
        }
        Ok(())
    }
}

/// Settings for a JetStream queue.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    pub url: String,
    /// Stream name; its subjects are `<stream lowercased>.work`.
    pub stream: String,
    /// How long a worker may hold an item before it goes to another.
    pub ack_wait: Duration,
}

impl WorkQueue {
    pub fn local() -> Self {
        WorkQueue(Backend::Local(Arc::new(Local::default())))
    }

    pub async fn nats(s: &NatsSettings) -> Result<Self, QueueError> {
        use async_nats::jetstream::{self, consumer, stream};
        let client = async_nats::connect(&s.url)
            .await
            .map_err(|e| QueueError::Connect {
                url: s.url.clone(),
                problem: e.to_string(),
            })?;
        let js = jetstream::new(client);
        let subject = format!("{}.work", s.stream.to_ascii_lowercase());
        let st = js
            .get_or_create_stream(stream::Config {
                name: s.stream.clone(),
                subjects: vec![subject.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(js_err)?;
        let consumer = st
            .get_or_create_consumer(
                "workers",
                consumer::pull::Config {
                    durable_name: Some("workers".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: s.ack_wait,
                    ..Default::default()
                },
            )
            .await
            .map_err(js_err)?;
        Ok(WorkQueue(Backend::Nats(Box::new(NatsQueue {
            js,
            subject,
            consumer,
            stream: s.stream.clone(),
        }))))
    }

    /// Enqueues an item. For NATS, returns once the server has stored it.
    pub async fn publish(&self, item: &WorkItem) -> Result<(), QueueError> {
        match &self.0 {
            Backend::Local(l) => {
                l.items.lock().await.push_back(item.clone());
                l.ready.notify_one();
                Ok(())
            }
            Backend::Nats(n) => {
                let body =
                    serde_json::to_vec(item).map_err(|e| QueueError::BadMessage(e.to_string()))?;
                let ack =
                    n.js.publish(n.subject.clone(), body.into())
                        .await
                        .map_err(js_err)?;
                ack.await.map_err(js_err)?;
                Ok(())
            }
        }
    }

    /// The next item, waiting at most `wait`; `None` when nothing came.
    pub async fn next(&self, wait: Duration) -> Result<Option<Delivery>, QueueError> {
        match &self.0 {
            Backend::Local(l) => {
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    let notified = l.ready.notified();
                    if let Some(item) = l.items.lock().await.pop_front() {
                        return Ok(Some(Delivery {
                            item,
                            message: None,
                        }));
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Ok(None);
                    }
                }
            }
            Backend::Nats(n) => {
                let mut batch = n
                    .consumer
                    .fetch()
                    .max_messages(1)
                    .expires(wait)
                    .messages()
                    .await
                    .map_err(js_err)?;
                match batch.next().await {
                    None => Ok(None),
                    Some(m) => {
                        let m = m.map_err(js_err)?;
                        let item: WorkItem = serde_json::from_slice(&m.payload)
                            .map_err(|e| QueueError::BadMessage(e.to_string()))?;
                        Ok(Some(Delivery {
                            item,
                            message: Some(m),
                        }))
                    }
                }
            }
        }
    }

    /// Removes a JetStream stream (tests and operators cleaning up).
    pub async fn delete_stream(&self) -> Result<(), QueueError> {
        if let Backend::Nats(n) = &self.0 {
            n.js.delete_stream(&n.stream).await.map_err(js_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_queue_is_first_in_first_out() {
        let q = WorkQueue::local();
        for i in 0..3 {
            q.publish(&WorkItem {
                kind: "booking".into(),
                id: i.to_string(),
            })
            .await
            .expect("publish");
        }
        for i in 0..3 {
            let d = q
                .next(Duration::from_millis(10))
                .await
                .expect("next")
                .expect("an item");
            assert_eq!(d.item.id, i.to_string());
            d.ack().await.expect("ack");
        }
        assert!(q
            .next(Duration::from_millis(10))
            .await
            .expect("next")
            .is_none());
    }
}
