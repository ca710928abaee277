//! `[[webhooks]]`: each entry into a [`Webhook`]: a unique name, an http(s) URL (checked
//! by the network guard unless the webhook or `[poll]` allows private networks), a body
//! format, the signing secret and extra headers (read by [`super::credentials`]), a
//! timeout, and the retry schedule, [`DEFAULT_RETRY_SCHEDULE`] unless it sets its own.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use super::credentials::{webhook_headers, webhook_secret};
use super::problems::Problems;
use super::raw::RawWebhook;
use super::values::{duration, duration_or, parse_http_url, refuse_zero, unique_name};
use super::{DEFAULT_RETRY_SCHEDULE, Poll, Webhook, WebhookFormat};
use crate::guard;

/// A webhook's `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

pub(super) fn build_webhooks(
    base: &Path,
    raw: Vec<RawWebhook>,
    poll: Option<&Poll>,
    p: &mut Problems<'_>,
) -> Vec<Webhook> {
    let mut webhooks = Vec::with_capacity(raw.len());
    let mut seen = HashSet::new();
    for hook in raw {
        let Some(name) = unique_name(&hook.name, "webhook", &mut seen, p) else {
            continue;
        };
        let guard = (poll.is_some_and(|poll| !poll.allow_private_networks)
            && hook.allow_private_network != Some(true))
        .then_some(guard::Scope::Webhooks);
        let url = parse_http_url(&hook.url, "webhook url", guard, p);
        let format = match hook
            .format
            .as_ref()
            .map(|f| (f.get_ref().as_str(), f.span()))
        {
            None | Some(("json", _)) => Some(WebhookFormat::Json),
            Some(("slack", _)) => Some(WebhookFormat::Slack),
            Some(("discord", _)) => Some(WebhookFormat::Discord),
            Some(("teams", _)) => Some(WebhookFormat::Teams),
            Some((other, span)) => {
                p.at(
                    span,
                    format!("webhook format `{other}` is unknown: expected \"json\", \"slack\", \"discord\" or \"teams\""),
                );
                None
            }
        };
        let secret = webhook_secret(base, &hook, p);
        let headers = webhook_headers(base, &hook, p);
        let timeout = duration_or(hook.timeout.as_ref(), "timeout", DEFAULT_TIMEOUT, p);
        refuse_zero(hook.timeout.as_ref(), "timeout", p);
        let retry_schedule = match &hook.retry_schedule {
            None => DEFAULT_RETRY_SCHEDULE.to_vec(),
            Some(list) => {
                if list.get_ref().is_empty() {
                    p.at(
                        list.span(),
                        "retry_schedule is empty: give at least one delay, e.g. [\"5s\"]",
                    );
                }
                list.get_ref()
                    .iter()
                    .map(|d| duration(d, "retry_schedule entry", p))
                    .collect()
            }
        };
        let (Some(url), Some(format), Ok(secret)) = (url, format, secret) else {
            continue;
        };
        webhooks.push(Webhook {
            name,
            url,
            format,
            secret,
            headers,
            timeout,
            retry_schedule,
            allow_private_network: hook.allow_private_network.unwrap_or(false)
                || poll.is_some_and(|poll| poll.allow_private_networks),
        });
    }
    webhooks
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load;

    #[test]
    fn a_written_duration_that_does_not_parse_is_reported_at_its_value() {
        let source = "[[webhooks]]\nname = \"w\"\nurl = \"https://hooks.example.org/x\"\n\
                      timeout = \"soon\"\nretry_schedule = [\"5s\", \"later\"]\n";
        let messages: Vec<(Option<usize>, Option<usize>, String)> = load(source)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|problem| (problem.line, problem.column, problem.message))
            .collect();
        assert_eq!(
            messages,
            [
                (
                    Some(4),
                    Some(11),
                    "timeout `soon` is not a duration: write it like \"90s\", \"5m\" or \"2h\""
                        .to_string()
                ),
                (
                    Some(5),
                    Some(25),
                    "retry_schedule entry `later` is not a duration: write it like \"90s\", \"5m\" or \"2h\""
                        .to_string()
                ),
            ]
        );
    }
}
