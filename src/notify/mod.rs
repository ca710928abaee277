//! The notify stage: the outbox worker that delivers alerts to webhooks.
//!
//! Input: outbox rows committed together with their matches. Output: HTTP POSTs signed per
//! Standard Webhooks, and each row marked delivered (only after a 2xx), rescheduled per
//! the webhook's `retry_schedule`, or dead-lettered. A row is claimed with a lease before
//! it is sent, so a crash mid-send leaves it pending: delivery is at-least-once, and the
//! `webhook-id` (the row's id) lets receivers drop the rare duplicate.

pub mod payload;
pub mod sign;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::Rng as _;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Webhook};
use crate::fetch::error_chain;
use crate::store::{Delivery, Store, StoreError};

/// Rows claimed per pass of the worker.
const CLAIM_BATCH: i64 = 256;
/// How long the worker sleeps when nothing is due and nothing wakes it.
const IDLE_POLL: Duration = Duration::from_secs(30);

/// What one pass over the due outbox rows did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub delivered: usize,
    pub failed: usize,
    pub dead: usize,
}

impl DrainReport {
    fn add(&mut self, other: DrainReport) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.dead += other.dead;
    }
}

/// Delivers outbox rows.
#[derive(Debug, Clone)]
pub struct Notifier {
    store: Store,
    config: Arc<Config>,
    client: reqwest::Client,
}

impl Notifier {
    pub fn new(store: Store, config: Arc<Config>) -> Result<Notifier, reqwest::Error> {
        crate::fetch::init_tls();
        let client = reqwest::Client::builder()
            .user_agent(config.poll.user_agent.clone())
            // A 3xx from a receiver is a failure to report, not a hop to follow: following
            // it would send a signed alert somewhere the user never configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Notifier {
            store,
            config,
            client,
        })
    }

    /// One pass: claims every row due now (in batches) and attempts each once. Webhooks
    /// are served concurrently, so one slow receiver does not hold up the others' rows.
    pub async fn drain_outbox(&self) -> Result<DrainReport, StoreError> {
        self.drain(&CancellationToken::new()).await
    }

    /// As [`Notifier::drain_outbox`], claiming no new batch once `stop` is cancelled; the
    /// batch in flight finishes (each request bounded by its webhook's timeout).
    async fn drain(&self, stop: &CancellationToken) -> Result<DrainReport, StoreError> {
        let mut report = DrainReport::default();
        while !stop.is_cancelled() {
            let now = Utc::now().timestamp();
            let lease = self.lease().as_secs() as i64;
            let claimed = self
                .store
                .claim_deliveries(now, now + lease, CLAIM_BATCH)
                .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            let mut by_webhook: HashMap<String, Vec<Delivery>> = HashMap::new();
            for row in claimed {
                by_webhook.entry(row.webhook.clone()).or_default().push(row);
            }
            let mut tasks = JoinSet::new();
            for (name, rows) in by_webhook {
                let this = self.clone();
                tasks.spawn(async move { this.deliver_all(&name, rows).await });
            }
            while let Some(done) = tasks.join_next().await {
                match done {
                    Ok(Ok(part)) => report.add(part),
                    Ok(Err(err)) => return Err(err),
                    Err(err) => tracing::error!(error = %err, "delivery task failed"),
                }
            }
        }
        Ok(report)
    }

    /// How long a claimed row stays invisible to other claims: longer than any attempt.
    fn lease(&self) -> Duration {
        let longest = self
            .config
            .webhooks
            .iter()
            .map(|w| w.timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        longest + Duration::from_secs(30)
    }

    async fn deliver_all(
        &self,
        name: &str,
        rows: Vec<Delivery>,
    ) -> Result<DrainReport, StoreError> {
        let mut report = DrainReport::default();
        let Some(webhook) = self.config.webhooks.iter().find(|w| w.name == name) else {
            // The webhook left the config: keep its rows, they go out if it comes back.
            let later = Utc::now().timestamp() + 3600;
            for row in rows {
                self.store
                    .postpone_delivery(&row.id, "webhook is not in the configuration", later)
                    .await?;
            }
            return Ok(report);
        };
        for row in rows {
            match self.attempt(webhook, &row).await {
                Ok(status) => {
                    self.store
                        .mark_delivered(&row.id, status, Utc::now().timestamp())
                        .await?;
                    tracing::info!(webhook = %webhook.name, delivery = %row.id, status, "alert delivered");
                    report.delivered += 1;
                }
                Err((status, error)) => {
                    let attempt = row.attempts as usize + 1;
                    let next = retry_at(webhook, attempt);
                    self.store
                        .mark_failed(&row.id, status, &error, next)
                        .await?;
                    if next.is_some() {
                        tracing::warn!(webhook = %webhook.name, delivery = %row.id, attempt, error = %error, "delivery failed, will retry");
                        report.failed += 1;
                    } else {
                        tracing::error!(webhook = %webhook.name, delivery = %row.id, attempt, error = %error, "delivery failed for the last time: dead-lettered");
                        report.dead += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// One POST. `Ok(status)` only for a 2xx.
    async fn attempt(
        &self,
        webhook: &Webhook,
        row: &Delivery,
    ) -> Result<u16, (Option<u16>, String)> {
        let timestamp = Utc::now().timestamp();
        let mut request = self
            .client
            .post(webhook.url.clone())
            .timeout(webhook.timeout)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", &row.id)
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(secret) = &webhook.secret {
            request = request.header(
                "webhook-signature",
                sign::signature(secret, &row.id, timestamp, row.body.as_bytes()),
            );
        }
        for (name, value) in &webhook.headers {
            request = request.header(name, value);
        }
        let response = request
            .body(row.body.clone())
            .send()
            .await
            .map_err(|err| (None, error_chain(&err.without_url())))?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err((Some(status.as_u16()), format!("http status {status}")))
        }
    }

    /// Runs until `shutdown`: drains whatever is due, then sleeps until the next row is due
    /// or `wake` says new rows were committed.
    pub async fn run(self, wake: Arc<Notify>, shutdown: CancellationToken) {
        loop {
            if let Err(err) = self.drain(&shutdown).await {
                tracing::error!(error = %error_chain(&err), "outbox pass failed");
            }
            let sleep = match self.store.next_delivery_due().await {
                Ok(Some(due)) => {
                    let wait = due - Utc::now().timestamp();
                    Duration::from_secs(wait.clamp(0, IDLE_POLL.as_secs() as i64) as u64)
                }
                Ok(None) => IDLE_POLL,
                Err(err) => {
                    tracing::error!(error = %error_chain(&err), "cannot read the outbox");
                    IDLE_POLL
                }
            };
            // A row that is due now but was leased by a dead process comes back within a
            // second of its lease running out.
            let sleep = sleep.max(Duration::from_millis(200));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }
}

/// When attempt number `attempt` (1-based) failed: the next try, with ±20% jitter so
/// that many rows failing together do not retry in lockstep; `None` once the schedule is
/// used up.
fn retry_at(webhook: &Webhook, attempt: usize) -> Option<i64> {
    let delay = webhook.retry_schedule.get(attempt - 1)?;
    let factor = rand::rng().random_range(0.8..=1.2);
    let secs = (delay.as_secs_f64() * factor).round().max(1.0) as i64;
    Some(Utc::now().timestamp() + secs)
}
