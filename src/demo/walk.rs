//! The demo's driver: writes the configuration, runs two poll cycles through the real
//! pipeline, and prints the walk-through as it goes: the setup ([`Intro`]), each cycle's
//! feeds ([`Cycle`]), the alerts the receiver got ([`AlertView`]), the items that did not
//! alert and why ([`NotAlerted`]), the story from three outlets and its opposite as the
//! database holds them ([`Stories`]), and a summary. Whatever did not behave as documented
//! is collected as a problem and fails the demo.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::cli::{CliError, print};
use crate::config::Config;
use crate::daemon;
use crate::notify::Notifier;
use crate::refresh::{Outcome, Report};
use crate::scheduler;
use crate::store::{Store, StoreError, StorySighting};

use super::feed_server::FeedServer;
use super::receiver::{Alert, Receiver};
use super::samples::{CONFIG, NEAR_MISSES, ONE_STORY, OPPOSITE, SAME_STORY, SAMPLE_FEEDS};

pub(super) async fn cycles(
    dir: &Path,
    temporary: bool,
    feeds: &FeedServer,
    receiver: &Receiver,
    secret: &str,
) -> Result<(), CliError> {
    let path = dir.join("wirewatch.toml");
    let text = CONFIG
        .replace("{feeds}", &format!("http://{}/feeds", feeds.addr))
        .replace("{sink}", &format!("http://{}/hook", receiver.addr))
        .replace("{secret}", secret);
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    let config = Arc::new(
        Config::from_source(&path, &text)
            .map_err(|err| anyhow::anyhow!("the demo's own configuration is refused: {err}"))?,
    );
    let mut problems: Vec<String> = Vec::new();

    print(Intro {
        feeds: feeds.addr,
        receiver: receiver.addr,
        dir,
        temporary,
    })?;

    let (store, pipeline, _writer) = daemon::open(&config)
        .await
        .context("cannot open the demo's store")?;
    let notifier =
        Notifier::new(store.clone(), config.clone()).context("cannot build the HTTP client")?;
    let all: Vec<usize> = (0..config.feeds.len()).collect();

    // Cycle 1: everything is new.
    print("cycle 1: fetch, parse, de-duplicate, match, store, deliver\n")?;
    let cycle = Cycle::new(scheduler::poll_once(&pipeline, &all).await)?;
    print(&cycle)?;
    problems.extend(cycle.problems());
    let first = cycle.totals();
    let drained = notifier
        .drain_outbox()
        .await
        .context("cannot deliver alerts")?;
    let alerts = receiver.received();
    let verified = alerts.iter().filter(|a| a.verified).count();
    print(format_args!(
        "\nalerts received by the webhook: {} ({verified} with a valid signature)\n",
        alerts.len()
    ))?;
    for alert in &alerts {
        print(AlertView(alert))?;
    }
    if alerts.is_empty() {
        problems.push("no alert reached the webhook".into());
    }
    if verified != alerts.len() {
        problems.push(format!(
            "{} alerts had a bad signature",
            alerts.len() - verified
        ));
    }
    if drained.delivered != verified || drained.failed + drained.dead > 0 {
        problems.push(format!(
            "deliveries: {} delivered, {} failed, {} dead; the webhook accepted {verified}",
            drained.delivered,
            drained.failed + drained.dead,
            drained.dead
        ));
    }

    let not_alerted = NotAlerted { alerts: &alerts };
    print(&not_alerted)?;
    problems.extend(not_alerted.problems());
    // Besides the alerts and the near misses, the copies of a story that alerted once.
    let copies = SAME_STORY.len() - 1 + ONE_STORY.len() - 1;
    let unrelated = first
        .items
        .saturating_sub(alerts.len() + NEAR_MISSES.len() + copies);
    print(format_args!(
        "  and {unrelated} more items that mention none of the terms\n"
    ))?;

    // The story from three outlets, as the database holds it after the cycle: an alert's
    // `story` shows only the copies committed with or before it.
    let stories = Stories::read(&store, &alerts).await?;
    print(&stories)?;
    problems.extend(stories.problems());

    // Cycle 2: the feeds have not changed.
    print("\ncycle 2: the same feeds again\n")?;
    let cycle = Cycle::new(scheduler::poll_once(&pipeline, &all).await)?;
    print(&cycle)?;
    problems.extend(cycle.problems());
    let second = cycle.totals();
    let drained = notifier
        .drain_outbox()
        .await
        .context("cannot deliver alerts")?;
    let resent = receiver.received().len() - alerts.len();
    print(format_args!(
        "  deliveries: {} sent; nothing is sent twice\n",
        drained.delivered
    ))?;
    if second.not_modified != config.feeds.len() {
        problems.push(format!(
            "cycle 2: {} of {} feeds answered 304 Not Modified",
            second.not_modified,
            config.feeds.len()
        ));
    }
    if drained.delivered + resent > 0 {
        problems.push(format!(
            "cycle 2 sent {} alerts",
            drained.delivered.max(resent)
        ));
    }

    print(format_args!(
        "\nsummary: {} feeds, {} items, {} matches, {verified} alerts delivered and verified; \
         cycle 2: {} new items, {} alerts\n",
        config.feeds.len(),
        first.items,
        first.matches,
        second.new_items,
        drained.delivered
    ))?;
    print(
        "\nnext: `wirewatch test-feed FILE` shows why each item of a feed matches or not;\n\
         config/wirewatch.toml documents every key; `wirewatch demo --dir DIR` keeps this\n\
         run's files, e.g. for `wirewatch matches --config DIR/wirewatch.toml`, or\n\
         `wirewatch explain LINK` (why a stored item alerted or not) and `wirewatch\n\
         backtest --watchlist iran-china` (what a watch-list catches over what is stored).\n",
    )?;
    drop(pipeline);
    drop(notifier);
    store.close().await;
    if problems.is_empty() {
        Ok(())
    } else {
        print(Problems(&problems))?;
        Err(anyhow::anyhow!(
            "the demo did not behave as documented: {}",
            problems.join("; ")
        )
        .into())
    }
}

