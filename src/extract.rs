//! TEMPORARY stand-in, replaced by the extraction module being measured on its branch.
pub const MAX_ARTICLE_BYTES: usize = 64 * 1024;
#[derive(Debug, Clone)]
pub struct Extracted {
    pub title: Option<String>,
    pub text: String,
}
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("no main text")]
    NoText,
}
pub fn extract(
    body: &[u8],
    _content_type: Option<&str>,
    _url: Option<&url::Url>,
) -> Result<Extracted, ExtractError> {
    let text = String::from_utf8_lossy(body).to_string();
    if text.is_empty() {
        return Err(ExtractError::NoText);
    }
    Ok(Extracted { title: None, text })
}
