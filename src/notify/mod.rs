//! The notify stage: the outbox workers that deliver alerts to webhooks.
//!
//! Input: outbox rows, committed together with their matches. Output: HTTP POSTs signed
//! per Standard Webhooks, and each row marked delivered (only after a 2xx), rescheduled per
//! the webhook's `retry_schedule` (never sooner than a `Retry-After` asks), or
//! dead-lettered with its last error. A 410 disables the webhook until an operator
//! re-enables it; its rows wait.
//!
//! Every webhook has its own worker with a bounded number of requests in flight, so a
//! slow or failing receiver never delays another. A row is claimed with a lease before it
//! is sent: a crash mid-send leaves it pending, to be sent again under the same
//! `webhook-id` once the lease runs out. Delivery is at-least-once; receivers drop the
//! rare duplicate by `webhook-id`.

pub mod body;
pub mod outbox;
pub mod sign;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::clock;
use crate::config::{Config, Webhook};
use crate::http::retry_after;
use crate::metrics;
use crate::store::{Delivery, Store, StoreError};
use crate::telemetry::error_chain;

/// Requests in flight per webhook: enough to drain a backlog quickly once a receiver
/// recovers, few enough not to flood it.
const IN_FLIGHT_PER_WEBHOOK: usize = 4;
/// Rows claimed per round of one webhook's worker: no more than go in flight together,
/// so no claimed row waits for others while its lease runs out.
const CLAIM_BATCH: i64 = IN_FLIGHT_PER_WEBHOOK as i64;
/// How long a worker sleeps when nothing is due and nothing wakes it.
const IDLE_POLL: Duration = Duration::from_secs(30);
/// The longest wait a `Retry-After` header can impose: a receiver cannot park an alert
/// for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// Wakes the workers when new outbox rows were committed.
#[derive(Debug, Clone)]
pub struct Wake(Arc<watch::Sender<u64>>);

impl Wake {
    pub fn new() -> Wake {
        Wake(Arc::new(watch::Sender::new(0)))
    }

    pub fn notify(&self) {
        self.0
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

impl Default for Wake {
    fn default() -> Wake {
        Wake::new()
    }
}

/// What delivering did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub delivered: usize,
    pub failed: usize,
    pub dead: usize,
    /// Rows left waiting because their webhook answered 410 and is now disabled.
    pub disabled: usize,
}

impl DrainReport {
    fn add(&mut self, other: DrainReport) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.dead += other.dead;
        self.disabled += other.disabled;
    }
}

/// How one attempt ended.
#[derive(Debug)]
enum Attempt {
    Delivered(u16),
    /// 410 Gone: the receiver asks never to be called again.
    Gone,
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
}

/// Delivers outbox rows.
#[derive(Debug, Clone)]
pub struct Notifier {
    store: Store,
    config: Arc<Config>,
    /// For webhooks with `allow_private_network` (set, or implied by the poll setting).
    client: reqwest::Client,
    /// For every other webhook: the network guard refuses non-public targets.
    guarded_client: reqwest::Client,
}

impl Notifier {
    pub fn new(store: Store, config: Arc<Config>) -> Result<Notifier, reqwest::Error> {
        crate::http::init_tls();
        let builder = || {
            reqwest::Client::builder()
                .user_agent(config.poll.user_agent.clone())
                // A 3xx from a receiver is a failure to report, not a hop to follow:
                // following it would send a signed alert somewhere the user never
                // configured.
                .redirect(reqwest::redirect::Policy::none())
                // A proxy from the environment would connect on our behalf, past the guard.
                .no_proxy()
                .pool_max_idle_per_host(IN_FLIGHT_PER_WEBHOOK)
        };
        let client = builder().build()?;
        let guarded_client =
            crate::guard::protect(builder(), crate::guard::Scope::Webhooks).build()?;
        Ok(Notifier {
            store,
            config,
            client,
            guarded_client,
        })
    }

    /// The client a webhook is called with: guarded unless it may reach private networks.
    fn client_for(&self, webhook: &Webhook) -> &reqwest::Client {
        if webhook.allow_private_network {
            &self.client
        } else {
            &self.guarded_client
        }
    }

