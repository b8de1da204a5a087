//! GitHub `release` webhook payloads: what was released, and whether it is an event to act on.

use serde::Deserialize;
use serde_json::Value;

use super::envelope::Delivery;
use crate::timestamp::Timestamp;

/// A GitHub release, as far as promotion and its record need it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Release {
    /// GitHub's release id: it grows with each release created, so it breaks ties between releases
    /// published in the same second (GitHub's timestamps are whole seconds).
    #[serde(default)]
    pub id: Option<u64>,
    pub tag_name: String,
    /// A branch name or a commit SHA: the tag's own commit is not in the payload.
    pub target_commitish: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub prerelease: bool,
    #[serde(default, deserialize_with = "created_at")]
    pub created_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "published_at")]
    pub published_at: Option<Timestamp>,
    #[serde(default, deserialize_with = "login")]
    pub author: Option<String>,
    /// `owner/name` of the repository released: the payload's `repository.full_name`, beside the release
    /// object. Where GitHub deployments are reported.
    #[serde(skip)]
    pub repository: Option<String>,
}

/// How releases are ordered, oldest first: publication instant, then GitHub's release id (ties in the same
/// second go to the release created later). The ledger keeps both, so later runs order the same way.
pub type Precedence = (Option<Timestamp>, Option<u64>);

impl Release {
    /// The release tag becomes the production image's tag: refused, naming the fix, when it cannot be one.
    pub fn check_image_tag(&self) -> Result<(), String> {
        if crate::registry::valid_tag(&self.tag_name) {
            return Ok(());
        }
        Err(format!(
            "release tag {:?} cannot be an image tag (letters, digits, '_', '.', '-', at most 128, not \
             starting with '.' or '-'): rename the release",
            self.tag_name
        ))
    }

    /// A release known only by its tag and, maybe, its commit: from the command line or pipeline variables.
    pub fn named(tag: String, commit: Option<String>) -> Release {
        Release {
            id: None,
            tag_name: tag,
            target_commitish: commit.unwrap_or_default(),
            name: None,
            html_url: None,
            draft: false,
            prerelease: false,
            created_at: None,
            published_at: None,
            author: None,
            repository: None,
        }
    }

    pub fn precedence(&self) -> Precedence {
        (self.published_at.or(self.created_at), self.id)
    }
}

fn instant<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    field: &str,
) -> Result<Option<Timestamp>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| {
            text.parse()
                .map_err(|e| serde::de::Error::custom(format!("{field}: {e}")))
        })
        .transpose()
}

fn created_at<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    instant(d, "created_at")
}

fn published_at<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    instant(d, "published_at")
}

fn login<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let author = Option::<Value>::deserialize(deserializer)?;
    Ok(author.and_then(|a| a.get("login")?.as_str().map(str::to_owned)))
}

/// What a delivery says.
#[derive(Debug, PartialEq)]
pub enum Event {
    Release {
        action: String,
        release: Release,
    },
    /// A delivery that is well formed but not a release: a ping or another event type.
    Other(String),
}

pub fn interpret(delivery: &Delivery) -> Result<Event, String> {
    if let Some(event) = delivery.header("x-github-event")
        && event != "release"
    {
        return Ok(Event::Other(format!("GitHub {event} event")));
    }
    let payload = &delivery.payload;
    if payload.get("zen").is_some() && payload.get("hook_id").is_some() {
        return Ok(Event::Other("GitHub ping event".into()));
    }
    let (action, release) = match (payload.get("release"), payload.get("tag_name")) {
        (Some(release), _) => {
            let action = payload
                .get("action")
                .and_then(Value::as_str)
                .ok_or("a release event without an action")?;
            (action.to_owned(), release)
        }
        // A bare release object, as a Lambda may forward just `release`: it was published to be sent.
        (None, Some(_)) => ("published".to_owned(), payload),
        (None, None) => {
            return Err("not a GitHub release event: no release object and no tag_name".into());
        }
    };
    let mut release: Release = serde_json::from_value(release.clone())
        .map_err(|e| format!("the release object is incomplete: {e}"))?;
    release.repository = payload
        .pointer("/repository/full_name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if release.tag_name.trim().is_empty() {
        return Err("the release has an empty tag_name".into());
    }
    Ok(Event::Release { action, release })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::envelope::unwrap;
    use serde_json::json;

    fn release_json() -> Value {
        json!({"tag_name": "v1.2.0", "target_commitish": "master", "name": "Spring", "draft": false,
               "prerelease": true, "published_at": "2026-03-01T10:00:00Z", "html_url": "https://github.com/o/r/releases/v1.2.0",
               "author": {"login": "octocat"}})
    }

    fn interpret_text(text: &str) -> Result<Event, String> {
        interpret(&unwrap(text).unwrap())
    }

    #[test]
    fn reads_a_release_event() {
        let payload = json!({"action": "published", "release": release_json(), "repository": {"full_name": "o/r"}});
        let Event::Release { action, release } = interpret_text(&payload.to_string()).unwrap()
        else {
            panic!("not a release")
        };
        assert_eq!(action, "published");
        assert_eq!(release.tag_name, "v1.2.0");
        assert_eq!(release.target_commitish, "master");
        assert_eq!(release.author.as_deref(), Some("octocat"));
        assert_eq!(release.repository.as_deref(), Some("o/r"));
        assert!(release.prerelease);
        assert_eq!(
            release.published_at.map(|t| t.to_string()).as_deref(),
            Some("2026-03-01T10:00:00Z")
        );
    }

    #[test]
    fn a_bare_release_counts_as_published() {
        let Event::Release { action, release } =
            interpret_text(&release_json().to_string()).unwrap()
        else {
            panic!("not a release")
        };
        assert_eq!(
            (action.as_str(), release.tag_name.as_str()),
            ("published", "v1.2.0")
        );
    }

    #[test]
    fn pings_and_other_events_are_not_releases() {
        let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1});
        assert_eq!(
            interpret_text(&ping.to_string()).unwrap(),
            Event::Other("GitHub ping event".into())
        );
        let push =
            json!({"httpMethod": "POST", "headers": {"X-GitHub-Event": "push"}, "body": "{}"});
        assert_eq!(
            interpret_text(&push.to_string()).unwrap(),
            Event::Other("GitHub push event".into())
        );
    }

    #[test]
    fn incomplete_releases_are_errors() {
        for payload in [
            json!({"hello": "world"}),
            json!({"release": release_json()}),
            json!({"action": "published", "release": {"tag_name": "v1"}}),
            json!({"action": "published", "release": {"tag_name": " ", "target_commitish": "main"}}),
            json!({"action": "published", "release": "v1"}),
            json!({"action": "published", "release": {"tag_name": "v1", "target_commitish": "main",
                   "published_at": "garbage"}}),
        ] {
            assert!(interpret_text(&payload.to_string()).is_err(), "{payload}");
        }
    }
}
