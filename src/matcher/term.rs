//! One term as a user writes it (in `terms`, `aliases`, `exclude` or as a query operand):
//! `Iran`, `Iran*`, `"Iran nuclear deal"`, `SCO`, `中国`.
//!
//! Input: the raw string. Output: a [`ParsedTerm`] holding the folded pattern the automaton
//! searches for and the two flags that change how a hit is verified (prefix, acronym), or a
//! lowercase error message saying what is wrong with the term.

use super::normalize::normalize_term;

/// A validated term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedTerm {
    /// Folded form (see `normalize`), never empty, no leading or trailing separator.
    pub pattern: String,
    /// Written with a trailing `*`: no right word-boundary check.
    pub prefix: bool,
    /// Written in capitals only, with two letters or more: the matched text must not contain
    /// lowercase letters (unless the watch-list relaxes acronyms).
    pub acronym: bool,
}

/// Parses one term. The error is a message naming the term, for a `CompileError`.
pub(crate) fn parse_term(raw: &str) -> Result<ParsedTerm, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("empty term".to_owned());
    }
    let mut body = trimmed;
    let mut prefix = false;
    if let Some(rest) = body.strip_suffix('*') {
        prefix = true;
        body = rest;
    }
    if let Some(rest) = body.strip_prefix('"') {
        // A quoted phrase: `"Iran nuclear deal"`, `"Iran nuc*"` or `"Iran nuc"*`.
        let Some(inner) = rest.strip_suffix('"') else {
            return Err(format!("term `{trimmed}`: unterminated quote"));
        };
        body = inner;
        if !prefix && let Some(inner) = body.strip_suffix('*') {
            prefix = true;
            body = inner;
        }
    }
    if body.contains('"') {
        return Err(format!(
            "term `{trimmed}`: unexpected `\"`: quote the whole phrase, like \"Iran nuclear deal\""
        ));
    }
    if body.contains('*') {
        return Err(format!(
            "term `{trimmed}`: `*` is only allowed at the end of a term (prefix match)"
        ));
    }
    let pattern = normalize_term(body);
    if pattern.is_empty() {
        return Err(format!("term `{trimmed}`: has no letters or digits"));
    }
    if prefix && !body.chars().next_back().is_some_and(char::is_alphanumeric) {
        return Err(format!(
            "term `{trimmed}`: `*` must directly follow a letter or digit"
        ));
    }
    Ok(ParsedTerm {
        pattern,
        prefix,
        acronym: is_acronym(body),
    })
}

/// "Written in capitals only, two letters or more": at least two upper-case letters and no
/// lower-case one. Digits and punctuation do not count (`G7` is not an acronym, `U.S.` is).
fn is_acronym(body: &str) -> bool {
    let mut upper = 0usize;
    for c in body.chars() {
        if c.is_lowercase() {
            return false;
        }
        if c.is_uppercase() {
            upper += 1;
        }
    }
    upper >= 2
}

/// The term with surrounding quotes and `*` removed, for comparing how terms are named.
pub(crate) fn bare(raw: &str) -> &str {
    let t = raw.trim();
    let t = t.strip_suffix('*').unwrap_or(t);
    let t = t.strip_prefix('"').unwrap_or(t);
    let t = t.strip_suffix('"').unwrap_or(t);
    t.strip_suffix('*').unwrap_or(t)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn ok(raw: &str) -> ParsedTerm {
        parse_term(raw).unwrap()
    }

    #[test]
    fn parses_plain_prefix_phrase_and_acronym_terms() {
        assert_eq!(
            ok("Iran"),
            ParsedTerm {
                pattern: "iran".into(),
                prefix: false,
                acronym: false
            }
        );
        assert_eq!(
            ok(" Iran* "),
            ParsedTerm {
                pattern: "iran".into(),
                prefix: true,
                acronym: false
            }
        );
        assert_eq!(ok("\"Iran nuclear deal\"").pattern, "iran nuclear deal");
        assert!(ok("\"Iran nuc*\"").prefix);
        assert!(ok("\"Iran nuc\"*").prefix);
        assert!(ok("SCO").acronym);
        assert!(ok("ＳＣＯ").acronym);
        assert!(ok("U.S.").acronym);
        assert!(!ok("G7").acronym);
        assert!(!ok("Sco").acronym);
        assert!(!ok("中国").acronym);
    }

    #[test]
    fn rejects_malformed_terms() {
        assert_eq!(parse_term("  ").unwrap_err(), "empty term");
        assert!(
            parse_term("--")
                .unwrap_err()
                .contains("no letters or digits")
        );
        assert!(
            parse_term("*")
                .unwrap_err()
                .contains("no letters or digits")
        );
        assert!(
            parse_term("Ir*an")
                .unwrap_err()
                .contains("only allowed at the end")
        );
        assert!(
            parse_term("\"Iran deal")
                .unwrap_err()
                .contains("unterminated quote")
        );
        assert!(
            parse_term("Iran \"deal")
                .unwrap_err()
                .contains("unexpected")
        );
        assert!(
            parse_term("Iran -*")
                .unwrap_err()
                .contains("directly follow")
        );
    }

    #[test]
    fn bare_strips_quotes_and_star() {
        assert_eq!(bare("Iran*"), "Iran");
        assert_eq!(bare("\"Iran deal\""), "Iran deal");
        assert_eq!(bare("\"Iran deal*\""), "Iran deal");
    }
}
