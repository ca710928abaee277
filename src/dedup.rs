//! De-duplication keys: what makes two sightings of an item the same item (SPEC §4).
//!
//! Input: a parsed [`Item`] or a link. Output: strings meant for unique constraints.
//! [`canonical_link`] writes a URL the way every copy of the same link should read (host
//! case, default port, fragment and tracking parameters do not count); [`item_key`] names
//! an item within its feed by the document's guid, else its canonical link, else a hash of
//! its title, date and summary, so a re-published or re-ordered item keeps its key. The
//! caller scopes item keys to a feed; the canonical link is what identifies a story across
//! feeds.

use sha2::{Digest, Sha256};
use url::Url;

use crate::parse::Item;

/// Query parameters that only track the reader (compared ASCII case-insensitively).
/// Every `utm_*` parameter is tracking too.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "twclid",
    "ttclid",
    "li_fat_id",
    "igshid",
    "igsh",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "__hstc",
    "__hssc",
    "__hsfp",
    "hsctatracking",
    "mkt_tok",
    "oly_anon_id",
    "oly_enc_id",
    "vero_id",
    "vero_conv",
    "rb_clickid",
    "s_cid",
    "wt.mc_id",
    "_openstat",
    "ocid",
    "cmpid",
    "ref",
    "ref_src",
    "ref_url",
    "_ga",
    "_gl",
];

/// The canonical form of a link: scheme and host lower-cased, default port dropped,
/// fragment dropped, tracking parameters (`utm_*`, `fbclid`, `gclid`, `ref`, ... see
/// `TRACKING_PARAMS`) removed, the remaining parameters kept in their order, no `?` left
/// behind an empty query, percent-escapes written in upper case. The path, trailing slash
/// included, is kept as it is.
pub fn canonical_link(url: &Url) -> String {
    let mut url = url.clone();
    url.set_fragment(None);
    // `Url` lower-cases the host of http(s) URLs itself; other schemes keep their case.
    if let Some(host) = url.host_str()
        && host.bytes().any(|b| b.is_ascii_uppercase())
    {
        let lower = host.to_ascii_lowercase();
        let _ = url.set_host(Some(&lower));
    }
    if let Some(query) = url.query() {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| !pair.is_empty() && !is_tracking(pair.split('=').next().unwrap_or("")))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            let joined = kept.join("&");
            if joined != query {
                url.set_query(Some(&joined));
            }
        }
    }
    upper_case_escapes(url.as_str())
}

