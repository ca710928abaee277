//! The console's pages as `maud` markup: every value interpolated here is escaped by
//! `maud`, so a feed's title or an error message is text on the page, never markup.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use crate::config::{Config, Watchlist};
use crate::store::{
    DeliveryCounts, DeliveryRow, DisabledWebhook, FeedStatus, StoryRow, WatchlistHit,
};

/// The header's links: path and name.
const SECTIONS: [(&str, &str); 4] = [
    ("/", "Watch-lists"),
    ("/feeds", "Feeds"),
    ("/deliveries", "Deliveries"),
    ("/playground", "Playground"),
];

/// An HTML document: the head (title, viewport, stylesheet, and the console's script when
/// `script`) and `body`.
fn document(title: &str, script: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · wirewatch" }
                link rel="stylesheet" href="/assets/console.css";
                @if script {
                    script src="/assets/console.js" defer {}
                }
            }
            body { (body) }
        }
    }
}

/// What the header shows beside the sections.
#[derive(Debug, Clone, Copy)]
pub struct Chrome {
    /// A token is set: the header offers to sign out.
    pub sign_out: bool,
}

/// A console page around `main`: the header with the sections (`current` marked), a sign
/// out link when a token is set, and a skip link for keyboard users.
fn layout(chrome: Chrome, title: &str, current: &str, script: bool, main: Markup) -> Markup {
    document(
        title,
        script,
        html! {
            a.skip href="#main" { "Skip to content" }
            header {
                span.brand { "wirewatch" }
                nav aria-label="Console" {
                    ul {
                        @for (path, name) in SECTIONS {
                            li {
                                @if path == current {
                                    a href=(path) aria-current="page" { (name) }
                                } @else {
                                    a href=(path) { (name) }
                                }
                            }
                        }
                    }
                }
                @if chrome.sign_out {
                    a.signout href="/logout" { "Sign out" }
                }
            }
            main #main { (main) }
        },
    )
}

/// `at` (Unix seconds) as a `<time>`: `2026-11-30 21:05 UTC`, the exact time in its
/// `datetime`.
fn time(at: i64) -> Markup {
    match DateTime::<Utc>::from_timestamp(at, 0) {
        Some(t) => html! {
            time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
                (t.format("%Y-%m-%d %H:%M UTC"))
            }
        },
        None => html! { "—" },
    }
}

fn maybe_time(at: Option<i64>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { "never" },
    }
}

/// A link from a feed, when it is a web address: anything else (`javascript:`, `data:`) is
/// shown as text, not followed.
fn web_link(url: Option<&str>, text: &str) -> Markup {
    let safe = url
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|parsed| matches!(parsed.scheme(), "http" | "https"));
    match safe {
        Some(url) => html! { a href=(url.as_str()) rel="noopener noreferrer nofollow" { (text) } },
        None => html! { (text) },
    }
}

/// One watch-list's stories, a page of them.
pub struct Listing<'a> {
    pub watchlist: &'a str,
    /// Whether this is the newest page.
    pub first_page: bool,
    /// The cursor of the next, older page, when there is one.
    pub older: Option<String>,
    pub stories: &'a [StoryRow],
    /// The watch-list's match of each story, by story id.
    pub hits: &'a HashMap<i64, WatchlistHit>,
}

