//! Intake: from queue messages to the releases to promote. Knows GitHub and SQS, nothing of registries.

pub mod envelope;
pub mod github;
pub mod queue;
pub mod secrets;
pub mod signature;

pub use github::Release;
pub use queue::{Heartbeat, Message, Queue};
pub use signature::Secret;

/// Where `run` takes the release from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReleaseSource {
    /// The SQS queue the webhook Lambda feeds (PROMOTE_QUEUE_URL).
    Queue,
    /// CodePipeline V2 variables passed as PROMOTE_RELEASE_TAG and PROMOTE_COMMIT.
    Variables,
    /// A CodeBuild webhook on a Git tag: CODEBUILD_WEBHOOK_TRIGGER=tag/<tag>,
    /// CODEBUILD_RESOLVED_SOURCE_VERSION = its commit.
    CodebuildWebhook,
}

/// What the environment says of the release to promote, for the sources that are not the queue.
#[derive(Debug, Default)]
pub struct Named {
    /// PROMOTE_RELEASE_TAG.
    pub tag: Option<String>,
    /// PROMOTE_COMMIT.
    pub commit: Option<String>,
    /// CODEBUILD_WEBHOOK_TRIGGER, e.g. `tag/v1.2.0`.
    pub webhook_trigger: Option<String>,
    /// CODEBUILD_RESOLVED_SOURCE_VERSION.
    pub resolved_source_version: Option<String>,
}

/// The release a non-queue source names (`None` for the queue), or the setting that is missing.
pub fn named_release(source: ReleaseSource, named: Named) -> Result<Option<Release>, String> {
    let given = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    match source {
        ReleaseSource::Queue => Ok(None),
        ReleaseSource::Variables => {
            let tag = given(named.tag).ok_or(
                "PROMOTE_RELEASE_TAG is not set or empty (or pass --tag): the release tag to promote",
            )?;
            Ok(Some(Release::named(tag, named.commit)))
        }
        ReleaseSource::CodebuildWebhook => {
            let trigger = given(named.webhook_trigger).ok_or(
                "CODEBUILD_WEBHOOK_TRIGGER is not set or empty (or pass --webhook-trigger): set by CodeBuild for \
                 webhook builds",
            )?;
            let tag = trigger.strip_prefix("tag/").ok_or_else(|| {
                format!(
                    "CODEBUILD_WEBHOOK_TRIGGER is {trigger:?}, not tag/<tag>: the CodeBuild webhook must filter on \
                     tag pushes"
                )
            })?;
            Ok(Some(Release::named(
                tag.to_owned(),
                named.resolved_source_version,
            )))
        }
    }
}

/// Which release events go to production.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Release actions that promote (GitHub sends `created`, `published`, `released`… for one release).
    pub actions: Vec<String>,
    /// Whether releases marked as prereleases are promoted too.
    pub prereleases: bool,
    /// When any is given, every delivery must carry an `X-Hub-Signature-256` made with one of them (the
    /// current value first, then the previous one while a rotation is under way).
    pub webhook_secrets: Vec<Secret>,
}

/// What to do with one message.
#[derive(Debug)]
pub enum Reading {
    /// A release to promote, with the webhook's `X-GitHub-Delivery` id when the envelope carried it.
    Promote {
        release: Release,
        delivery: Option<String>,
    },
    /// Well formed but not for production: deleted, with a log line.
    Skip(String),
    /// A webhook secret is set and the signature is missing or wrong: never promoted, left on the queue.
    Rejected(String),
    /// Not understood: left on the queue for its redrive policy to move to the dead-letter queue.
    Malformed(String),
}

/// SQS's largest message. Anything longer did not come through the queue as sent, so it is not read at all.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

pub fn read(body: &str, policy: &Policy) -> Reading {
    if body.len() > MAX_MESSAGE_BYTES {
        return Reading::Malformed(format!(
            "the message is {} bytes, over SQS's {MAX_MESSAGE_BYTES}-byte limit",
            body.len()
        ));
    }
    let delivery = match envelope::unwrap(body) {
        Ok(delivery) => delivery,
        Err(reason) => return Reading::Malformed(reason),
    };
    if !policy.webhook_secrets.is_empty()
        && let Err(reason) = signature::verify(&delivery, &policy.webhook_secrets)
    {
        return Reading::Rejected(reason);
    }
    judge(&delivery, policy)
}