/// The identity of an item within its feed: `guid:<guid>`, else `link:<canonical link>`,
/// else `hash:<hex SHA-256 of title, published and summary>`.
pub fn item_key(item: &Item) -> String {
    if let Some(guid) = item
        .guid
        .as_deref()
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        return format!("guid:{guid}");
    }
    if let Some(link) = &item.link {
        return format!("link:{}", canonical_link(link));
    }
    let mut hasher = Sha256::new();
    // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    let published = item
        .published
        .map(|p| p.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default();
    for field in [
        item.title.as_str(),
        published.as_str(),
        item.summary.as_str(),
    ] {
        hasher.update((field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    format!("hash:{:x}", hasher.finalize())
}

fn is_tracking(raw_name: &str) -> bool {
    let name = percent_encoding::percent_decode_str(raw_name)
        .decode_utf8_lossy()
        .to_ascii_lowercase();
    name.starts_with("utm_") || TRACKING_PARAMS.contains(&name.as_str())
}

/// `%2f` and `%2F` mean the same byte; write the upper-case form (RFC 3986 §6.2.2.1).
fn upper_case_escapes(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i + 2 < b.len() {
        if b[i] == b'%'
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
            && (b[i + 1].is_ascii_lowercase() || b[i + 2].is_ascii_lowercase())
        {
            out.push_str(&s[copied..i]);
            out.push('%');
            out.push(char::from(b[i + 1].to_ascii_uppercase()));
            out.push(char::from(b[i + 2].to_ascii_uppercase()));
            i += 3;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test url")
    }

    #[test]
    fn canonical_link_table() {
        let cases: &[(&str, &str)] = &[
            ("https://Example.COM/Path/To", "https://example.com/Path/To"),
            ("HTTP://example.com:80/a", "http://example.com/a"),
            ("https://example.com:443/a", "https://example.com/a"),
            ("https://example.com:8443/a", "https://example.com:8443/a"),
            ("https://example.com/a#section-2", "https://example.com/a"),
            ("https://example.com/a#", "https://example.com/a"),
            (
                "https://example.com/a?utm_source=rss&utm_medium=feed",
                "https://example.com/a",
            ),
            (
                "https://example.com/a?id=1&utm_campaign=z&page=2",
                "https://example.com/a?id=1&page=2",
            ),
            (
                "https://example.com/a?fbclid=1&gclid=2&ref=rss&id=3",
                "https://example.com/a?id=3",
            ),
            (
                "https://example.com/a?mc_cid=1&mc_eid=2&&x=",
                "https://example.com/a?x=",
            ),
            (
                "https://example.com/a?UTM_Source=x&q=1",
                "https://example.com/a?q=1",
            ),
            (
                "https://example.com/a?utm%5Fsource=x",
                "https://example.com/a",
            ),
            ("https://example.com/a?", "https://example.com/a"),
            ("https://example.com/a/", "https://example.com/a/"),
            (
                "https://example.com/a?b=2&a=1",
                "https://example.com/a?b=2&a=1",
            ),
            (
                "https://example.com/a?reference=1&refresh=2",
                "https://example.com/a?reference=1&refresh=2",
            ),
            ("https://example.com", "https://example.com/"),
            (
                "https://example.com/%7euser/a%2fb?q=%c3%a9",
                "https://example.com/%7Euser/a%2Fb?q=%C3%A9",
            ),
            (
                "https://example.com/a?ocid=x&igshid=y&_hsenc=z&_hsmi=w&yclid=v&msclkid=u",
                "https://example.com/a",
            ),
            (
                "https://bücher.example/a",
                "https://xn--bcher-kva.example/a",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                canonical_link(&url(input)),
                *expected,
                "canonical_link({input})"
            );
        }
    }

    #[test]
    fn links_differing_only_by_tracking_fragment_or_host_case_are_equal() {
        let variants = [
            "https://news.example.org/world/story-1?id=9",
            "https://NEWS.Example.org/world/story-1?id=9#comments",
            "https://news.example.org:443/world/story-1?utm_source=twitter&id=9&fbclid=abc",
            "https://news.example.org/world/story-1?id=9&ref=rss",
        ];
        let canonical: Vec<String> = variants.iter().map(|v| canonical_link(&url(v))).collect();
        assert!(
            canonical.iter().all(|c| c == &canonical[0]),
            "{canonical:?}"
        );
        // The path is never guessed at: a trailing slash is another resource.
        assert_ne!(
            canonical_link(&url("https://news.example.org/world/")),
            canonical_link(&url("https://news.example.org/world"))
        );
    }

    fn item(title: &str) -> Item {
        Item {
            title: title.into(),
            summary: "summary".into(),
            published: Utc.with_ymd_and_hms(2025, 6, 10, 8, 30, 0).single(),
            ..Item::default()
        }
    }

    #[test]
    fn item_key_prefers_guid_then_link_then_hash() {
        let mut it = item("t");
        it.guid = Some("urn:x:1".into());
        it.link = Some(url("https://Example.com/a?utm_source=x"));
        assert_eq!(item_key(&it), "guid:urn:x:1");
        it.guid = Some("   ".into());
        assert_eq!(item_key(&it), "link:https://example.com/a");
        it.guid = None;
        assert_eq!(item_key(&it), "link:https://example.com/a");
        it.link = None;
        let key = item_key(&it);
        assert!(key.starts_with("hash:") && key.len() == 69, "{key}");
        assert!(
            key[5..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn hash_key_is_stable_and_depends_on_title_date_and_summary() {
        let base = item_key(&item("Iran and China"));
        assert_eq!(base, item_key(&item("Iran and China")));
        assert_ne!(base, item_key(&item("Iran and China, updated")));
        let mut redated = item("Iran and China");
        redated.published = None;
        assert_ne!(base, item_key(&redated));
        let mut resummarized = item("Iran and China");
        resummarized.summary = "other".into();
        assert_ne!(base, item_key(&resummarized));
        // Field boundaries matter: moving text between fields changes the key.
        let mut a = item("ab");
        a.summary = "c".into();
        let mut b = item("a");
        b.summary = "bc".into();
        assert_ne!(item_key(&a), item_key(&b));
        // Content, authors and categories are not part of the identity.
        let mut edited = item("Iran and China");
        edited.content = "new body".into();
        edited.categories = vec!["World".into()];
        assert_eq!(base, item_key(&edited));
    }
}
