//! A candidate watch-list for `wirewatch backtest --with FILE` (SPEC §12): the
//! `[[watchlists]]` entry of one name in another file, validated exactly as the loader
//! validates the configuration's own (`watchlists`), against the running configuration.
//!
//! Input: the candidate file's text and the watch-list's name. Output: a [`Watchlist`]
//! whose `feeds` selector is resolved against the CURRENT configuration's feeds, or a
//! [`ConfigError`] naming the candidate file, each problem at its line and column. The
//! rest of the file is not read: a whole candidate copy of `wirewatch.toml` and a file
//! holding just the one watch-list both work. Its `webhooks` are left out, as a backtest
//! sends nothing.

use std::path::Path;

use serde::Deserialize as _;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::problems::Problems;
use super::raw::RawWatchlist;
use super::{Config, ConfigError, Declared, Problem, Watchlist, files, watchlists};

impl Config {
    /// The watch-list `name` as the file at `path` defines it (see the module docs).
    pub fn load_candidate(&self, path: &Path, name: &str) -> Result<Watchlist, ConfigError> {
        let unreadable = |why: String| ConfigError {
            path: path.to_path_buf(),
            problems: vec![Problem {
                line: None,
                column: None,
                message: format!("cannot read the candidate file: {why}"),
            }],
        };
        let contents = files::read_limited(path, files::MAX_CONFIG_BYTES).map_err(unreadable)?;
        let source = String::from_utf8(contents.bytes)
            .map_err(|_| unreadable("it is not UTF-8 text".into()))?;
        self.candidate_from_source(path, &source, name)
    }

    /// [`Config::load_candidate`] of `source`, the text of the file at `path`.
    pub fn candidate_from_source(
        &self,
        path: &Path,
        source: &str,
        name: &str,
    ) -> Result<Watchlist, ConfigError> {
        let mut problems = Problems::new(source);
        let refused = |problems: Problems<'_>| ConfigError {
            path: path.to_path_buf(),
            problems: problems.list,
        };
        let Some(entry) = find_entry(source, name, &mut problems) else {
            return Err(refused(problems));
        };
        let mut raw = match RawWatchlist::deserialize(ValueDeserializer::from(entry)) {
            Ok(raw) => raw,
            Err(err) => {
                problems.at(err.span().unwrap_or(0..0), err.message().trim().to_string());
                return Err(refused(problems));
            }
        };
        raw.webhooks.clear();
        // Selectors resolve against the running configuration: its feeds and their tags
        // are what the candidate may name.
        let declared = Declared {
            feeds: self.feeds.iter().map(|feed| feed.name.clone()).collect(),
            tags: self
                .feeds
                .iter()
                .flat_map(|feed| feed.tags.iter().cloned())
                .collect(),
            webhooks: Default::default(),
        };
        let (built, matcher) = watchlists::build_watchlists(
            vec![raw],
            &self.feeds,
            &self.feed_indexes,
            &[],
            &declared,
            &mut problems,
        );
        match built.into_iter().next() {
            Some(watchlist) if matcher.is_some() && problems.list.is_empty() => Ok(watchlist),
            _ => Err(refused(problems)),
        }
    }
}

/// The `[[watchlists]]` entry named `name` (names compared trimmed, as the loader does),
/// or `None` with the problem recorded: the text is not TOML, `watchlists` is not an array
/// of tables, no entry or more than one has that name.
fn find_entry<'i>(
    source: &'i str,
    name: &str,
    problems: &mut Problems<'_>,
) -> Option<toml::Spanned<DeValue<'i>>> {
    let root = match DeTable::parse(source) {
        Ok(root) => root,
        Err(err) => {
            problems.at(err.span().unwrap_or(0..0), err.message().trim().to_string());
            return None;
        }
    };
    let Some(lists) = root.get_ref().get("watchlists") else {
        problems.list.push(Problem {
            line: None,
            column: None,
            message: format!("no watch-list is named `{name}`: the file has no [[watchlists]]"),
        });
        return None;
    };
    let DeValue::Array(entries) = lists.get_ref() else {
        problems.at(
            lists.span(),
            "watchlists must be an array of tables: write each as [[watchlists]]",
        );
        return None;
    };
    let mut found: Option<&toml::Spanned<DeValue<'i>>> = None;
    let mut names = Vec::new();
    for entry in entries.iter() {
        let DeValue::Table(table) = entry.get_ref() else {
            problems.at(
                entry.span(),
                "watchlists must be an array of tables: write each as [[watchlists]]",
            );
            return None;
        };
        let Some(entry_name) = table.get("name").and_then(|n| n.get_ref().as_str()) else {
            continue;
        };
        let entry_name = entry_name.trim();
        if entry_name != name.trim() {
            names.push(entry_name.to_string());
            continue;
        }
        if found.is_some() {
            let span = table.get("name").map_or(entry.span(), toml::Spanned::span);
            problems.at(span, format!("duplicate watch-list name `{entry_name}`"));
            return None;
        }
        found = Some(entry);
    }
    if found.is_none() {
        let listed = if names.is_empty() {
            "it names none".to_string()
        } else {
            format!("it has {}", names.join(", "))
        };
        problems.list.push(Problem {
            line: None,
            column: None,
            message: format!("no watch-list is named `{name}` ({listed})"),
        });
    }
    found.cloned()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::tests::load;

    const CURRENT: &str = r#"