/// What a delivery whose signature was checked (or needs none) asks for, under `policy`'s actions and
/// prereleases. The webhook function and `run` share it: one definition of a promotable release.
pub fn judge(delivery: &envelope::Delivery, policy: &Policy) -> Reading {
    let delivery_id = delivery.header("x-github-delivery").map(str::to_owned);
    match github::interpret(delivery) {
        Err(reason) => Reading::Malformed(reason),
        Ok(github::Event::Other(what)) => Reading::Skip(what),
        Ok(github::Event::Release { action, release }) => {
            if release.draft {
                Reading::Skip(format!("release {} is a draft", release.tag_name))
            } else if !policy.actions.contains(&action) {
                Reading::Skip(format!(
                    "release {} action {action:?} is not one of {:?} (PROMOTE_RELEASE_ACTIONS)",
                    release.tag_name, policy.actions
                ))
            } else if release.prerelease && !policy.prereleases {
                Reading::Skip(format!(
                    "release {} is a prerelease (set PROMOTE_PRERELEASES=true to promote prereleases)",
                    release.tag_name
                ))
            } else if release.published_at.is_none() {
                // Which release production ends on is decided by publication time: without one, the
                // release cannot be ordered against the others.
                Reading::Malformed(format!(
                    "release {} has no published_at: a published release always carries one",
                    release.tag_name
                ))
            } else {
                Reading::Promote {
                    release,
                    delivery: delivery_id,
                }
            }
        }
    }
}

/// A release read off the queue, waiting for its promotion.
#[derive(Debug)]
pub struct Pending {
    pub message: Message,
    pub release: Release,
    pub delivery: Option<String>,
}

