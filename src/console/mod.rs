//! The console (SPEC §16): a small read-only web console for analysts on the daemon's
//! listener, beside the API.
//!
//! Pages, linked from a header on each: `/` the watch-lists and their recent stories
//! (paged), `/feeds` feed health (disabled and failing feeds first), `/deliveries` the
//! outbox per webhook (pending, failed, dead; re-sending stays `wirewatch redeliver`),
//! and `/playground`, a form whose definition runs as a §12 backtest
//! (`POST /api/v1/backtest`) as the analyst types, with the TOML to copy. The console
//! writes nothing: the configuration file stays the one source of truth.
//!
//! Built for safety and for no build step: the HTML is rendered on the server by `maud`,
//! which escapes every value it is given (feed titles, snippets and error messages are
//! all feed- or network-supplied); links from feeds keep only `http`/`https` addresses;
//! the CSS and the one script are compiled into the binary and served from `/assets/`,
//! under a `Content-Security-Policy` that allows no other source, no inline script and no
//! framing. The read-only pages need no JavaScript; the script only drives the playground.
//!
//! With `daemon.api_token_file` (or `api_token_env`) set, the pages ask for the token like
//! the API does (`server::require_token`): a browser, which cannot send a bearer token by
//! itself, gets a form at `/login` that sets a session cookie (`HttpOnly`,
//! `SameSite=Strict`, [`SESSION_LIFETIME`]) holding an HMAC of the token and the session's
//! end, never the token itself; `/logout` clears it.

mod pages;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::server::App;
use crate::store::{DeliveryFilter, FeedStatus, StoryQuery};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "wirewatch_session";

/// Paths anyone may load with a token set: the sign-in form, the stylesheet it uses, and
/// signing out. The script is for the playground, behind the token like every other page.
pub const OPEN_PATHS: [&str; 3] = ["/login", "/logout", "/assets/console.css"];

/// How long a console session lasts: a working day.
pub const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// Stories on one page of a watch-list.
const STORIES_PER_PAGE: i64 = 25;

/// Feeds on one page of `/feeds`.
const FEEDS_PER_PAGE: usize = 200;

/// Rows of each delivery list on the deliveries page.
const DELIVERIES_SHOWN: i64 = 50;

const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// The console's routes, for the server's router (which puts the token check in front).
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/", get(watchlists))
        .route("/feeds", get(feeds))
        .route("/deliveries", get(deliveries))
        .route("/playground", get(playground))
        .route("/login", get(login_form).post(login))
        .route("/logout", get(logout))
        .route(
            "/assets/console.css",
            get(|| asset(CSS, "text/css; charset=utf-8")),
        )
        .route(
            "/assets/console.js",
            get(|| asset(JS, "text/javascript; charset=utf-8")),
        )
}

/// The sign-in page, as the answer to a page request that lacks the token (or a valid
/// session): 401, with the form to give it; `invalid` when a wrong token was just given.
pub fn login_required(invalid: bool) -> Response {
    page(StatusCode::UNAUTHORIZED, pages::login(invalid))
}

/// A rendered page with the console's security headers; pages are never cached, as what
/// they show changes with every poll.
fn page(status: StatusCode, markup: maud::Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; \
             img-src 'none'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page of the console from a store read that may fail: the failure is a 503 page
/// saying why (a locked or full database), never a panic.
fn page_or_unavailable(
    chrome: pages::Chrome,
    result: Result<maud::Markup, crate::store::StoreError>,
) -> Response {
    match result {
        Ok(markup) => page(StatusCode::OK, markup),
        Err(err) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::unavailable(chrome, &crate::telemetry::error_chain(&err)),
        ),
    }
}

