//! The watch-list query language: `(Iran OR JCPOA) AND (China OR SCO)`.
//!
//! Input: the query string. Output: a [`ParsedQuery`], an expression tree whose leaves index a
//! list of [`Operand`]s (each a word or `"phrase"` with its byte offset and parsed term), or
//! every error found, each with the byte offset the user should look at.
//!
//! Grammar (operators are upper-case only, so `and` is an ordinary word):
//!
//! ```text
//! or   := and ("OR" and)*
//! and  := not ("AND"? not)*        adjacent operands mean AND
//! not  := "NOT" not | atom
//! atom := "(" or ")" | word | "\"" phrase "\"" ["*"]
//! ```
//!
//! Naming terms and turning operands into automaton patterns is the compiler's job; this
//! module only knows the syntax.

use super::term::{ParsedTerm, parse_term};

/// Deepest nesting of parentheses and `NOT`s accepted; evaluation recurses, and a hostile or
/// broken config must not overflow the stack.
const MAX_DEPTH: usize = 64;

/// A boolean expression over operand (later: slot) indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Leaf(u32),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    /// Evaluates with `hit(leaf)` telling whether a leaf's term hit.
    pub(crate) fn eval(&self, hit: &dyn Fn(u32) -> bool) -> bool {
        match self {
            Expr::Leaf(i) => hit(*i),
            Expr::Not(e) => !e.eval(hit),
            Expr::And(es) => es.iter().all(|e| e.eval(hit)),
            Expr::Or(es) => es.iter().any(|e| e.eval(hit)),
        }
    }

    /// Rewrites every leaf through `f`.
    pub(crate) fn map_leaves(&mut self, f: &dyn Fn(u32) -> u32) {
        match self {
            Expr::Leaf(i) => *i = f(*i),
            Expr::Not(e) => e.map_leaves(f),
            Expr::And(es) | Expr::Or(es) => es.iter_mut().for_each(|e| e.map_leaves(f)),
        }
    }

    /// Calls `f(leaf, positive)` for every leaf, `positive` being false under an odd number of
    /// `NOT`s. A leaf seen only negatively is a veto, not something to report as a hit.
    pub(crate) fn visit_polarity(&self, positive: bool, f: &mut dyn FnMut(u32, bool)) {
        match self {
            Expr::Leaf(i) => f(*i, positive),
            Expr::Not(e) => e.visit_polarity(!positive, f),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.visit_polarity(positive, f)),
        }
    }
}

/// A word or phrase of the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operand {
    /// As written in the query, quotes and `*` included.
    pub text: String,
    /// Byte offset of `text` in the query.
    pub offset: usize,
    pub term: ParsedTerm,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedQuery {
    pub expr: Expr,
    pub operands: Vec<Operand>,
}

/// A query error: byte offset and message.
pub(crate) type QueryError = (usize, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// Index into the operand list.
    Operand(u32),
}

impl Tok {
    fn starts_operand(self) -> bool {
        matches!(self, Tok::LParen | Tok::Not | Tok::Operand(_))
    }

    fn describe(self) -> &'static str {
        match self {
            Tok::LParen => "`(`",
            Tok::RParen => "`)`",
            Tok::And => "`AND`",
            Tok::Or => "`OR`",
            Tok::Not => "`NOT`",
            Tok::Operand(_) => "a term",
        }
    }
}

