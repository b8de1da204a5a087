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

/// The next page named by a response's `Link` headers.
fn next_page(response: &reqwest::Response) -> Option<Url> {
    response
        .headers()
        .get_all(header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(next_target)
        .and_then(|target| response.url().join(&target).ok())
}

/// The target of the link whose relation is `next` in one `Link` value (RFC 8288): several links separated
/// by commas, parameters in any order, `rel` quoted or not and possibly listing several relation types.
/// Written by hand: the rules are a few lines, and no small, maintained crate parses them.
fn next_target(value: &str) -> Option<String> {
    let mut rest = value.trim_start();
    while let Some(after) = rest.strip_prefix('<') {
        let end = after.find('>')?;
        let target = &after[..end];
        // The parameters run to the next link, which starts at a comma outside quotes.
        let params_text = &after[end + 1..];
        let mut in_quotes = false;
        let stop = params_text
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    in_quotes = !in_quotes;
                }
                c == ',' && !in_quotes
            })
            .map_or(params_text.len(), |(i, _)| i);
        let is_next = params_text[..stop].split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_owned());
        }
        rest = params_text[stop..].trim_start_matches(',').trim_start();
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_next_however_the_link_is_written() {
        let next = Some("/v2/api/tags/list?last=b&n=2".to_owned());
        for value in [
            r#"</v2/api/tags/list?last=b&n=2>; rel="next""#,
            "</v2/api/tags/list?last=b&n=2>; rel=next",
            r#"</v2/api/tags/list?last=b&n=2>; type="a,b"; REL="prev next""#,
            r#"</first>; rel="first", </v2/api/tags/list?last=b&n=2>; title="x;y"; rel=next"#,
        ] {
            assert_eq!(next_target(value), next, "{value}");
        }
        for value in [
            r#"</first>; rel="first""#,
            "</x>; rel=nextpage",
            "garbage",
            "",
        ] {
            assert_eq!(next_target(value), None, "{value}");
        }
    }
}
