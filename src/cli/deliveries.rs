//! The outbox from the command line: `wirewatch deliveries` lists webhook deliveries and
//! disabled webhooks ([`DeliveriesOutput`], as text or JSON); `wirewatch redeliver`
//! re-queues deliveries by id or every dead letter, and re-enables a disabled webhook
//! ([`Redelivered`]).

use std::fmt;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::clock;
use crate::config::Config;
use crate::store::{DeliveryFilter, DeliveryRow, DisabledWebhook, OutboxStatus, Store};
use crate::telemetry::error_chain;

use super::{CliError, print, print_json, time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeliveryStatus {
    /// Waiting for a first attempt or a retry.
    Pending,
    /// Pending after at least one failed attempt.
    Failed,
    /// Retries used up: dead-lettered.
    Dead,
    Delivered,
}

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    #[arg(long, value_enum)]
    pub status: Option<DeliveryStatus>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RedeliverArgs {
    /// Delivery ids (the `webhook-id` a receiver saw).
    pub ids: Vec<String>,
    /// Re-queue every dead-lettered delivery (of `--webhook` only, when given).
    #[arg(long, conflicts_with = "ids")]
    pub dead: bool,
    /// Re-enable this webhook if a 410 disabled it.
    #[arg(long, conflicts_with = "ids")]
    pub webhook: Option<String>,
}

/// Disabled webhooks first (each with how to re-enable it), then one line per delivery
/// and its last error; "no deliveries" for none.
#[derive(Debug, Serialize)]
struct DeliveriesOutput {
    disabled_webhooks: Vec<DisabledWebhook>,
    deliveries: Vec<DeliveryRow>,
}

pub(super) async fn deliveries(config: &Config, args: &DeliveriesArgs) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let status = args.status.map(|s| match s {
        DeliveryStatus::Pending => DeliveryFilter::Pending,
        DeliveryStatus::Failed => DeliveryFilter::Failed,
        DeliveryStatus::Dead => DeliveryFilter::Dead,
        DeliveryStatus::Delivered => DeliveryFilter::Delivered,
    });
    let output = DeliveriesOutput {
        disabled_webhooks: store
            .disabled_webhooks()
            .await
            .context("cannot read webhooks")?,
        deliveries: store
            .deliveries(status, i64::from(args.limit))
            .await
            .context("cannot read deliveries")?,
    };
    store.close().await;
    if args.json {
        return print_json(&output);
    }
    print(output)
}

impl fmt::Display for DeliveriesOutput {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let output = self;
        for hook in &output.disabled_webhooks {
            writeln!(
                out,
                "webhook {} DISABLED since {}: {} (re-enable: wirewatch redeliver --webhook {})",
                hook.name,
                time(hook.disabled_at),
                hook.reason,
                hook.name
            )?;
        }
        for row in &output.deliveries {
            let next = match row.status {
                OutboxStatus::Pending => format!("next {}", time(row.next_attempt_at)),
                OutboxStatus::Delivered => {
                    format!("at {}", row.delivered_at.map_or("-".into(), time))
                }
                OutboxStatus::Dead => String::new(),
            };
            let grew = match row.grew_to {
                0 => String::new(),
                feeds => format!(" (story grew to {feeds} feeds)"),
            };
            writeln!(
                out,
                "{}  {:<9} {}  attempts {}  {next}  [{}] {}{grew}",
                row.id, row.status, row.webhook, row.attempts, row.watchlist, row.title
            )?;
            if let Some(error) = &row.last_error {
                writeln!(out, "    last error: {error}")?;
            }
        }
        if output.deliveries.is_empty() {
            writeln!(out, "no deliveries")?;
        }
        Ok(())
    }
}

pub(super) async fn redeliver(config: &Config, args: &RedeliverArgs) -> Result<(), CliError> {
    if args.ids.is_empty() && !args.dead && args.webhook.is_none() {
        return Err(CliError::Usage(
            "name delivery ids, or --dead, or --webhook NAME".into(),
        ));
    }
    if let Some(name) = &args.webhook
        && !config.webhooks.iter().any(|w| &w.name == name)
    {
        return Err(CliError::Usage(format!("no webhook is named `{name}`")));
    }
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let now = clock::unix();
    let mut done = Redelivered::default();
    let mut missing = Vec::new();
    let worked: anyhow::Result<()> = async {
        for id in &args.ids {
            if store.requeue(id, now).await.context("cannot re-queue")? {
                done.requeued.push(id.as_str());
            } else {
                missing.push(id.as_str());
            }
        }
        if let Some(name) = &args.webhook {
            store
                .enable_webhook(name)
                .await
                .context("cannot enable the webhook")?;
            done.enabled = Some(name.as_str());
        }
        if args.dead {
            let count = store
                .requeue_dead(args.webhook.as_deref(), now)
                .await
                .context("cannot re-queue")?;
            done.dead = Some(count);
        }
        Ok(())
    }
    .await;
    store.close().await;
    // What was done is reported even when a later step failed, so the operator knows
    // which ids are already re-queued; that failure is the one the exit code reports, and
    // a failed write beside it is logged.
    let written = print(&done);
    if let Err(err) = worked {
        if let Err(write) = written {
            tracing::warn!(error = %error_chain(&write), "cannot write the report");
        }
        return Err(err.into());
    }
    written?;
    if !missing.is_empty() {
        return Err(anyhow::anyhow!("no delivery with id {}", missing.join(", ")).into());
    }
    Ok(())
}

/// What `redeliver` did: the deliveries re-queued by id, the webhook re-enabled, and how
/// many dead letters were re-queued.
#[derive(Debug, Default)]
struct Redelivered<'a> {
    requeued: Vec<&'a str>,
    enabled: Option<&'a str>,
    dead: Option<u64>,
}

impl fmt::Display for Redelivered<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        for id in &self.requeued {
            writeln!(out, "{id}: re-queued")?;
        }
        if let Some(name) = self.enabled {
            writeln!(out, "webhook {name}: enabled")?;
        }
        if let Some(count) = self.dead {
            writeln!(out, "{count} dead deliveries re-queued")?;
        }
        Ok(())
    }
}