/// The header's extras for `config`.
fn chrome(config: &crate::config::Config) -> pages::Chrome {
    pages::Chrome {
        sign_out: config.daemon.api_token.is_some(),
    }
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct WatchlistParams {
    watchlist: Option<String>,
    /// The page's cursor, `LAST_SEEN-ID` of the last story of the page before it: pages
    /// stay put while new stories arrive on top.
    before: Option<String>,
}

/// `LAST_SEEN-ID` as the store's cursor; `None` for anything else (the first page).
fn cursor(text: &str) -> Option<(i64, i64)> {
    let (at, id) = text.split_once('-')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

/// `/`: the configured watch-lists, and the chosen one's stories (the first configured
/// one's by default), newest activity first, a page at a time.
async fn watchlists(State(app): State<App>, Query(params): Query<WatchlistParams>) -> Response {
    let config = app.config.borrow().clone();
    let names: Vec<String> = config.watchlists.iter().map(|w| w.name.clone()).collect();
    let chosen = params
        .watchlist
        .filter(|name| names.contains(name))
        .or_else(|| names.first().cloned());
    let before = params.before.as_deref().and_then(cursor);
    let Some(chosen) = chosen else {
        return page(
            StatusCode::OK,
            pages::watchlists(chrome(&config), &names, None),
        );
    };
    let listing = async {
        // One more than a page: whether there is an older page.
        let mut stories = app
            .store
            .stories(&StoryQuery {
                watchlist: Some(chosen.clone()),
                since: None,
                limit: STORIES_PER_PAGE + 1,
                before,
            })
            .await?;
        let more = stories.len() > STORIES_PER_PAGE as usize;
        stories.truncate(STORIES_PER_PAGE as usize);
        let older = stories
            .last()
            .filter(|_| more)
            .map(|last| format!("{}-{}", last.last_seen_at, last.id));
        let ids: Vec<i64> = stories.iter().filter_map(|s| s.id.parse().ok()).collect();
        let hits = app.store.story_matches(&chosen, &ids).await?;
        Ok(pages::watchlists(
            chrome(&config),
            &names,
            Some(pages::Listing {
                watchlist: &chosen,
                first_page: before.is_none(),
                older,
                stories: &stories,
                hits: &hits,
            }),
        ))
    };
    page_or_unavailable(chrome(&config), listing.await)
}

#[derive(Debug, Deserialize)]
struct FeedParams {
    /// From 1.
    page: Option<usize>,
}

/// `/feeds`: every configured feed, disabled and failing ones first, [`FEEDS_PER_PAGE`] a
/// page (a newsroom follows tens of thousands).
async fn feeds(State(app): State<App>, Query(params): Query<FeedParams>) -> Response {
    let config = app.config.borrow().clone();
    let statuses = app.store.configured_feeds(&config).await;
    let page_number = params.page.unwrap_or(1).max(1);
    let rank = |feed: &FeedStatus| match (feed.disabled_at, feed.failure_count) {
        (Some(_), _) => 0,
        (None, 1..) => 1,
        (None, _) => 2,
    };
    page_or_unavailable(
        chrome(&config),
        statuses.map(|mut feeds| {
            feeds.sort_by(|a, b| {
                (rank(a), b.failure_count)
                    .cmp(&(rank(b), a.failure_count))
                    .then_with(|| a.name.cmp(&b.name))
            });
            pages::feeds(chrome(&config), &feeds, page_number, FEEDS_PER_PAGE)
        }),
    )
}

/// `/deliveries`: each webhook's outbox by state, and the rows that need a look.
async fn deliveries(State(app): State<App>) -> Response {
    let chrome = chrome(&app.config.borrow());
    let read = async {
        let counts = app.store.delivery_counts().await?;
        let failed = app
            .store
            .deliveries(Some(DeliveryFilter::Failed), DELIVERIES_SHOWN)
            .await?;
        let dead = app
            .store
            .deliveries(Some(DeliveryFilter::Dead), DELIVERIES_SHOWN)
            .await?;
        let waiting = app
            .store
            .deliveries(Some(DeliveryFilter::Waiting), DELIVERIES_SHOWN)
            .await?;
        let disabled = app.store.disabled_webhooks().await?;
        Ok(pages::deliveries(
            chrome,
            &pages::Deliveries {
                counts: &counts,
                waiting: &waiting,
                failed: &failed,
                dead: &dead,
                disabled: &disabled,
            },
        ))
    };
    page_or_unavailable(chrome, read.await)
}

/// `/playground`: the form; the script runs the backtests.
async fn playground(State(app): State<App>) -> Response {
    let config = app.config.borrow().clone();
    page(StatusCode::OK, pages::playground(chrome(&config), &config))
}

async fn login_form(State(app): State<App>) -> Response {
    if app.config.borrow().daemon.api_token.is_none() {
        return Redirect::to("/").into_response();
    }
    page(StatusCode::OK, pages::login(false))
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// Checks the token given in the form and, when it is right, sets the session cookie.
async fn login(State(app): State<App>, Form(form): Form<LoginForm>) -> Response {
    let config = app.config.borrow().clone();
    let Some(token) = config.daemon.api_token.as_ref() else {
        return Redirect::to("/").into_response();
    };
    // No delay on a wrong token: a sleep per request would not slow guesses sent in
    // parallel, and a token of `openssl rand -hex 32` is beyond guessing either way.
    if !token.verify(form.token.trim()) {
        return login_required(true);
    }
    let lifetime = SESSION_LIFETIME.as_secs();
    let expires = crate::clock::unix().saturating_add_unsigned(lifetime);
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; Max-Age={lifetime}; HttpOnly; SameSite=Strict",
        token.session(expires)
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Ends the browser's session: the cookie is cleared, and the sign-in form follows.
async fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    let clear = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The session cookie's value in a `Cookie` header, if there is one.
pub fn session_cookie(cookies: &str) -> Option<&str> {
    cookies.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == SESSION_COOKIE).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_cursor_is_the_last_seen_time_and_id_of_the_story_before() {
        assert_eq!(cursor("1764540000-42"), Some((1764540000, 42)));
        for text in ["", "42", "x-1", "1-", "-1-2"] {
            assert_eq!(cursor(text), None, "{text}");
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(
            session_cookie("theme=dark; wirewatch_session=abc-_1; lang=en"),
            Some("abc-_1")
        );
        assert_eq!(session_cookie("wirewatch_session_old=x"), None);
        assert_eq!(session_cookie(""), None);
    }
}