/// Parses a query, returning every error found: all bad operands, plus the first structural
/// error (after which the structure is unknown).
pub(crate) fn parse_query(query: &str) -> Result<ParsedQuery, Vec<QueryError>> {
    let mut errors = Vec::new();
    let (tokens, operands) = match tokenize(query, &mut errors) {
        Some(t) => t,
        None => return Err(errors),
    };
    if tokens.is_empty() {
        errors.push((0, "empty query".to_owned()));
        return Err(errors);
    }
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        end: query.len(),
    };
    let parsed = parser.parse_or(0).and_then(|expr| match parser.peek() {
        None => Ok(expr),
        Some((Tok::RParen, at)) => Err((at, "unmatched `)`".to_owned())),
        Some((tok, at)) => Err((at, format!("unexpected {}", tok.describe()))),
    });
    let expr = match parsed {
        Ok(expr) => expr,
        Err(e) => {
            errors.push(e);
            return Err(errors);
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    // No operand failed, so dropping the `Option`s keeps every leaf index valid.
    let operands: Vec<Operand> = operands.into_iter().flatten().collect();
    Ok(ParsedQuery { expr, operands })
}

/// Splits the query into tokens with their offsets. Operands that fail to parse as terms are
/// reported and kept as `None` so the structure can still be checked. `None` when the query
/// cannot be tokenized at all (unterminated quote).
#[allow(clippy::type_complexity)]
fn tokenize(
    query: &str,
    errors: &mut Vec<QueryError>,
) -> Option<(Vec<(Tok, usize)>, Vec<Option<Operand>>)> {
    let mut tokens = Vec::new();
    let mut operands: Vec<Option<Operand>> = Vec::new();
    let mut chars = query.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let tok = match c {
            '(' => {
                chars.next();
                Tok::LParen
            }
            ')' => {
                chars.next();
                Tok::RParen
            }
            '"' => {
                chars.next();
                let Some(close) = query
                    .get(at + 1..)
                    .and_then(|rest| rest.find('"'))
                    .map(|i| at + 1 + i)
                else {
                    errors.push((at, "unterminated quote".to_owned()));
                    return None;
                };
                let mut end = close + 1;
                while chars.peek().is_some_and(|&(i, _)| i < end) {
                    chars.next();
                }
                if let Some(&(_, '*')) = chars.peek() {
                    chars.next();
                    end += 1;
                }
                push_operand(query, at, end, &mut operands, errors)
            }
            _ => {
                let mut end = at;
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '"') {
                        break;
                    }
                    end = i + c.len_utf8();
                    chars.next();
                }
                match query.get(at..end) {
                    Some("AND") => Tok::And,
                    Some("OR") => Tok::Or,
                    Some("NOT") => Tok::Not,
                    _ => push_operand(query, at, end, &mut operands, errors),
                }
            }
        };
        tokens.push((tok, at));
    }
    Some((tokens, operands))
}

fn push_operand(
    query: &str,
    start: usize,
    end: usize,
    operands: &mut Vec<Option<Operand>>,
    errors: &mut Vec<QueryError>,
) -> Tok {
    let text = query.get(start..end).unwrap_or_default();
    let index = u32::try_from(operands.len()).unwrap_or(u32::MAX);
    match parse_term(text) {
        Ok(term) => operands.push(Some(Operand {
            text: text.to_owned(),
            offset: start,
            term,
        })),
        Err(message) => {
            errors.push((start, message));
            operands.push(None);
        }
    }
    Tok::Operand(index)
}

