//! What a feed URL looks like once it leaves the process (SPEC §15).
//!
//! A feed URL may carry a credential: a user name and password, or a query parameter such
//! as `?token=` or `?api_key=` (private feeds, paid wires, search APIs). Alert payloads,
//! chat messages, the HTTP API, the CLI and the logs all show feed URLs, and none of them
//! may show those values. [`url()`] keeps the URL's shape — scheme, host, path and every
//! query parameter with its name, because a search feed's query *is* its identity — and
//! replaces each credential's value with `REDACTED`. User name and password are dropped.
//!
//! Input: a URL and the feed's own `redact_params` (names beyond [`SENSITIVE_PARAMS`]).
//! Output: the URL to show. The original stays inside the process (the fetcher and the
//! database), where it is needed to fetch the feed.

use percent_encoding::percent_decode_str;
use url::Url;

/// What a credential's value is replaced with.
pub const REDACTED: &str = "REDACTED";

/// Query parameters whose values are credentials in every feed URL, compared without
/// regard to case. A feed's `redact_params` adds its own.
pub const SENSITIVE_PARAMS: &[&str] = &[
    "token",
    "key",
    "api_key",
    "apikey",
    "access_token",
    "auth",
    "auth_token",
    "sig",
    "signature",
    "password",
    "passwd",
    "secret",
    "client_secret",
];

/// `url` without its user name and password and with the value of every sensitive query
/// parameter ([`SENSITIVE_PARAMS`] and `extra`, any case) replaced by `REDACTED`. Every
/// other byte of the query is kept as it was.
pub fn url(url: &Url, extra: &[String]) -> Url {
    let mut shown = url.clone();
    // Only fails for URLs that cannot have credentials (no host): nothing to remove then.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if let Some(query) = url.query() {
        let redacted = query_without_credentials(query, extra);
        if redacted != query {
            shown.set_query(Some(&redacted));
        }
    }
    shown
}

/// The query with each sensitive parameter's value replaced; other pairs untouched.
fn query_without_credentials(query: &str, extra: &[String]) -> String {
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_sensitive(name, extra) => {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_string(),
        })
        .collect();
    pairs.join("&")
}

fn is_sensitive(name: &str, extra: &[String]) -> bool {
    let name = percent_decode_str(name).decode_utf8_lossy();
    let name = name.trim();
    SENSITIVE_PARAMS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .any(|sensitive| sensitive.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str, extra: &[&str]) -> String {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        url(&Url::parse(text).expect("test url"), &extra).to_string()
    }

    #[test]
    fn credentials_in_the_query_and_userinfo_are_redacted_and_the_query_stays() {
        let cases: &[(&str, &[&str], &str)] = &[
            (
                "https://news.example.org/search?q=iran+china&token=s3cr3t",
                &[],
                "https://news.example.org/search?q=iran+china&token=REDACTED",
            ),
            (
                "https://user:pw@news.example.org/rss?Api_Key=abc&lang=fa",
                &[],
                "https://news.example.org/rss?Api_Key=REDACTED&lang=fa",
            ),
            (
                "https://a.example/rss?access_token=1&sig=2&signature=3&password=4&secret=5&auth=6&key=7",
                &[],
                "https://a.example/rss?access_token=REDACTED&sig=REDACTED&signature=REDACTED&password=REDACTED&secret=REDACTED&auth=REDACTED&key=REDACTED",
            ),
            // Percent-encoded names are still names.
            (
                "https://a.example/rss?%74oken=x&q=%D8%A7%DB%8C%D8%B1%D8%A7%D9%86",
                &[],
                "https://a.example/rss?%74oken=REDACTED&q=%D8%A7%DB%8C%D8%B1%D8%A7%D9%86",
            ),
            // A feed's own parameters, in any case; an empty value reveals nothing.
            (
                "https://a.example/rss?subscriber=42&SESSION=abc&token=",
                &["subscriber", "session"],
                "https://a.example/rss?subscriber=REDACTED&SESSION=REDACTED&token=",
            ),
            // Names that merely contain a sensitive word are not credentials.
            (
                "https://a.example/rss?keyword=sanctions&monkey=1",
                &[],
                "https://a.example/rss?keyword=sanctions&monkey=1",
            ),
            ("https://a.example/rss", &[], "https://a.example/rss"),
        ];
        for (given, extra, want) in cases {
            assert_eq!(shown(given, extra), *want, "{given}");
        }
    }

    #[test]
    fn a_url_without_credentials_is_shown_byte_for_byte() {
        let text = "https://a.example/rss?q=a+b&tag=%E4%B8%AD%E5%9B%BD&x";
        assert_eq!(shown(text, &[]), text);
    }
}