/// The setup: where the feeds and the receiver are, where the files go, and the
/// watch-list the sample feeds are matched by.
struct Intro<'a> {
    feeds: SocketAddr,
    receiver: SocketAddr,
    dir: &'a Path,
    temporary: bool,
}

impl fmt::Display for Intro<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            out,
            "wirewatch demo: the whole pipeline on this machine, offline\n"
        )?;
        writeln!(
            out,
            "  feeds     {} sample feeds served from http://{}/feeds/",
            SAMPLE_FEEDS.len(),
            self.feeds
        )?;
        writeln!(
            out,
            "  webhook   a receiver at http://{}/hook that verifies every signature",
            self.receiver
        )?;
        let kept = if self.temporary {
            "removed at the end; `--dir DIR` keeps them"
        } else {
            "kept"
        };
        writeln!(
            out,
            "  files     {}: wirewatch.toml, wirewatch.db\n            ({kept})\n",
            self.dir.display()
        )?;
        writeln!(out, "watch-list iran-china")?;
        writeln!(out, "  terms     Iran, China, SCO, JCPOA")?;
        writeln!(
            out,
            "  aliases   SCO: Shanghai Cooperation Organisation/Organization; JCPOA: Joint"
        )?;
        writeln!(
            out,
            "            Comprehensive Plan of Action, Iran nuclear deal; Iran: ایران, 伊朗;"
        )?;
        writeln!(out, "            China: 中国, چین")?;
        writeln!(out, "  query     (Iran OR JCPOA) AND (China OR SCO)")?;
        writeln!(out, "  exclude   football\n")
    }
}

/// The width the walk-through's prose is wrapped to.
const WIDTH: usize = 88;

/// `text` wrapped at spaces to `width` columns, every line indented by `indent`.
fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && indent + len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    let pad = " ".repeat(indent);
    lines
        .iter()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What one cycle did, over all feeds.
#[derive(Debug, Default)]
struct Totals {
    items: usize,
    new_items: usize,
    matches: usize,
    not_modified: usize,
}

/// One poll cycle: a line per feed, with its kind of feed and its outcome.
struct Cycle(Vec<Report>);

impl Cycle {
    fn new(reports: Vec<Result<Report, StoreError>>) -> Result<Cycle, CliError> {
        let reports = reports
            .into_iter()
            .collect::<Result<_, _>>()
            .context("cannot store a feed's results")?;
        Ok(Cycle(reports))
    }

    fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for report in &self.0 {
            match &report.outcome {
                Outcome::Updated {
                    items,
                    new_items,
                    matches,
                    ..
                } => {
                    totals.items += items;
                    totals.new_items += new_items;
                    totals.matches += matches;
                }
                Outcome::NotModified => totals.not_modified += 1,
                Outcome::Failed { .. } | Outcome::Disabled { .. } | Outcome::Elsewhere { .. } => {}
            }
        }
        totals
    }

    /// A feed that failed or was disabled: the sample feeds never should.
    fn problems(&self) -> impl Iterator<Item = String> + '_ {
        self.0.iter().filter_map(|report| match &report.outcome {
            Outcome::Failed { error, .. } => Some(format!("{} failed: {error}", report.feed)),
            Outcome::Disabled { reason } => Some(format!("{} disabled: {reason}", report.feed)),
            Outcome::Updated { .. } | Outcome::NotModified | Outcome::Elsewhere { .. } => None,
        })
    }
}