/// Oldest first, by [`Release::precedence`] (then when the queue got it), so that the newest release is
/// promoted last and is the one deployed.
pub fn oldest_first(pending: &mut [Pending]) {
    pending.sort_by_key(|p| (p.release.precedence(), p.message.sent_at));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        Policy {
            actions: vec!["published".into()],
            prereleases: false,
            webhook_secrets: Vec::new(),
        }
    }

    fn event(action: &str, draft: bool, prerelease: bool) -> String {
        json!({"action": action, "release": {"tag_name": "v1", "target_commitish": "main",
               "draft": draft, "prerelease": prerelease, "published_at": "2026-03-01T10:00:00Z"}})
        .to_string()
    }

    #[test]
    fn promotes_published_releases_only() {
        assert!(matches!(
            read(&event("published", false, false), &policy()),
            Reading::Promote { .. }
        ));
        for (body, says) in [
            (event("created", false, false), "action \"created\""),
            (event("published", true, false), "draft"),
            (event("published", false, true), "prerelease"),
        ] {
            match read(&body, &policy()) {
                Reading::Skip(reason) => assert!(reason.contains(says), "{reason}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn prereleases_and_other_actions_by_setting() {
        let policy = Policy {
            actions: vec!["published".into(), "released".into()],
            prereleases: true,
            webhook_secrets: Vec::new(),
        };
        assert!(matches!(
            read(&event("released", false, true), &policy),
            Reading::Promote { .. }
        ));
    }

    #[test]
    fn with_a_secret_unsigned_or_badly_signed_releases_are_rejected() {
        let policy = Policy {
            webhook_secrets: vec![Secret::new("s3cret".into(), "PROMOTE_WEBHOOK_SECRET")],
            ..policy()
        };
        let unsigned = serde_json::json!({"httpMethod": "POST", "headers": {"X-GitHub-Delivery": "d-1"},
            "body": event("published", false, false)});
        assert!(matches!(
            read(&unsigned.to_string(), &policy),
            Reading::Rejected(_)
        ));
        assert!(matches!(
            read(&event("published", false, false), &policy),
            Reading::Rejected(_)
        ));
    }

    #[test]
    fn the_delivery_id_comes_with_the_release() {
        let gateway = serde_json::json!({"httpMethod": "POST", "headers": {"X-GitHub-Delivery": "d-1"},
            "body": event("published", false, false)});
        match read(&gateway.to_string(), &policy()) {
            Reading::Promote { delivery, .. } => assert_eq!(delivery.as_deref(), Some("d-1")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_oversized_message_is_malformed_without_being_parsed() {
        let padded = format!(
            "{{\"pad\":\"{}\",{}",
            "x".repeat(MAX_MESSAGE_BYTES),
            &event("published", false, false)[1..]
        );
        match read(&padded, &policy()) {
            Reading::Malformed(reason) => assert!(reason.contains("over SQS's"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_malformed_not_skipped() {
        for body in ["", "{", "{\"a\":1}", "null"] {
            assert!(
                matches!(read(body, &policy()), Reading::Malformed(_)),
                "{body:?}"
            );
        }
    }

    #[test]
    fn a_release_without_a_valid_publication_time_is_malformed() {
        let no_date = json!({"action": "published", "release": {"tag_name": "v1",
            "target_commitish": "main", "draft": false, "prerelease": false}});
        let garbage = json!({"action": "published", "release": {"tag_name": "v1",
            "target_commitish": "main", "published_at": "2026-13-01T00:00:00Z"}});
        for body in [no_date, garbage] {
            match read(&body.to_string(), &policy()) {
                Reading::Malformed(reason) => assert!(reason.contains("published_at"), "{reason}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn ties_in_one_second_go_to_the_release_created_later_whatever_the_arrival() {
        let event = |tag: &str, id: u64, published: &str| {
            json!({"action": "published", "release": {"id": id, "tag_name": tag,
                "target_commitish": "main", "published_at": published}})
            .to_string()
        };
        let pending = |body: String, sent_at| match read(&body, &policy()) {
            Reading::Promote { release, delivery } => Pending {
                message: Message {
                    id: release.tag_name.clone(),
                    receipt: String::new(),
                    body,
                    sent_at,
                },
                release,
                delivery,
            },
            other => panic!("{other:?}"),
        };
        let mut pending = vec![
            pending(event("v2", 20, "2026-03-01T10:00:00Z"), 1),
            pending(event("v1", 10, "2026-03-01T10:00:00Z"), 2),
            pending(event("v3", 5, "2026-03-01T10:00:00.500Z"), 0),
            pending(event("v0", 99, "2026-03-01T14:00:00+05:00"), 3),
        ];
        oldest_first(&mut pending);
        let tags: Vec<&str> = pending
            .iter()
            .map(|p| p.release.tag_name.as_str())
            .collect();
        assert_eq!(tags, ["v0", "v1", "v2", "v3"]);
    }

    #[test]
    fn sorts_by_publication_then_arrival() {
        let message = |id: &str, sent_at| Message {
            id: id.into(),
            receipt: String::new(),
            body: String::new(),
            sent_at,
        };
        let release = |tag: &str, published: Option<&str>| Release {
            id: None,
            tag_name: tag.into(),
            target_commitish: "main".into(),
            name: None,
            html_url: None,
            draft: false,
            prerelease: false,
            created_at: None,
            published_at: published.map(|p| p.parse().unwrap()),
            author: None,
            repository: None,
        };
        let pending = |id, sent_at, tag, published| Pending {
            message: message(id, sent_at),
            release: release(tag, Some(published)),
            delivery: None,
        };
        let mut pending = vec![
            pending("a", 1, "v3", "2026-03-01T00:00:00Z"),
            pending("b", 3, "v1", "2026-01-01T00:00:00Z"),
            pending("c", 2, "v2", "2026-02-01T00:00:00Z"),
            pending("d", 0, "v2b", "2026-02-01T00:00:00Z"),
        ];
        oldest_first(&mut pending);
        let tags: Vec<&str> = pending
            .iter()
            .map(|p| p.release.tag_name.as_str())
            .collect();
        assert_eq!(tags, ["v1", "v2b", "v2", "v3"]);
    }
}
