//! The demo's feed server: the sample feeds on 127.0.0.1, each with a strong ETag, and
//! 304 Not Modified to a conditional GET that names it (the demo's second cycle).

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::samples::SAMPLE_FEEDS;
use super::serve;

pub(super) struct FeedServer {
    pub(super) addr: std::net::SocketAddr,
    pub(super) task: JoinHandle<()>,
}

impl FeedServer {
    pub(super) async fn start(stop: &CancellationToken) -> anyhow::Result<FeedServer> {
        let app = Router::new().route("/feeds/{file}", get(serve_feed));
        let (addr, task) = serve(app, stop).await?;
        Ok(FeedServer { addr, task })
    }
}

/// A sample feed with a strong ETag; 304 when the client already has it.
async fn serve_feed(UrlPath(file): UrlPath<String>, headers: HeaderMap) -> Response {
    let Some(feed) = SAMPLE_FEEDS.iter().find(|f| f.file == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = etag(feed.body);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, feed.content_type.to_string()),
            (header::ETAG, etag),
        ],
        feed.body,
    )
        .into_response()
}

fn etag(body: &str) -> String {
    use sha2::{Digest, Sha256};
    // The first 8 bytes of the digest, in hex.
    format!("\"{:.16x}\"", Sha256::digest(body.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_etag_is_the_quoted_hex_of_the_first_8_bytes_of_the_body_digest() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de ...
        assert_eq!(super::etag("abc"), "\"ba7816bf8f01cfea\"");
    }
}
