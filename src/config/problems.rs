//! Problems found in a configuration, and where. [`ConfigError`] carries every problem of
//! one file, each a [`Problem`] with its line and column, printed `file:line:column:
//! message`. While the file is converted, [`Problems`] collects problems and warnings by
//! byte span, and [`Lines`] turns spans into 1-based lines and columns counted in
//! characters, as an editor counts them.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Every problem found in one configuration file.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

/// One problem, at a position in the file when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl Problem {
    /// `file:line:column: message`, or `file: message` when it has no position.
    pub fn located<'a>(&'a self, path: &'a Path) -> impl fmt::Display + 'a {
        struct Located<'a>(&'a Problem, &'a Path);
        impl fmt::Display for Located<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let (problem, path) = (self.0, self.1.display());
                match (problem.line, problem.column) {
                    (Some(line), Some(column)) => {
                        write!(f, "{path}:{line}:{column}: {}", problem.message)
                    }
                    _ => write!(f, "{path}: {}", problem.message),
                }
            }
        }
        Located(self, path)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", problem.located(&self.path))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems (and warnings) while converting, turning byte spans into lines and
/// columns.
pub(super) struct Problems<'a> {
    pub(super) lines: Lines<'a>,
    pub(super) list: Vec<Problem>,
    pub(super) warnings: Vec<Problem>,
}

impl<'a> Problems<'a> {
    pub(super) fn new(source: &'a str) -> Problems<'a> {
        Problems {
            lines: Lines::new(source),
            list: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn place(&self, span: Range<usize>, message: String) -> Problem {
        let (line, column) = self.lines.locate(span.start);
        Problem {
            line: Some(line),
            column: Some(column),
            message,
        }
    }

    pub(super) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let problem = self.place(span, message.into());
        self.list.push(problem);
    }

    /// Something allowed that is probably a mistake: reported, not refused.
    pub(super) fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        let warning = self.place(span, format!("warning: {}", message.into()));
        self.warnings.push(warning);
    }
}

/// The line starts of a text, to place many offsets in it without rescanning it for each
/// (a file with 100,000 problems would otherwise be scanned 100,000 times). They are
/// found on the first offset placed: a valid file never needs them.
pub(super) struct Lines<'a> {
    text: &'a str,
    starts: std::cell::OnceCell<Vec<usize>>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text,
            starts: std::cell::OnceCell::new(),
        }
    }

    /// As [`line_column`].
    pub(super) fn locate(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        if !self.text.is_char_boundary(offset) {
            // Not a position in the text; placed as `line_column` places it.
            return line_column(self.text, offset);
        }
        let starts = self.starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        let line = starts.partition_point(|&start| start <= offset);
        let start = starts[line.saturating_sub(1).min(starts.len() - 1)];
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |t| t.chars().count())
            + 1;
        (line, column)
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        for text in ["ab\ncdé f", "", "\n\nx\n", "é\n\né"] {
            let lines = Lines::new(text);
            for offset in 0..=text.len() + 1 {
                if text.is_char_boundary(offset.min(text.len())) {
                    assert_eq!(
                        lines.locate(offset),
                        line_column(text, offset),
                        "{text:?} {offset}"
                    );
                }
            }
        }
        assert_eq!(line_column("ab\ncdé f", 0), (1, 1));
        assert_eq!(line_column("ab\ncdé f", 3), (2, 1));
        assert_eq!(line_column("ab\ncdé f", 8), (2, 5));
    }
}