pub fn watchlists(chrome: Chrome, names: &[String], listing: Option<Listing<'_>>) -> Markup {
    let chosen = listing.as_ref().map(|l| l.watchlist);
    let main = html! {
        h1 { "Watch-lists" }
        @if names.is_empty() {
            p { "No watch-list is configured. Add a " code { "[[watchlists]]" } " table to the configuration and reload." }
        } @else {
            nav.tabs aria-label="Watch-lists" {
                ul {
                    @for name in names {
                        li {
                            @let href = format!("/?watchlist={}", urlencode(name));
                            @if Some(name.as_str()) == chosen {
                                a href=(href) aria-current="true" { (name) }
                            } @else {
                                a href=(href) { (name) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(listing) = listing {
            (stories(&listing))
        }
    };
    layout(chrome, "Watch-lists", "/", false, main)
}

fn stories(listing: &Listing<'_>) -> Markup {
    let newest = format!("/?watchlist={}", urlencode(listing.watchlist));
    html! {
        section aria-labelledby="stories-heading" {
            h2 #stories-heading { "Stories of " (listing.watchlist) }
            p.note { "Newest activity first." }
            @if listing.stories.is_empty() {
                p.empty { "No story has matched this watch-list yet." }
            } @else {
                div.scroll {
                    table.stories {
                        (head(&["Story", "Seen in", "First seen", "Last seen", "Terms", "Highlight"]))
                        tbody {
                            @for story in listing.stories {
                                (story_row(story, listing.hits))
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if !listing.first_page {
                    a href=(newest) { "← Newest" }
                }
                @if let Some(cursor) = &listing.older {
                    a href=(format!("{newest}&before={}", urlencode(cursor))) rel="next" { "Older →" }
                }
            }
        }
    }
}

/// Sightings listed a story, each its feed's name linking to the item: a story carried by
/// a hundred feeds stays one row.
const SIGHTINGS_SHOWN: usize = 8;

fn story_row(story: &StoryRow, hits: &HashMap<i64, WatchlistHit>) -> Markup {
    let first = story.items.first();
    let hit = story.id.parse::<i64>().ok().and_then(|id| hits.get(&id));
    let shown = story.items.len().min(SIGHTINGS_SHOWN);
    let more = (story.item_count as usize).saturating_sub(shown);
    html! {
        tr.story {
            td.title { (web_link(first.and_then(|i| i.url.as_deref()), &story.title)) }
            td.feeds data-label="Seen in" {
                @for (n, sighting) in story.items.iter().take(shown).enumerate() {
                    @if n > 0 { ", " }
                    span.sighting { (web_link(sighting.url.as_deref(), &sighting.feed)) }
                }
                @if more > 0 {
                    " and " (more) " more"
                }
                @if story.feeds > 1 {
                    br; span.sub { (story.feeds) " feeds" }
                }
            }
            td data-label="First seen" { (time(story.first_seen_at)) }
            td data-label="Last seen" { (time(story.last_seen_at)) }
            td.terms data-label="Terms" {
                @if let Some(hit) = hit {
                    @for term in &hit.terms { span.term { (term) } " " }
                }
            }
            td.snippet data-label="Highlight" {
                @if let Some(hit) = hit {
                    @if let Some(snippet) = &hit.snippet {
                        @if let Some(field) = &hit.field { span.where { (field) } " " }
                        (snippet)
                    }
                }
            }
        }
    }
}

/// Page `page` (from 1) of `feeds`, sorted problems first, `per_page` a page.
pub fn feeds(chrome: Chrome, feeds: &[FeedStatus], page: usize, per_page: usize) -> Markup {
    let disabled = feeds.iter().filter(|f| f.disabled_at.is_some()).count();
    let failing = feeds
        .iter()
        .filter(|f| f.disabled_at.is_none() && f.failure_count > 0)
        .count();
    let pages = feeds.len().div_ceil(per_page).max(1);
    let page = page.min(pages);
    let shown = feeds.iter().skip((page - 1) * per_page).take(per_page);
    let main = html! {
        h1 { "Feeds" }
        p.note {
            (feeds.len()) " feeds: " (disabled) " disabled and " (failing)
            " failing, listed first."
            @if pages > 1 { " Page " (page) " of " (pages) "." }
        }
        div.scroll {
            table.feeds {
                (head(&["Feed", "Health", "Error", "Last success", "Failures", "Items", "Next poll"]))
                tbody {
                    @for feed in shown {
                        @let (health, class) = if feed.disabled_at.is_some() {
                            ("disabled", "bad")
                        } else if feed.failure_count > 0 {
                            ("failing", "warn")
                        } else if feed.last_success_at.is_some() {
                            ("ok", "good")
                        } else {
                            ("not polled yet", "")
                        };
                        tr.feed {
                            th scope="row" {
                                (feed.name)
                                @if let Some(title) = &feed.title { br; span.sub { (title) } }
                                br; span.sub.url { (feed.url) }
                            }
                            td data-label="Health" { span.badge.(class) { (health) } }
                            td.error data-label="Error" {
                                @if feed.disabled_at.is_some() || feed.failure_count > 0 {
                                    @if let Some(class) = &feed.last_error_class { span.where { (class) } " " }
                                }
                                @if let Some(reason) = &feed.disabled_reason {
                                    (reason)
                                } @else if feed.failure_count > 0 {
                                    @if let Some(error) = &feed.last_error { (error) }
                                }
                            }
                            td data-label="Last success" { (maybe_time(feed.last_success_at)) }
                            td data-label="Failures" { (feed.failure_count) }
                            td data-label="Items" { (feed.items) }
                            td data-label="Next poll" {
                                @if feed.disabled_at.is_some() { "—" } @else { (maybe_time(feed.next_due_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    let main = html! {
        (main)
        nav.pager aria-label="Pages" {
            @if page > 1 { a href=(format!("/feeds?page={}", page - 1)) rel="prev" { "← Previous" } }
            @if page < pages { a href=(format!("/feeds?page={}", page + 1)) rel="next" { "Next →" } }
        }
    };
    layout(chrome, "Feeds", "/feeds", false, main)
}

/// What the deliveries page shows.
pub struct Deliveries<'a> {
    /// Each webhook's rows by state; the lists below show the newest of them.
    pub counts: &'a [DeliveryCounts],
    /// Pending, not tried yet.
    pub waiting: &'a [DeliveryRow],
    /// Pending after a failed attempt.
    pub failed: &'a [DeliveryRow],
    pub dead: &'a [DeliveryRow],
    pub disabled: &'a [DisabledWebhook],
}

pub fn deliveries(chrome: Chrome, d: &Deliveries<'_>) -> Markup {
    let main = html! {
        h1 { "Deliveries" }
        p.note {
            "Read only: to send a dead letter again, run "
            code { "wirewatch redeliver ID" } ", or all of them with " code { "wirewatch redeliver --dead" } "."
        }
        section aria-labelledby="webhooks-heading" {
            h2 #webhooks-heading { "Webhooks" }
            @if d.counts.is_empty() {
                p.empty { "Nothing has been queued for a webhook yet." }
            } @else {
                div.scroll {
                    table.webhooks {
                        (head(&["Webhook", "Pending", "Failed, retrying", "Dead", "Delivered"]))
                        tbody {
                            @for c in d.counts {
                                tr.webhook {
                                    th scope="row" { (c.webhook) }
                                    td { (c.pending) }
                                    td { @if c.failed > 0 { span.badge.warn { (c.failed) } } @else { "0" } }
                                    td { @if c.dead > 0 { span.badge.bad { (c.dead) } } @else { "0" } }
                                    td { (c.delivered) }
                                }
                            }
                        }
                    }
                }
            }
            @if !d.disabled.is_empty() {
                h3 { "Disabled webhooks" }
                ul {
                    @for w in d.disabled {
                        li { strong { (w.name) } ", since " (time(w.disabled_at)) ": " (w.reason) }
                    }
                }
            }
        }
        @let total = |state: fn(&DeliveryCounts) -> i64| d.counts.iter().map(state).sum::<i64>();
        (delivery_table("failed-heading", "Failed, to be retried", d.failed, total(|c| c.failed), true))
        (delivery_table("dead-heading", "Dead letters", d.dead, total(|c| c.dead), false))
        (delivery_table("waiting-heading", "Waiting for a first attempt", d.waiting, total(|c| c.pending), true))
    };
    layout(chrome, "Deliveries", "/deliveries", false, main)
}

/// A list of outbox rows under `heading`, `total` of them in all (`rows` are the newest).
fn delivery_table(id: &str, heading: &str, rows: &[DeliveryRow], total: i64, next: bool) -> Markup {
    html! {
        section aria-labelledby=(id) {
            h2 id=(id) { (heading) " (" (total) ")" }
            @if (rows.len() as i64) < total {
                p.note { "The newest " (rows.len()) " of " (total) "." }
            }
            @if rows.is_empty() {
                p.empty { "None." }
            } @else {
                div.scroll {
                    table.deliveries {
                        @let columns: Vec<&str> = ["Alert", "Webhook", "Watch-list", "Attempts", "Last answer", "Queued", "Next attempt", "ID"]
                            .into_iter()
                            .filter(|c| next || *c != "Next attempt")
                            .collect();
                        (head(&columns))
                        tbody {
                            @for row in rows {
                                tr.delivery {
                                    td { (row.title) }
                                    td { (row.webhook) }
                                    td { (row.watchlist) }
                                    td { (row.attempts) }
                                    td.error {
                                        @if let Some(error) = &row.last_error {
                                            (error)
                                        } @else if let Some(status) = row.last_status {
                                            "HTTP " (status)
                                        }
                                    }
                                    td { (time(row.created_at)) }
                                    @if next { td { (time(row.next_attempt_at)) } }
                                    td { code { (row.id) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The playground: a form the script turns into backtests. Each configured watch-list is
/// an option whose `data-*` attributes carry its definition, for the script to fill the
/// form with.
pub fn playground(chrome: Chrome, config: &Config) -> Markup {
    let configured = &config.watchlists;
    let main = html! {
        h1 { "Watch-list playground" }
        p.note {
            "Try a definition against the items stored in the last days: what it would have "
            "alerted on, what each term hit, and how it differs from a configured watch-list. "
            "Nothing is saved and nothing is sent; copy the TOML into the configuration to keep it."
        }
        noscript {
            p.warn { "The playground runs in JavaScript. The other pages work without it." }
        }
        div.playground {
        form #playground action="/playground" method="get" {
            div.field {
                label for="compare" { "Start from" }
                select #compare name="compare" {
                    option value="" { "A new watch-list" }
                    @for w in configured {
                        option value=(w.name)
                            data-terms=(json(&w.spec.terms))
                            data-aliases=(json(&w.spec.aliases.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()))
                            data-query=(w.spec.query.clone().unwrap_or_default())
                            data-exclude=(json(&w.spec.exclude))
                            data-fields=(json(&w.spec.fields.iter().map(|f| f.as_str()).collect::<Vec<_>>()))
                            data-languages=(json(&w.languages))
                            data-acronyms-exact=(w.spec.acronyms_exact)
                            data-webhooks=(json(&webhook_names(config, w)))
                            { (w.name) }
                    }
                }
                p.hint { "A configured watch-list fills the form, and the results show what your edits add and remove." }
            }
            div.field {
                label for="name" { "Name" }
                input #name name="name" type="text" value="playground" autocomplete="off" required;
            }
            div.field {
                label for="terms" { "Terms, one a line" }
                textarea #terms name="terms" rows="4" spellcheck="false" {}
            }
            div.field {
                label for="aliases" { "Aliases, one term a line: " code { "SCO = Shanghai Cooperation Organisation, ШОС" } }
                textarea #aliases name="aliases" rows="3" spellcheck="false" {}
            }
            div.field {
                label for="query" { "Query (optional): " code { "Iran AND (JCPOA OR sanctions)" } }
                input #query name="query" type="text" autocomplete="off" spellcheck="false";
            }
            div.field {
                label for="exclude" { "Exclude, one a line" }
                textarea #exclude name="exclude" rows="2" spellcheck="false" {}
            }
            fieldset.field {
                legend { "Fields searched (none ticked: all)" }
                @for field in ["title", "summary", "content", "categories", "article"] {
                    label.check {
                        input type="checkbox" name="fields" value=(field);
                        " " (field)
                    }
                }
            }
            div.field {
                label.check {
                    input #acronyms_exact name="acronyms_exact" type="checkbox" checked;
                    " Acronyms match only in capitals (SCO is not “Sco”)"
                }
            }
            div.field {
                label for="languages" { "Languages (optional, ISO 639-1): " code { "en, fa, zh" } }
                input #languages name="languages" type="text" autocomplete="off" spellcheck="false";
            }
            div.field {
                label for="since" { "Period" }
                select #since name="since" {
                    option value="1d" { "the last day" }
                    option value="7d" selected { "the last 7 days" }
                    option value="30d" { "the last 30 days" }
                }
            }
            button type="submit" { "Run" }
        }
        div {
        section #results aria-labelledby="results-heading" {
            h2 #results-heading { "Results" }
            p #status.note role="status" { "Type a term to see what it would have alerted on." }
            div #output {}
        }
        section aria-labelledby="toml-heading" {
            h2 #toml-heading { "TOML" }
            label for="toml" { "The watch-list as configuration" }
            textarea #toml rows="8" readonly spellcheck="false" {}
            button #copy type="button" { "Copy TOML" }
            span #copied role="status" {}
        }
        }
        }
    };
    layout(chrome, "Playground", "/playground", true, main)
}

/// The names of a watch-list's webhooks.
fn webhook_names(config: &Config, watchlist: &Watchlist) -> Vec<String> {
    watchlist
        .webhooks
        .iter()
        .filter_map(|&i| config.webhooks.get(i).map(|w| w.name.clone()))
        .collect()
}

/// A table's head: one row of column headers.
fn head(columns: &[&str]) -> Markup {
    html! {
        thead {
            tr {
                @for column in columns { th scope="col" { (column) } }
            }
        }
    }
}

/// A value as JSON, for a `data-*` attribute (where `maud` escapes it).
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// The login form, `invalid` when a wrong token was just given.
pub fn login(invalid: bool) -> Markup {
    document(
        "Sign in",
        false,
        html! {
            main #main.narrow {
                h1 { "wirewatch console" }
                p { "This daemon asks for its API token (" code { "daemon.api_token_file" } " or " code { "api_token_env" } ")." }
                @if invalid {
                    p.warn role="alert" { "That token is not valid." }
                }
                form action="/login" method="post" {
                    div.field {
                        label for="token" { "API token" }
                        input #token name="token" type="password" autocomplete="current-password" required autofocus;
                    }
                    button type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// The page for a store that cannot be read right now.
pub fn unavailable(chrome: Chrome, why: &str) -> Markup {
    layout(
        chrome,
        "Unavailable",
        "",
        false,
        html! {
            h1 { "The database cannot be read right now" }
            p.warn { (why) }
            p { "The daemon retries by itself; reload this page in a few seconds." }
        },
    )
}

/// `text` for a query string's value.
fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StorySighting;

    fn feed(name: &str, failures: i64) -> FeedStatus {
        FeedStatus {
            name: name.into(),
            url: format!("https://{name}.example/rss"),
            title: None,
            last_fetch_at: None,
            last_success_at: Some(0),
            next_due_at: None,
            failure_count: failures,
            last_error: None,
            last_error_class: None,
            last_error_at: None,
            disabled_at: None,
            disabled_reason: None,
            moved_to: None,
            items: 0,
            lease_node: None,
            lease_until: None,
        }
    }

    #[test]
    fn the_feeds_page_shows_one_page_of_rows_and_links_to_the_others() {
        let all: Vec<FeedStatus> = (0..5).map(|i| feed(&format!("f{i}"), 0)).collect();
        let rows = |page: &str| page.matches("<tr class=\"feed\">").count();
        let chrome = Chrome { sign_out: true };
        let first = feeds(chrome, &all, 1, 2).into_string();
        assert!(
            first.contains(r#"href="/logout""#),
            "a token is set: sign out"
        );
        assert_eq!(rows(&first), 2);
        assert!(first.contains("Page 1 of 3") && first.contains("/feeds?page=2"));
        assert!(!first.contains("← Previous"));
        let last = feeds(chrome, &all, 9, 2).into_string();
        assert_eq!(rows(&last), 1, "a page past the end shows the last");
        assert!(last.contains("f4") && !last.contains("Next →"));
    }

    #[test]
    fn feed_supplied_text_is_escaped_and_only_web_links_are_followed() {
        let hostile = r#"<script>alert(1)</script>"><img src=x onerror=alert(2)>"#;
        let story = StoryRow {
            id: "7".into(),
            title: hostile.into(),
            first_seen_at: 0,
            last_seen_at: 0,
            feeds: 1,
            watchlists: vec!["w".into()],
            items: vec![StorySighting {
                feed: "wire".into(),
                title: hostile.into(),
                url: Some("javascript:alert(3)".into()),
                seen_at: 0,
            }],
            item_count: 1,
        };
        let mut hits = HashMap::new();
        hits.insert(
            7,
            WatchlistHit {
                terms: vec!["Iran".into()],
                field: Some("title".into()),
                snippet: Some(hostile.into()),
            },
        );
        let page = watchlists(
            Chrome { sign_out: false },
            &["w".into()],
            Some(Listing {
                watchlist: "w",
                first_page: true,
                older: Some("5-7".into()),
                stories: &[story],
                hits: &hits,
            }),
        )
        .into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("javascript:"), "{page}");
        assert!(
            page.contains(r#"<span class="sighting">wire</span>"#),
            "a sighting without a web link is its feed's name: {page}"
        );
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img"));
        assert!(
            page.contains(r#"<a href="/?watchlist=w&amp;before=5-7" rel="next">"#),
            "the older page's link: {page}"
        );
        assert!(
            !page.contains("← Newest"),
            "the first page links to no newer one"
        );
    }
}