    /// One pass over every webhook: sends every row due now, each once, webhooks in
    /// parallel. `wirewatch poll` and tests use it; the daemon runs [`Notifier::run`].
    pub async fn drain_outbox(&self) -> Result<DrainReport, StoreError> {
        let stop = CancellationToken::new();
        // Rows that fail during this pass come due again later; the pass must not chase
        // them, or a slow receiver would keep `poll` from ever exiting.
        let due_by = clock::unix();
        let mut tasks = JoinSet::new();
        for index in 0..self.config.webhooks.len() {
            let (this, stop) = (self.clone(), stop.clone());
            tasks.spawn(async move { this.drain_webhook(index, &stop, Some(due_by)).await });
        }
        let mut report = DrainReport::default();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(part) => report.add(part?),
                Err(err) => tracing::error!(error = %err, "delivery task failed"),
            }
        }
        Ok(report)
    }

    /// Sends the due rows of webhook `index` (due by `due_by`, else by the moment of
    /// each claim), batch after batch, until none is due or `stop` is cancelled; the
    /// requests in flight then finish (each bounded by the webhook's timeout).
    async fn drain_webhook(
        &self,
        index: usize,
        stop: &CancellationToken,
        due_by: Option<i64>,
    ) -> Result<DrainReport, StoreError> {
        let webhook = &self.config.webhooks[index];
        let lease = (webhook.timeout + Duration::from_secs(10)).as_secs() as i64;
        let mut report = DrainReport::default();
        while !stop.is_cancelled() {
            let now = clock::unix();
            let claimed = self
                .store
                .claim_deliveries(
                    &webhook.name,
                    &self.config.cluster.node,
                    due_by.unwrap_or(now),
                    now + lease,
                    CLAIM_BATCH,
                )
                .await?;
            if claimed.is_empty() {
                break;
            }
            let mut rows = claimed.into_iter();
            let mut in_flight = JoinSet::new();
            let mut gone = false;
            loop {
                while !gone && !stop.is_cancelled() && in_flight.len() < IN_FLIGHT_PER_WEBHOOK {
                    let Some(row) = rows.next() else { break };
                    let this = self.clone();
                    let span =
                        tracing::info_span!("deliver", webhook = %webhook.name, delivery = %row.id);
                    in_flight.spawn(
                        async move {
                            let started = std::time::Instant::now();
                            let outcome = this.attempt(&this.config.webhooks[index], &row).await;
                            (row, outcome, started.elapsed())
                        }
                        .instrument(span),
                    );
                }
                let Some(done) = in_flight.join_next().await else {
                    break;
                };
                let (row, outcome, took) = match done {
                    Ok(done) => done,
                    Err(err) => {
                        tracing::error!(error = %err, "delivery task failed");
                        continue;
                    }
                };
                gone |= matches!(outcome, Attempt::Gone);
                let class = self.record(webhook, &row, outcome, &mut report).await?;
                metrics::delivery(&webhook.name, class, took);
            }
            // Rows claimed but never attempted (after a 410, or at shutdown) go back as
            // they were.
            for row in rows {
                self.store.release_lease(&row.id).await?;
                report.disabled += usize::from(gone);
            }
            if gone {
                break;
            }
        }
        Ok(report)
    }

    /// Writes the outcome of one attempt; returns its class for metrics.
    async fn record(
        &self,
        webhook: &Webhook,
        row: &Delivery,
        outcome: Attempt,
        report: &mut DrainReport,
    ) -> Result<&'static str, StoreError> {
        let now = clock::now();
        let attempt = row.attempts as usize + 1;
        match outcome {
            Attempt::Delivered(status) => {
                self.store
                    .mark_delivered(&row.id, status, now.timestamp())
                    .await?;
                tracing::info!(webhook = %webhook.name, delivery = %row.id, status, attempt, "alert delivered");
                report.delivered += 1;
                Ok("delivered")
            }
            Attempt::Gone => {
                let reason = "the receiver answered 410 Gone";
                self.store
                    .disable_webhook(&webhook.name, reason, now.timestamp())
                    .await?;
                self.store
                    .mark_failed(&row.id, Some(410), reason, Some(now.timestamp()))
                    .await?;
                tracing::error!(webhook = %webhook.name, delivery = %row.id, "webhook disabled: the receiver answered 410 Gone; its alerts stay queued until `wirewatch redeliver --webhook {}`", webhook.name);
                report.disabled += 1;
                Ok("disabled")
            }
            Attempt::Failed {
                status,
                error,
                retry_after,
            } => {
                let next = retry_at(webhook, attempt, retry_after, now);
                // Rounded up to the next whole second: a retry is never earlier than the
                // schedule or a `Retry-After` says.
                let next_at =
                    next.map(|t| t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0));
                self.store
                    .mark_failed(&row.id, status, &error, next_at)
                    .await?;
                match next {
                    Some(next) => {
                        tracing::warn!(webhook = %webhook.name, delivery = %row.id, attempt, error = %error, next_attempt = %next, "delivery failed, will retry");
                        report.failed += 1;
                        Ok("failed")
                    }
                    None => {
                        tracing::error!(webhook = %webhook.name, delivery = %row.id, attempt, error = %error, "delivery failed for the last time: dead-lettered");
                        report.dead += 1;
                        Ok("dead")
                    }
                }
            }
        }
    }

    /// One POST of one row.
    async fn attempt(&self, webhook: &Webhook, row: &Delivery) -> Attempt {
        let timestamp = clock::unix();
        let mut request = self
            .client_for(webhook)
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
        let response = match request.body(row.body.clone()).send().await {
            Ok(response) => response,
            Err(err) => {
                // The URL is stripped: a chat webhook's URL is its credential.
                let error = if err.is_timeout() {
                    format!(
                        "timed out after {}",
                        humantime::format_duration(webhook.timeout)
                    )
                } else {
                    error_chain(&err.without_url())
                };
                return Attempt::Failed {
                    status: None,
                    error,
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered(status.as_u16());
        }
        if status == StatusCode::GONE {
            return Attempt::Gone;
        }
        let error = if status.is_redirection() {
            format!("http status {status}: redirects are not followed; configure the final URL")
        } else {
            format!("http status {status}")
        };
        let honours_retry_after = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
        );
        let retry_after = honours_retry_after
            .then(|| retry_after(response.headers(), clock::now()))
            .flatten()
            .map(|wait| wait.min(MAX_RETRY_AFTER));
        Attempt::Failed {
            status: Some(status.as_u16()),
            error,
            retry_after,
        }
    }

    /// Runs one worker per webhook until `shutdown`. Each drains what is due, then sleeps
    /// until its next row is due or `wake` says new rows were committed.
    pub async fn run(self, wake: Wake, shutdown: CancellationToken) {
        let mut workers = JoinSet::new();
        for index in 0..self.config.webhooks.len() {
            let (this, wake, shutdown) = (self.clone(), wake.subscribe(), shutdown.clone());
            workers.spawn(async move { this.work(index, wake, shutdown).await });
        }
        while workers.join_next().await.is_some() {}
    }

    async fn work(
        &self,
        index: usize,
        mut wake: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) {
        let name = &self.config.webhooks[index].name;
        let health = self.store.health().clone();
        loop {
            if let Err(err) = self.drain_webhook(index, &shutdown, None).await {
                tracing::error!(webhook = %name, error = %error_chain(&err), "outbox pass failed");
            }
            if !health.writable() {
                // Nothing can be claimed or marked: wait for the database, then drain at
                // once (a row sent but not marked goes out again after its lease).
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = health.until_writable() => continue,
                }
            }
            let sleep = match self.store.next_delivery_due(name).await {
                Ok(Some(due)) => {
                    let wait = due - clock::unix();
                    Duration::from_secs(wait.clamp(0, IDLE_POLL.as_secs() as i64) as u64)
                }
                Ok(None) => IDLE_POLL,
                Err(err) => {
                    tracing::error!(webhook = %name, error = %error_chain(&err), "cannot read the outbox");
                    IDLE_POLL
                }
            };
            // Due times have one-second resolution; never spin on a row that is due but
            // still leased.
            let sleep = sleep.max(Duration::from_millis(250));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.changed() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }
}

