//! Intake: from queue messages to the releases to promote. Knows GitHub and SQS, nothing of registries.

pub mod envelope;
pub mod github;
pub mod queue;
pub mod signature;

pub use github::Release;
pub use queue::{Heartbeat, Message, Queue};
pub use signature::Secret;

/// Which release events go to production.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Release actions that promote (GitHub sends `created`, `published`, `released`… for one release).
    pub actions: Vec<String>,
    /// Whether releases marked as prereleases are promoted too.
    pub prereleases: bool,
    /// When set, every delivery must carry a valid `X-Hub-Signature-256`.
    pub webhook_secret: Option<Secret>,
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
    if let Some(secret) = &policy.webhook_secret
        && let Err(reason) = signature::verify(&delivery, secret)
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

/// Oldest first, by `published_at` (then `created_at`, then when the queue got it), so that the newest
/// release is promoted last and is the one deployed.
pub fn oldest_first(pending: &mut [Pending]) {
    let key = |p: &Pending| {
        let date = p
            .release
            .published_at
            .clone()
            .or_else(|| p.release.created_at.clone());
        (date.unwrap_or_default(), p.message.sent_at)
    };
    pending.sort_by_key(key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        Policy {
            actions: vec!["published".into()],
            prereleases: false,
            webhook_secret: None,
        }
    }

    fn event(action: &str, draft: bool, prerelease: bool) -> String {
        json!({"action": action, "release": {"tag_name": "v1", "target_commitish": "main",
               "draft": draft, "prerelease": prerelease}})
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
            webhook_secret: None,
        };
        assert!(matches!(
            read(&event("released", false, true), &policy),
            Reading::Promote { .. }
        ));
    }

    #[test]
    fn with_a_secret_unsigned_or_badly_signed_releases_are_rejected() {
        let policy = Policy {
            webhook_secret: Some(Secret::new("s3cret".into())),
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
    fn sorts_by_publication_then_arrival() {
        let message = |id: &str, sent_at| Message {
            id: id.into(),
            receipt: String::new(),
            body: String::new(),
            sent_at,
        };
        let release = |tag: &str, published: Option<&str>| Release {
            tag_name: tag.into(),
            target_commitish: "main".into(),
            name: None,
            html_url: None,
            draft: false,
            prerelease: false,
            created_at: None,
            published_at: published.map(str::to_owned),
            author: None,
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
