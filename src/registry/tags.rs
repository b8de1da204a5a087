//! Listing a repository's tags, page by page as the Distribution API hands them out.

use reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use url::Url;

use super::error::RegistryError;
use super::transport::Registry;

#[derive(Deserialize)]
struct TagPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The `<url>; rel="next"` of a `Link` header.
fn next_page(response: &reqwest::Response) -> Option<Url> {
    let link = response.headers().get(header::LINK)?.to_str().ok()?;
    let target = link
        .split(';')
        .next()?
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    link.contains("rel=\"next\"")
        .then(|| response.url().join(target).ok())
        .flatten()
}

impl Registry {
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let what = format!("listing the tags of {repository}");
        let mut tags = Vec::new();
        let mut url = Some(self.url(repository, "tags/list?n=1000"));
        while let Some(page) = url.take() {
            let response = self
                .send(&what, || self.request(Method::GET, page.clone()))
                .await?;
            if response.status() == StatusCode::NOT_FOUND {
                return Err(self.name_unknown(repository));
            }
            if !response.status().is_success() {
                return Err(self.failure(&what, repository, response).await);
            }
            url = next_page(&response);
            let body: TagPage = self.json(&what, response).await?;
            tags.extend(body.tags.unwrap_or_default());
        }
        Ok(tags)
    }
}