/// When attempt number `attempt` (1-based) failed: the next try, or `None` once the
/// schedule is used up (dead letter). The schedule's delay gets ±20% jitter so rows that
/// failed together do not retry in lockstep; a `Retry-After` can only push it later.
fn retry_at(
    webhook: &Webhook,
    attempt: usize,
    retry_after: Option<Duration>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let delay = webhook.retry_schedule.get(attempt - 1)?;
    let factor = rand::rng().random_range(0.8..=1.2);
    let jittered = Duration::from_secs_f64(delay.as_secs_f64() * factor);
    let wait = jittered
        .max(retry_after.unwrap_or_default())
        .max(Duration::from_secs(1));
    Some(now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(schedule: &[u64]) -> Webhook {
        Webhook {
            name: "w".into(),
            url: url::Url::parse("http://127.0.0.1/").unwrap(),
            format: crate::config::WebhookFormat::Json,
            secret: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(5),
            retry_schedule: schedule.iter().map(|s| Duration::from_secs(*s)).collect(),
            allow_private_network: true,
        }
    }

    #[test]
    fn retries_follow_the_schedule_with_jitter_then_dead_letter() {
        let now = Utc::now();
        let hook = webhook(&[100, 1000]);
        for _ in 0..50 {
            let first = (retry_at(&hook, 1, None, now).unwrap() - now).num_milliseconds();
            assert!((80_000..=120_000).contains(&first), "{first}");
            let second = (retry_at(&hook, 2, None, now).unwrap() - now).num_seconds();
            assert!((800..=1200).contains(&second), "{second}");
        }
        assert_eq!(retry_at(&hook, 3, None, now), None);
    }

    #[test]
    fn a_retry_after_longer_than_the_schedule_wins() {
        let now = Utc::now();
        let hook = webhook(&[1]);
        let next = retry_at(&hook, 1, Some(Duration::from_secs(30)), now).unwrap();
        assert_eq!((next - now).num_seconds(), 30);
        // A shorter one does not make the retry sooner than the schedule says.
        let hook = webhook(&[100]);
        let next = retry_at(&hook, 1, Some(Duration::from_secs(2)), now).unwrap();
        assert!((next - now).num_seconds() >= 80);
    }

    /// A receiver on 127.0.0.1 answering each POST with the next status of `script` (then
    /// 200), and recording when (tokio time since `started`) each came.
    async fn receiver(
        script: Vec<(u16, Option<&'static str>)>,
        started: tokio::time::Instant,
    ) -> (String, Arc<std::sync::Mutex<Vec<u64>>>) {
        use axum::response::IntoResponse as _;
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let script = Arc::new(std::sync::Mutex::new(script.into_iter()));
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post({
                let seen = seen.clone();
                move || {
                    seen.lock().unwrap().push(started.elapsed().as_secs());
                    let (status, retry_after) =
                        script.lock().unwrap().next().unwrap_or((200, None));
                    async move {
                        let mut response = StatusCode::from_u16(status).unwrap().into_response();
                        if let Some(wait) = retry_after {
                            response
                                .headers_mut()
                                .insert("retry-after", HeaderValue::from_static(wait));
                        }
                        response
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    /// A store holding one alert for webhook `siem` at `url`, retried after 1m, 10m, 1h.
    async fn one_alert(url: &str) -> (tempfile::TempDir, Store, Arc<Config>) {
        use crate::commit::{Candidate, FeedResult, Fetched};
        let (dir, store) = crate::store::temp_store().await;
        let text = format!(
            "[[feeds]]\nname = \"wire\"\nurl = \"https://wire.example/rss\"\n\n\
             [[watchlists]]\nname = \"iran\"\nterms = [\"Iran\"]\nwebhooks = [\"siem\"]\n\n\
             [[webhooks]]\nname = \"siem\"\nurl = \"{url}\"\nallow_private_network = true\n\
             retry_schedule = [\"1m\", \"10m\", \"1h\"]\n"
        );
        let config = Arc::new(Config::from_source(&dir.path().join("w.toml"), &text).unwrap());
        store
            .register(&[("wire", "https://wire.example/rss")], &[("siem", "x")])
            .await
            .unwrap();
        let feed_id = store.feed_state("wire").await.unwrap().unwrap().id;
        let item = crate::parse::Item {
            guid: Some("1".into()),
            title: "Iran and China sign a pact".into(),
            link: Some(url::Url::parse("https://wire.example/1").unwrap()),
            ..Default::default()
        };
        let matches = config
            .matcher
            .match_item(&crate::refresh::document(&item), &|_| true);
        let candidate = Candidate::new(
            crate::dedup::item_key(&item),
            item,
            crate::matcher::Examined {
                matches,
                misses: Vec::new(),
            },
        );
        let fetched = FeedResult::Fetched(Box::new(Fetched {
            feed: 0,
            feed_id,
            at: clock::now(),
            candidates: vec![candidate],
            first_fetch: false,
            update: Default::default(),
        }));
        crate::commit::write(&store, &config, &[&fetched])
            .await
            .unwrap();
        (dir, store, config)
    }

    /// One pass of webhook 0's worker at the current (paused) time; what it did.
    async fn pass(notifier: &Notifier) -> DrainReport {
        notifier
            .drain_webhook(0, &CancellationToken::new(), None)
            .await
            .unwrap()
    }

    async fn advance(secs: u64) {
        tokio::time::advance(Duration::from_secs(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_delivery_is_retried_on_its_schedule_never_sooner_than_retry_after() {
        let _held = crate::clock::hold();
        let started = tokio::time::Instant::now();
        let (url, seen) =
            receiver(vec![(503, Some("600")), (500, None), (200, None)], started).await;
        let (_dir, store, config) = one_alert(&url).await;
        let notifier = Notifier::new(store.clone(), config).unwrap();

        assert_eq!(
            pass(&notifier).await.failed,
            1,
            "the first attempt, at once"
        );
        // Retry-After: 600 beats the first delay (1m ± 20%): nothing before it.
        advance(599).await;
        assert_eq!(pass(&notifier).await, DrainReport::default());
        advance(2).await;
        assert_eq!(pass(&notifier).await.failed, 1, "the second attempt");
        // Then the second delay, 10m ± 20%: not before 8 minutes, by 12 at the latest.
        advance(479).await;
        assert_eq!(pass(&notifier).await, DrainReport::default());
        advance(243).await;
        assert_eq!(pass(&notifier).await.delivered, 1, "the third attempt");

        let at = seen.lock().unwrap().clone();
        assert_eq!(at.len(), 3, "{at:?}");
        let rows = store.deliveries(None, 10).await.unwrap();
        assert_eq!(
            (rows[0].status.as_str(), rows[0].attempts),
            ("delivered", 3)
        );
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 1, "one row, one webhook-id, every attempt");
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_claimed_by_a_send_that_died_goes_out_once_its_lease_passes() {
        let _held = crate::clock::hold();
        let started = tokio::time::Instant::now();
        let (url, seen) = receiver(vec![], started).await;
        let (_dir, store, config) = one_alert(&url).await;
        let notifier = Notifier::new(store.clone(), config.clone()).unwrap();
        // A send claimed the row, as a worker does, and died before any answer.
        let lease = (config.webhooks[0].timeout + Duration::from_secs(10)).as_secs() as i64;
        let now = clock::unix();
        let claimed = store
            .claim_deliveries("siem", "node-a", now, now + lease, 4)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);

        // Leased: no second send while the first may still be in flight.
        advance(lease as u64 - 1).await;
        assert_eq!(pass(&notifier).await, DrainReport::default());
        assert!(seen.lock().unwrap().is_empty());
        // Past the lease the row goes out, under the same id.
        advance(2).await;
        assert_eq!(pass(&notifier).await.delivered, 1);
        let rows = store.deliveries(None, 10).await.unwrap();
        assert_eq!(rows[0].id, claimed[0].id);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
