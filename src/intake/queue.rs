//! The SQS queue the release webhook feeds. A message is deleted only after its release is promoted and
//! recorded; until then it stays invisible to other consumers, and after a crash it reappears for a retry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageSystemAttributeName};

#[derive(Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
    /// The setting that named it (PROMOTE_QUEUE_URL, PROMOTE_OUTCOMES_QUEUE_URL), for errors.
    setting: &'static str,
}

#[derive(Clone, Debug)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// When SQS first received it (ms since the epoch): breaks ties between releases with equal dates.
    pub sent_at: u64,
}

/// SQS hands out at most ten messages per receive; a run takes at most this many in all, leaving the rest
/// for the next run rather than holding an unbounded batch invisible.
const MAX_MESSAGES_PER_RUN: usize = 100;

impl Queue {
    /// The queue at `url`, which the variable `setting` named.
    pub fn new(config: &aws_config::SdkConfig, url: &str, setting: &'static str) -> Queue {
        Queue {
            client: aws_sdk_sqs::Client::new(config),
            url: url.to_owned(),
            setting,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A long poll answers only after up to `wait_seconds`: its attempt gets that on top of the usual limit.
    fn long_poll_timeout(&self, wait_seconds: i32) -> aws_sdk_sqs::config::Builder {
        let usual = self
            .client
            .config()
            .timeout_config()
            .and_then(|timeouts| timeouts.operation_attempt_timeout());
        let mut timeouts = aws_sdk_sqs::config::timeout::TimeoutConfig::builder();
        if let Some(usual) = usual {
            let wait = Duration::from_secs(wait_seconds.max(0) as u64);
            timeouts = timeouts.operation_attempt_timeout(usual + wait);
        }
        aws_sdk_sqs::config::Builder::default().timeout_config(timeouts.build())
    }

    /// Takes every pending message (up to a bound), each hidden from other consumers for `visibility`.
    /// The first receive long-polls for `wait`; later ones only drain what is already there.
    pub async fn receive_all(&self, wait: Duration, visibility: Duration) -> Result<Vec<Message>> {
        let mut messages: Vec<Message> = Vec::new();
        let mut wait_seconds = wait.as_secs().min(20) as i32;
        while messages.len() < MAX_MESSAGES_PER_RUN {
            let answer = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10.min((MAX_MESSAGES_PER_RUN - messages.len()) as i32))
                .wait_time_seconds(wait_seconds)
                .visibility_timeout(visibility.as_secs() as i32)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .customize()
                .config_override(self.long_poll_timeout(wait_seconds))
                .send()
                .await
                .map_err(crate::aws::sdk_error)
                .with_context(|| {
                    format!(
                        "receiving from queue {}: check {} and sqs:ReceiveMessage",
                        self.url, self.setting
                    )
                })?;
            let batch = answer.messages();
            if batch.is_empty() {
                break;
            }
            for message in batch {
                let sent_at = message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                messages.push(Message {
                    id: message.message_id().unwrap_or_default().to_owned(),
                    receipt: message.receipt_handle().unwrap_or_default().to_owned(),
                    body: message.body().unwrap_or_default().to_owned(),
                    sent_at,
                });
            }
            wait_seconds = 0;
        }
        Ok(messages)
    }

    pub async fn delete(&self, message: &Message) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt)
            .send()
            .await
            .map_err(crate::aws::sdk_error)
            .with_context(|| format!("deleting message {} from queue {}", message.id, self.url))?;
        Ok(())
    }

    /// Sets the visibility timeout of the given messages (0 makes them available again at once).
    pub async fn set_visibility(&self, messages: &[Message], visibility: Duration) -> Result<()> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt)
                        .visibility_timeout(visibility.as_secs() as i32)
                        .build()
                        .expect("id, receipt and timeout are set")
                })
                .collect();
            let answer = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(crate::aws::sdk_error)
                .with_context(|| format!("changing message visibility on queue {}", self.url))?;
            // A batch call succeeds as a whole even when entries fail (a message already deleted, a receipt
            // handle expired): each failure is said, since a message left hidden is only retried late.
            for failed in answer.failed() {
                let message = failed.id().parse::<usize>().ok().and_then(|i| chunk.get(i));
                tracing::warn!(
                    queue = %self.url,
                    message_id = message.map(|m| m.id.as_str()).unwrap_or("?"),
                    code = failed.code(),
                    reason = failed.message().unwrap_or(""),
                    "could not change a message's visibility"
                );
            }
        }
        Ok(())
    }
}

/// Keeps the messages in work invisible while a long copy runs, by extending their visibility every third
/// of the timeout. Messages are removed from it once deleted or handed back; dropping it stops it.
pub struct Heartbeat {
    held: Arc<Mutex<Vec<Message>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    pub fn start(queue: Queue, messages: Vec<Message>, visibility: Duration) -> Heartbeat {
        let held = Arc::new(Mutex::new(messages));
        let shared = held.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(visibility / 3).await;
                let current = shared.lock().expect("heartbeat lock").clone();
                if let Err(e) = queue.set_visibility(&current, visibility).await {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "could not extend message visibility"
                    );
                }
            }
        });
        Heartbeat { held, task }
    }

    /// Stops extending a message's visibility (it was deleted, or is left to reappear).
    pub fn release(&self, id: &str) {
        self.held
            .lock()
            .expect("heartbeat lock")
            .retain(|m| m.id != id);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
    }
}
