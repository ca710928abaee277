//! `wirewatch extract URL|FILE [--json]` (SPEC §13): the main text a `full_text` feed's
//! item would be matched on, read from a page as the article stage reads it (the same
//! network guard, limits and extractor), with its detected language.

use std::fmt;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;

use crate::article::Articles;
use crate::config::Config;
use crate::telemetry::error_chain;

use super::{CliError, print, print_json};

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// An http(s) URL, fetched as an article page is, or an HTML file.
    pub source: String,
    /// Print `{"title", "text", "language"}`.
    #[arg(long)]
    pub json: bool,
}

/// Exactly the document of SPEC §13.
#[derive(Debug, Serialize)]
struct Extraction {
    title: Option<String>,
    text: String,
    language: Option<String>,
}

pub(super) async fn extract(config: &Config, args: &ExtractArgs) -> Result<(), CliError> {
    let extracted = match url::Url::parse(&args.source) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            let articles = Articles::new(&config.poll).context("cannot build the HTTP client")?;
            let shown = crate::redact::url(&url, &[]).to_string();
            articles
                .read(&url)
                .await
                .map_err(|err| anyhow::anyhow!("{shown}: {}", error_chain(&err)))?
        }
        _ => {
            let body = std::fs::read(&args.source)
                .with_context(|| format!("cannot read {}", args.source))?;
            crate::extract::extract(&body, None, None)
                .map_err(|err| anyhow::anyhow!("{}: {}", args.source, error_chain(&err)))?
        }
    };
    let language = crate::language::detect(
        extracted.title.as_deref().unwrap_or(""),
        &extracted.text,
        None,
    );
    let extraction = Extraction {
        title: extracted.title,
        text: extracted.text,
        language,
    };
    if args.json {
        return print_json(&extraction);
    }
    print(Text(&extraction))
}

/// The title, the language, then the text.
struct Text<'a>(&'a Extraction);

impl fmt::Display for Text<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        writeln!(out, "{}", e.title.as_deref().unwrap_or("(no title)"))?;
        writeln!(
            out,
            "language: {}",
            e.language.as_deref().unwrap_or("unknown")
        )?;
        writeln!(out, "\n{}", e.text)
    }
}