[[feeds]]
name = "wire"
url = "https://wire.example.org/rss"
tags = ["asia"]

[[feeds]]
name = "agency"
url = "https://agency.example.org/rss"

[[webhooks]]
name = "siem"
url = "https://siem.example.org/hook"

[[watchlists]]
name = "iran-china"
terms = ["Iran"]
webhooks = ["siem"]
"#;

    fn candidate(source: &str, name: &str) -> Result<crate::config::Watchlist, Vec<String>> {
        let config = load(CURRENT).unwrap();
        config
            .candidate_from_source(Path::new("/tmp/candidate.toml"), source, name)
            .map_err(|err| {
                err.problems
                    .iter()
                    .map(|p| p.located(&err.path).to_string())
                    .collect()
            })
    }

    #[test]
    fn the_named_entry_is_taken_the_rest_of_the_file_ignored_and_feeds_resolved_against_the_config()
    {
        let source = r#"
[daemon]
listen = "not even checked"

[[feeds]]
name = "elsewhere"
url = "https://elsewhere.example.org/rss"

[[watchlists]]
name = "other"
terms = ["x"]
unknown_key = "not this entry's problem"

[[watchlists]]
name = " iran-china "
terms = ["Iran", "SCO"]
aliases = { SCO = ["Shanghai Cooperation Organisation"] }
query = "Iran OR SCO"
exclude = ["football"]
fields = ["title", "summary"]
feeds = ["tag:asia"]
webhooks = ["a-webhook-this-file-does-not-declare"]
"#;
        let watchlist = candidate(source, "iran-china").unwrap();

        assert_eq!(watchlist.name, "iran-china");
        assert_eq!(watchlist.spec.terms, ["Iran", "SCO"]);
        assert_eq!(watchlist.spec.exclude, ["football"]);
        assert_eq!(watchlist.spec.query.as_deref(), Some("Iran OR SCO"));
        assert_eq!(watchlist.spec.fields.len(), 2);
        assert_eq!(
            watchlist.feeds,
            Some([0].into_iter().collect()),
            "tag:asia is the current config's feed 0"
        );
        assert!(watchlist.webhooks.is_empty());
    }

    #[test]
    fn a_file_with_just_the_watchlist_works() {
        let watchlist = candidate(
            "[[watchlists]]\nname = \"iran-china\"\nterms = [\"China\"]\n",
            "iran-china",
        )
        .unwrap();
        assert_eq!(watchlist.spec.terms, ["China"]);
        assert_eq!(watchlist.feeds, None);
    }

    #[test]
    fn problems_are_placed_in_the_candidate_file_as_check_places_them() {
        let source = "[[watchlists]]\nname = \"iran-china\"\nterms = [\"Iran\"]\nquery = \"Iran AND (\"\nfeeds = [\"elsewhere\"]\nfield = [\"title\"]\n";
        let problems = candidate(source, "iran-china").unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("/tmp/candidate.toml:6:1: unknown field `field`"),
            "{problems:?}"
        );

        let source = "[[watchlists]]\nname = \"iran-china\"\nterms = [\"Iran\"]\nquery = \"Iran AND (\"\nfeeds = [\"elsewhere\"]\n";
        let problems = candidate(source, "iran-china").unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with(
                "/tmp/candidate.toml:5:10: watch-list `iran-china`: no feed is named `elsewhere`"
            ),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("/tmp/candidate.toml:4:"),
            "{problems:?}"
        );
        assert!(problems[1].contains("query"), "{problems:?}");
    }

    #[test]
    fn a_name_the_file_does_not_define_once_is_refused() {
        let two = "[[watchlists]]\nname = \"a\"\nterms = [\"x\"]\n\n[[watchlists]]\nname = \"b\"\nterms = [\"y\"]\n";
        assert_eq!(
            candidate(two, "c").unwrap_err(),
            ["/tmp/candidate.toml: no watch-list is named `c` (it has a, b)"]
        );
        assert_eq!(
            candidate("[daemon]\n", "c").unwrap_err(),
            ["/tmp/candidate.toml: no watch-list is named `c`: the file has no [[watchlists]]"]
        );
        let twice = "[[watchlists]]\nname = \"a\"\nterms = [\"x\"]\n\n[[watchlists]]\nname = \"a\"\nterms = [\"y\"]\n";
        assert_eq!(
            candidate(twice, "a").unwrap_err(),
            ["/tmp/candidate.toml:6:8: duplicate watch-list name `a`"]
        );
        let broken = candidate("[[watchlists]\n", "a").unwrap_err();
        assert!(
            broken[0].starts_with("/tmp/candidate.toml:1:"),
            "{broken:?}"
        );
    }
}
