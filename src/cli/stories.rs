//! `wirewatch stories`: the stories that matched a watch-list, newest activity first,
//! filtered by watch-list and age ([`Store::stories`]); printed as a [`StoryList`] or as
//! the JSON document of SPEC §10, the one `GET /api/v1/stories` answers.

use std::fmt;

use anyhow::Context as _;
use chrono::DateTime;
use clap::Args;

use crate::config::Config;
use crate::store::{MAX_STORY_ITEMS, Store, StoryListing, StoryQuery, StoryRow};

use super::{CliError, print, print_json};

#[derive(Debug, Args)]
#[command(after_help = format!(
    "Only stories that matched at least one watch-list are listed: the stories of items that \
     matched nothing are not. A story is one event, however many feeds carried it; each shows \
     its first items (at most {MAX_STORY_ITEMS}) in the order seen."
))]
pub struct StoriesArgs {
    /// Only stories with a match for this watch-list.
    #[arg(long)]
    pub watchlist: Option<String>,
    /// Only stories active (an item joined them) within this long, e.g. 24h or 7d.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<std::time::Duration>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn stories(config: &Config, args: &StoriesArgs) -> Result<(), CliError> {
    let store = Store::open(&config.daemon.database)
        .await
        .context("cannot open the store")?;
    let since = super::since(args.since);
    let rows = store
        .stories(&StoryQuery {
            watchlist: args.watchlist.clone(),
            since,
            limit: i64::from(args.limit),
            before: None,
        })
        .await
        .context("cannot read stories")?;
    store.close().await;
    if args.json {
        return print_json(&StoryListing { stories: &rows });
    }
    print(StoryList(&rows))
}

/// Stories as text: last seen, feeds, watch-lists and title, then each item (feed, title,
/// link) indented, and how many more items the story holds than are listed; "no stories"
/// for none.
struct StoryList<'a>(&'a [StoryRow]);

impl fmt::Display for StoryList<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.0;
        for row in rows {
            let at = DateTime::from_timestamp(row.last_seen_at, 0).map_or_else(
                || row.last_seen_at.to_string(),
                |t| t.format("%Y-%m-%d %H:%M").to_string(),
            );
            let feeds = if row.feeds == 1 { "feed" } else { "feeds" };
            writeln!(
                out,
                "{at}  {} {feeds}  [{}]  {}",
                row.feeds,
                row.watchlists.join(", "),
                row.title
            )?;
            for item in &row.items {
                write!(out, "    {}: {}", item.feed, item.title)?;
                match &item.url {
                    Some(url) => writeln!(out, "  {url}")?,
                    None => writeln!(out)?,
                }
            }
            let more = row.item_count.saturating_sub(row.items.len() as u64);
            if more > 0 {
                writeln!(out, "    +{more} more")?;
            }
        }
        if rows.is_empty() {
            writeln!(out, "no stories")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StorySighting;

    fn sighting(feed: &str, title: &str, url: Option<&str>) -> StorySighting {
        StorySighting {
            feed: feed.to_string(),
            title: title.to_string(),
            url: url.map(str::to_string),
            seen_at: 1_764_000_000,
        }
    }

    #[test]
    fn a_story_is_a_line_of_its_reach_then_its_items_indented_and_how_many_more_it_holds() {
        let story = StoryRow {
            id: "7".to_string(),
            title: "Iran and China sign a 25-year pact".to_string(),
            first_seen_at: 1_764_000_000,
            last_seen_at: 1_764_003_600,
            feeds: 2,
            watchlists: vec!["energy".to_string(), "iran-china".to_string()],
            items: vec![
                sighting(
                    "wire",
                    "Iran and China sign a 25-year pact",
                    Some("https://wire.example/pact"),
                ),
                sighting("mirror", "Iran, China sign long-term pact", None),
            ],
            item_count: 5,
        };

        assert_eq!(
            StoryList(&[story]).to_string(),
            "2025-11-24 17:00  2 feeds  [energy, iran-china]  Iran and China sign a 25-year pact\n\
             \x20   wire: Iran and China sign a 25-year pact  https://wire.example/pact\n\
             \x20   mirror: Iran, China sign long-term pact\n\
             \x20   +3 more\n"
        );
        assert_eq!(StoryList(&[]).to_string(), "no stories\n");
    }
}
