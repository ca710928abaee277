//! Credentials: values that should not sit in the configuration file itself. Each is
//! given by exactly one of its settings: inline, a file (`*_file`, e.g. a systemd
//! credential) or an environment variable (`*_env`). This reads the API token of
//! `[daemon]`, and each webhook's signing secret and extra headers, refusing the protocol
//! headers wirewatch sets itself. A credential file that others can read draws a warning.

use std::ops::Range;
use std::path::Path;

use reqwest::header::{HeaderName, HeaderValue};

use super::Secret;
use super::files;
use super::problems::Problems;
use super::raw::{RawWebhook, S};
use super::values::relative_to;

/// Where a credential's text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Inline,
    /// A file (`*_file`, e.g. a systemd credential), read within [`files::MAX_SECRET_BYTES`].
    File,
    /// An environment variable (`*_env`).
    Env,
}

/// A credential (`what`, for messages) given by at most one of `sources`, each a setting's
/// name, where its value leads, and the value if the setting is present. Returns the text
/// and the position to blame if it is wrong. A file that others may read draws a warning.
pub(super) fn read_credential<const N: usize>(
    base: &Path,
    what: &str,
    sources: [(&str, Source, Option<&S<String>>); N],
    p: &mut Problems<'_>,
) -> Result<Option<(String, Range<usize>)>, ()> {
    let given: Vec<(&str, Source, &S<String>)> = sources
        .into_iter()
        .filter_map(|(key, source, value)| Some((key, source, value?)))
        .collect();
    let Some(&(key, source, value)) = given.first() else {
        return Ok(None);
    };
    if let Some((other, _, second)) = given.get(1) {
        p.at(
            second.span(),
            format!("`{key}` and `{other}` both give {what}: keep one"),
        );
        return Err(());
    }
    match source {
        Source::Inline => Ok(Some((value.get_ref().clone(), value.span()))),
        Source::File => {
            let path = relative_to(base, value.get_ref());
            let shown = path.display();
            let read = files::read_limited(&path, files::MAX_SECRET_BYTES).and_then(|contents| {
                let others = contents.readable_by_others().then_some(contents.mode);
                String::from_utf8(contents.bytes)
                    .map(|text| (text, others))
                    .map_err(|_| "it is not UTF-8 text".to_string())
            });
            match read {
                Ok((text, others)) => {
                    if let Some(mode) = others {
                        p.warn(
                            value.span(),
                            format!(
                                "{key} `{shown}` can be read by others (mode {mode:04o}): `chmod 600` it, or pass it as a systemd credential"
                            ),
                        );
                    }
                    // A trailing newline from `echo` or an editor is not part of the value.
                    Ok(Some((
                        text.trim_end_matches(['\n', '\r']).to_string(),
                        value.span(),
                    )))
                }
                Err(why) => {
                    p.at(
                        value.span(),
                        format!("{key} `{shown}` cannot be read: {why}"),
                    );
                    Err(())
                }
            }
        }
        Source::Env => match std::env::var(value.get_ref()) {
            Ok(text) => Ok(Some((text, value.span()))),
            Err(_) => {
                p.at(
                    value.span(),
                    format!(
                        "{key}: environment variable `{}` is not set",
                        value.get_ref()
                    ),
                );
                Err(())
            }
        },
    }
}

/// The webhook's signing secret from `secret`, `secret_file` or `secret_env`.
pub(super) fn webhook_secret(
    base: &Path,
    hook: &RawWebhook,
    p: &mut Problems<'_>,
) -> Result<Option<Secret>, ()> {
    let given = read_credential(
        base,
        "the signing secret",
        [
            ("secret", Source::Inline, hook.secret.as_ref()),
            ("secret_file", Source::File, hook.secret_file.as_ref()),
            ("secret_env", Source::Env, hook.secret_env.as_ref()),
        ],
        p,
    )?;
    let Some((text, span)) = given else {
        return Ok(None);
    };
    Secret::parse(&text)
        .map(Some)
        .map_err(|message| p.at(span, message))
}

/// Extra request headers; each value inline (`headers`), from a file (`headers_file`) or
/// from the environment (`headers_env`). Values are marked sensitive so they never show
/// in debug output.
pub(super) fn webhook_headers(
    base: &Path,
    hook: &RawWebhook,
    p: &mut Problems<'_>,
) -> Vec<(HeaderName, HeaderValue)> {
    let names: std::collections::BTreeSet<&String> = hook
        .headers
        .keys()
        .chain(hook.headers_file.keys())
        .chain(hook.headers_env.keys())
        .collect();
    let mut headers = Vec::new();
    for key in names {
        let what = format!("headers.{key}");
        let Ok(Some((text, span))) = read_credential(
            base,
            &format!("the value of header `{key}`"),
            [
                ("headers", Source::Inline, hook.headers.get(key)),
                ("headers_file", Source::File, hook.headers_file.get(key)),
                ("headers_env", Source::Env, hook.headers_env.get(key)),
            ],
            p,
        ) else {
            continue;
        };
        let name = HeaderName::from_bytes(key.as_bytes());
        let value = HeaderValue::from_str(text.trim());
        match (name, value) {
            (Ok(name), _) if is_protocol_header(&name) => p.at(
                span,
                format!(
                    "{what}: `{key}` is a protocol header that wirewatch sets itself; it cannot be configured"
                ),
            ),
            (Ok(name), Ok(mut value)) => {
                value.set_sensitive(true);
                headers.push((name, value));
            }
            (Err(_), _) => p.at(span, format!("{what}: `{key}` is not a valid header name")),
            (_, Err(_)) => p.at(
                span,
                format!("{what}: the value is not a valid HTTP header value"),
            ),
        }
    }
    headers
}

/// Headers that belong to HTTP itself or to Standard Webhooks: a configured value would
/// corrupt the request (`Content-Length`, `Transfer-Encoding`, `Host`) or forge its
/// signature (`webhook-*`). Names arrive lower-cased.
fn is_protocol_header(name: &HeaderName) -> bool {
    const PROTOCOL: &[&str] = &[
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ];
    let name = name.as_str();
    PROTOCOL.contains(&name) || name.starts_with("webhook-")
}