impl fmt::Display for Cycle {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        for report in &self.0 {
            let kind = SAMPLE_FEEDS
                .iter()
                .find(|f| f.name == report.feed)
                .map_or("", |f| f.kind);
            let line = match &report.outcome {
                Outcome::Updated {
                    items,
                    new_items,
                    matches,
                    alerts,
                } => {
                    format!(
                        "{items} items, {new_items} new, {matches} matches, {alerts} alerts queued"
                    )
                }
                Outcome::NotModified => "not modified (304 to a conditional GET)".to_string(),
                Outcome::Failed { class, error, .. } => format!("FAILED ({class}): {error}"),
                Outcome::Disabled { reason } => format!("DISABLED: {reason}"),
                Outcome::Elsewhere { holder } => Outcome::elsewhere(holder),
            };
            writeln!(out, "  {:<11} {kind:<10} {line}", report.feed)?;
        }
        Ok(())
    }
}

/// One alert as the receiver got it: watch-list, terms, title, feed, whether its
/// signature held, and each snippet with the terms found in it.
struct AlertView<'a>(&'a Alert);

impl fmt::Display for AlertView<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alert = self.0;
        let mark = if alert.verified {
            "signature ok"
        } else {
            "BAD SIGNATURE"
        };
        writeln!(
            out,
            "  [{}] {}: {}",
            alert.watchlist,
            alert.terms.join(", "),
            alert.title
        )?;
        writeln!(out, "      from {}, {mark}", alert.feed)?;
        // One line per snippet, with the terms found in it.
        let mut snippets: Vec<(String, String, Vec<String>)> = Vec::new();
        for (field, term, snippet) in &alert.highlights {
            match snippets
                .iter_mut()
                .find(|(f, s, _)| f == field && s == snippet)
            {
                Some((_, _, terms)) if !terms.contains(term) => terms.push(term.clone()),
                Some(_) => {}
                None => snippets.push((field.clone(), snippet.clone(), vec![term.clone()])),
            }
        }
        for (field, snippet, terms) in snippets {
            writeln!(out, "      {field} ({}): \"{snippet}\"", terms.join(", "))?;
        }
        Ok(())
    }
}

/// The near misses and the second copy of the one story, each with why it did not alert.
struct NotAlerted<'a> {
    alerts: &'a [Alert],
}

impl NotAlerted<'_> {
    /// How many alerts had this title.
    fn alerted(&self, title: &str) -> usize {
        self.alerts.iter().filter(|a| a.title == title).count()
    }

    /// The copy of the one story that alerted and the one that did not, when exactly
    /// one did.
    fn same_story(&self) -> Option<(&'static str, &'static str)> {
        match SAME_STORY.map(|title| self.alerted(title)) {
            [1, 0] => Some((SAME_STORY[0], SAME_STORY[1])),
            [0, 1] => Some((SAME_STORY[1], SAME_STORY[0])),
            _ => None,
        }
    }

    /// A near miss that alerted, or a story that did not alert exactly once.
    fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = NEAR_MISSES
            .iter()
            .filter(|(title, _)| self.alerted(title) > 0)
            .map(|(title, _)| format!("near miss alerted: {title}"))
            .collect();
        if self.same_story().is_none() {
            problems.push(format!(
                "one story in two feeds alerted {} times",
                SAME_STORY
                    .map(|title| self.alerted(title))
                    .iter()
                    .sum::<usize>()
            ));
        }
        problems
    }
}

impl fmt::Display for NotAlerted<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(out, "\nnot alerted, and why:")?;
        for (title, why) in NEAR_MISSES {
            writeln!(out, "  - {title}\n{}", wrap(why, 6, WIDTH))?;
        }
        if let Some((sent, other)) = self.same_story() {
            let why = format!(
                "the same story as \"{sent}\", from another feed: the links are the same once \
                 tracking parameters and fragment are removed, and a story alerts a watch-list once"
            );
            writeln!(out, "  - {other}\n{}", wrap(&why, 6, WIDTH))?;
        }
        Ok(())
    }
}