struct Parser<'t> {
    tokens: &'t [(Tok, usize)],
    pos: usize,
    /// Query length: the offset reported for "missing operand at the end".
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<(Tok, usize)> {
        self.tokens.get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos += 1;
    }

    /// After an operator at `at`, an operand must follow.
    fn expect_operand_after(&self, op: Tok, at: usize) -> Result<(), QueryError> {
        match self.peek() {
            Some((tok, _)) if tok.starts_operand() => Ok(()),
            _ => Err((at, format!("{} needs a term after it", op.describe()))),
        }
    }

    fn parse_or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.parse_and(depth)?];
        while let Some((Tok::Or, at)) = self.peek() {
            self.bump();
            self.expect_operand_after(Tok::Or, at)?;
            items.push(self.parse_and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn parse_and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.parse_not(depth)?];
        loop {
            match self.peek() {
                Some((Tok::And, at)) => {
                    self.bump();
                    self.expect_operand_after(Tok::And, at)?;
                }
                Some((tok, _)) if tok.starts_operand() => {}
                _ => break,
            }
            items.push(self.parse_not(depth)?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn parse_not(&mut self, depth: usize) -> Result<Expr, QueryError> {
        match self.peek() {
            Some((Tok::Not, at)) => {
                if depth >= MAX_DEPTH {
                    return Err((at, "query nested too deeply".to_owned()));
                }
                self.bump();
                self.expect_operand_after(Tok::Not, at)?;
                Ok(Expr::Not(Box::new(self.parse_not(depth + 1)?)))
            }
            _ => self.parse_atom(depth),
        }
    }

    fn parse_atom(&mut self, depth: usize) -> Result<Expr, QueryError> {
        match self.peek() {
            Some((Tok::Operand(i), _)) => {
                self.bump();
                Ok(Expr::Leaf(i))
            }
            Some((Tok::LParen, at)) => {
                if depth >= MAX_DEPTH {
                    return Err((at, "query nested too deeply".to_owned()));
                }
                self.bump();
                if let Some((Tok::RParen, _)) = self.peek() {
                    return Err((at, "empty parentheses".to_owned()));
                }
                let inner = self.parse_or(depth + 1)?;
                match self.peek() {
                    Some((Tok::RParen, _)) => {
                        self.bump();
                        Ok(inner)
                    }
                    _ => Err((at, "unclosed `(`".to_owned())),
                }
            }
            Some((Tok::RParen, at)) => Err((at, "unmatched `)`".to_owned())),
            Some((op @ (Tok::And | Tok::Or), at)) => {
                Err((at, format!("{} needs a term before it", op.describe())))
            }
            // `NOT` is handled by `parse_not`; kept for completeness.
            Some((Tok::Not, at)) => Err((at, "unexpected `NOT`".to_owned())),
            None => Err((self.end, "expected a term".to_owned())),
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn shape(q: &str) -> String {
        fn show(e: &Expr, ops: &[Operand]) -> String {
            match e {
                Expr::Leaf(i) => ops[*i as usize].text.clone(),
                Expr::Not(e) => format!("!{}", show(e, ops)),
                Expr::And(es) => format!(
                    "({})",
                    es.iter()
                        .map(|e| show(e, ops))
                        .collect::<Vec<_>>()
                        .join(" & ")
                ),
                Expr::Or(es) => format!(
                    "({})",
                    es.iter()
                        .map(|e| show(e, ops))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ),
            }
        }
        let p = parse_query(q).unwrap();
        show(&p.expr, &p.operands)
    }

    fn err(q: &str) -> Vec<QueryError> {
        parse_query(q).unwrap_err()
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        assert_eq!(shape("a OR b AND NOT c"), "(a | (b & !c))");
        assert_eq!(
            shape("(Iran OR JCPOA) AND (China OR SCO)"),
            "((Iran | JCPOA) & (China | SCO))"
        );
        assert_eq!(shape("Iran China OR SCO"), "((Iran & China) | SCO)");
        assert_eq!(shape("Iran and China"), "(Iran & and & China)");
        assert_eq!(
            shape("\"nuclear deal\"* NOT NOT x"),
            "(\"nuclear deal\"* & !!x)"
        );
        assert_eq!(shape("Iran(China)"), "(Iran & China)");
    }

    #[test]
    fn syntax_errors_carry_offsets() {
        assert_eq!(err("   "), vec![(0, "empty query".to_owned())]);
        assert_eq!(err("(Iran OR China"), vec![(0, "unclosed `(`".to_owned())]);
        assert_eq!(
            err("Iran OR China)"),
            vec![(13, "unmatched `)`".to_owned())]
        );
        assert_eq!(
            err("Iran AND"),
            vec![(5, "`AND` needs a term after it".to_owned())]
        );
        assert_eq!(
            err("OR Iran"),
            vec![(0, "`OR` needs a term before it".to_owned())]
        );
        assert_eq!(
            err("Iran NOT"),
            vec![(5, "`NOT` needs a term after it".to_owned())]
        );
        assert_eq!(err("Iran ()"), vec![(5, "empty parentheses".to_owned())]);
        assert_eq!(
            err("Iran \"nuclear deal"),
            vec![(5, "unterminated quote".to_owned())]
        );
        let e = err("Ir*an OR -- OR");
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].0, e[1].0, e[2].0), (0, 9, 12));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let q = format!("{}Iran{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(err(&q)[0].1.contains("nested too deeply"));
        let q = format!("{}Iran", "NOT ".repeat(10_000));
        assert!(err(&q)[0].1.contains("nested too deeply"));
    }
}
