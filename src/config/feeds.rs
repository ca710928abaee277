//! `[[feeds]]`: each entry into a [`Feed`]. Its URL is parsed (and checked by the network
//! guard unless `[poll]` allows private networks), its name is given or taken from the
//! URL's host and must be unique, its schedule is its own or `[poll]`'s, and its tags and
//! the query parameters to redact are checked. The `[[opml]]` import builds its feeds
//! through here too, so that an imported feed obeys the same rules.

use std::collections::HashMap;

use super::problems::Problems;
use super::raw::RawFeed;
use super::values::{parse_http_url, parse_schedule};
use super::{Feed, Poll};
use crate::guard;

pub(super) fn build_feeds(
    raw: Vec<RawFeed>,
    poll: Option<&Poll>,
    p: &mut Problems<'_>,
) -> Vec<Feed> {
    let mut feeds = Vec::with_capacity(raw.len());
    let mut seen: HashMap<String, ()> = HashMap::new();
    for feed in raw {
        let guard = poll
            .is_some_and(|poll| !poll.allow_private_networks)
            .then_some(guard::Scope::Feeds);
        let Some(url) = parse_http_url(&feed.url, "feed url", guard, p) else {
            continue;
        };
        let (name, name_span) = match &feed.name {
            Some(name) => (name.get_ref().trim().to_string(), name.span()),
            None => (
                url.host_str().unwrap_or_default().to_string(),
                feed.url.span(),
            ),
        };
        if name.is_empty() {
            p.at(name_span, "feed name is empty");
            continue;
        }
        if seen.insert(name.clone(), ()).is_some() {
            let hint = if feed.name.is_none() {
                " (derived from the URL's host: give the feed a `name`)"
            } else {
                ""
            };
            p.at(name_span, format!("duplicate feed name `{name}`{hint}"));
            continue;
        }
        let schedule = match &feed.schedule {
            Some(s) => match parse_schedule(s, p) {
                Some(schedule) => schedule,
                None => continue,
            },
            None => match poll {
                Some(poll) => poll.schedule.clone(),
                None => continue,
            },
        };
        let mut tags = Vec::new();
        for tag in feed.tags {
            if tag.get_ref().trim().is_empty() || tag.get_ref().contains(':') {
                p.at(
                    tag.span(),
                    format!(
                        "tag `{}` must be non-empty and contain no `:`",
                        tag.get_ref()
                    ),
                );
            } else {
                tags.push(tag.into_inner());
            }
        }
        let mut redact_params = Vec::with_capacity(feed.redact_params.len());
        for param in feed.redact_params {
            let text = param.get_ref().trim();
            if text.is_empty() {
                p.at(param.span(), "redact_params: a parameter name is empty");
            } else {
                redact_params.push(text.to_string());
            }
        }
        feeds.push(Feed {
            name,
            url,
            schedule,
            cache_hints: feed.schedule.is_none(),
            full_text: feed.full_text.unwrap_or(false),
            tags,
            redact_params,
        });
    }
    feeds
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load;

    #[test]
    fn every_refused_feed_is_reported_at_its_own_line_in_file_order() {
        let source: String = (0..2000)
            .map(|i| format!("[[feeds]]\nname = \"f{i}\"\nurl = \"http://127.0.0.1/{i}\"\n\n"))
            .collect();
        let err = load(&source).unwrap_err();
        assert_eq!(err.problems.len(), 2000);
        for (i, problem) in err.problems.iter().enumerate() {
            assert_eq!(
                (problem.line, problem.column),
                (Some(4 * i + 3), Some(7)),
                "{}",
                problem.message
            );
            assert!(
                problem
                    .message
                    .starts_with("feed url: refused: 127.0.0.1 is a loopback address")
            );
        }
    }
}