/// The story from three outlets ([`ONE_STORY`]) and its opposite ([`OPPOSITE`]): the
/// alerts the webhook got for them, and the story's items as stored.
struct Stories<'a> {
    /// The alerts on any copy of the story.
    alerted: Vec<&'a Alert>,
    /// The items of the (first) alerted copy's story, in the order seen.
    items: Vec<StorySighting>,
    /// The alerts on the opposite event.
    opposite: Vec<&'a Alert>,
}

impl<'a> Stories<'a> {
    async fn read(store: &Store, alerts: &'a [Alert]) -> Result<Stories<'a>, CliError> {
        let is =
            |alert: &Alert, (feed, title): (&str, &str)| alert.feed == feed && alert.title == title;
        let alerted: Vec<&Alert> = alerts
            .iter()
            .filter(|alert| ONE_STORY.iter().any(|copy| is(alert, *copy)))
            .collect();
        let items = match alerted.first().and_then(|alert| alert.story) {
            Some(story) => store
                .story_items(story)
                .await
                .context("cannot read the story's items")?,
            None => Vec::new(),
        };
        let opposite = alerts.iter().filter(|alert| is(alert, OPPOSITE)).collect();
        Ok(Stories {
            alerted,
            items,
            opposite,
        })
    }

    /// The story's id, from its alert.
    fn id(&self) -> Option<i64> {
        self.alerted.first().and_then(|alert| alert.story)
    }

    /// Distinct feeds among the story's items.
    fn outlets(&self) -> usize {
        let mut feeds: Vec<&str> = self.items.iter().map(|i| i.feed.as_str()).collect();
        feeds.sort_unstable();
        feeds.dedup();
        feeds.len()
    }

    /// The story's items other than the one that alerted.
    fn also_seen(&self) -> impl Iterator<Item = &StorySighting> {
        let alerted = self.alerted.first();
        self.items.iter().filter(move |item| {
            alerted.is_none_or(|alert| item.feed != alert.feed || item.title != alert.title)
        })
    }

    /// What did not behave: the copies not one story of their own, either story not
    /// alerting exactly once, or the opposite event in the copies' story.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.alerted.len() != 1 {
            problems.push(format!(
                "one story from three outlets alerted {} times",
                self.alerted.len()
            ));
        }
        let mut held: Vec<(&str, &str)> = self
            .items
            .iter()
            .map(|i| (i.feed.as_str(), i.title.as_str()))
            .collect();
        held.sort_unstable();
        let mut copies = ONE_STORY.to_vec();
        copies.sort_unstable();
        if held != copies {
            problems.push(format!(
                "the copies from three outlets are not one story: story {} holds {held:?}",
                self.id().map_or("?".to_string(), |id| id.to_string())
            ));
        }
        if self.opposite.len() != 1 {
            problems.push(format!(
                "the opposite event alerted {} times: {}",
                self.opposite.len(),
                OPPOSITE.1
            ));
        }
        if self
            .opposite
            .iter()
            .any(|alert| alert.story.is_none() || alert.story == self.id())
        {
            problems.push(format!(
                "the opposite event is not a story of its own: {}",
                OPPOSITE.1
            ));
        }
        problems
    }
}

impl fmt::Display for Stories<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(out, "\nstories: one event from several outlets alerts once")?;
        let alerts = alert_count(self.alerted.len());
        let title = self
            .alerted
            .first()
            .map_or(ONE_STORY[0].1, |a| a.title.as_str());
        writeln!(
            out,
            "  one story, {} outlets, {alerts}: {title}",
            self.outlets()
        )?;
        if let Some(alert) = self.alerted.first() {
            writeln!(out, "      alerted from {}", alert.feed)?;
        }
        for item in self.also_seen() {
            writeln!(out, "      also seen in {}: \"{}\"", item.feed, item.title)?;
        }
        let why = "each under a link of its own, with an UPDATE 1- prefix and a sentence \
                   added, or an outlet suffix and a word changed, over the same lede: one \
                   story, which alerts a watch-list once";
        writeln!(out, "{}", wrap(why, 6, WIDTH))?;
        let alerts = alert_count(self.opposite.len());
        writeln!(out, "  a story of its own, {alerts}: {}", OPPOSITE.1)?;
        let why = "the same names over the same lede, but the talks end rather than resume: \
                   another event";
        writeln!(out, "{}", wrap(why, 6, WIDTH))
    }
}

/// "1 alert", "2 alerts".
fn alert_count(n: usize) -> String {
    match n {
        1 => "1 alert".to_string(),
        n => format!("{n} alerts"),
    }
}

/// What did not behave as documented.
struct Problems<'a>(&'a [String]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(out, "\nUNEXPECTED:")?;
        for problem in self.0 {
            writeln!(out, "  - {problem}")?;
        }
        Ok(())
    }
}
