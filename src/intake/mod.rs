//! Intake: from queue messages to the releases to promote. Knows GitHub and SQS, nothing of registries.

pub mod envelope;
pub mod github;
pub mod queue;

pub use github::Release;
pub use queue::{Heartbeat, Message, Queue};

/// Which release events go to production.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Release actions that promote (GitHub sends `created`, `published`, `released`… for one release).
    pub actions: Vec<String>,
    /// Whether releases marked as prereleases are promoted too.
    pub prereleases: bool,
}

/// What to do with one message.
#[derive(Debug)]
pub enum Reading {
    Promote(Release),
    /// Well formed but not for production: deleted, with a log line.
    Skip(String),
    /// Not understood: left on the queue for its redrive policy to move to the dead-letter queue.
    Malformed(String),
}

pub fn read(body: &str, policy: &Policy) -> Reading {
    let event = envelope::unwrap(body).and_then(|delivery| github::interpret(&delivery));
    match event {
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
                Reading::Promote(release)
            }
        }
    }
}

/// Oldest first, by `published_at` (then `created_at`, then when the queue got it), so that the newest
/// release is promoted last and is the one deployed.
pub fn oldest_first(pending: &mut [(Message, Release)]) {
    pending.sort_by(|(am, a), (bm, b)| {
        let key = |r: &Release| {
            r.published_at
                .clone()
                .or_else(|| r.created_at.clone())
                .unwrap_or_default()
        };
        key(a).cmp(&key(b)).then(am.sent_at.cmp(&bm.sent_at))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> Policy {
        Policy {
            actions: vec!["published".into()],
            prereleases: false,
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
            Reading::Promote(_)
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
        };
        assert!(matches!(
            read(&event("released", false, true), &policy),
            Reading::Promote(_)
        ));
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
        let mut pending = vec![
            (message("a", 1), release("v3", Some("2026-03-01T00:00:00Z"))),
            (message("b", 3), release("v1", Some("2026-01-01T00:00:00Z"))),
            (message("c", 2), release("v2", Some("2026-02-01T00:00:00Z"))),
            (
                message("d", 0),
                release("v2b", Some("2026-02-01T00:00:00Z")),
            ),
        ];
        oldest_first(&mut pending);
        let tags: Vec<&str> = pending.iter().map(|(_, r)| r.tag_name.as_str()).collect();
        assert_eq!(tags, ["v1", "v2b", "v2", "v3"]);
    }
}
