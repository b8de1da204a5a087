//! What GitHub is told: the deployment of a deploy and its statuses, decided here from the deploy and the
//! settings alone; `Deployments` sends them.

use serde_json::{Value, json};

use super::{Settings, console};
use crate::ledger::{Deploy, DeployKind, Record};

/// The deployment statuses ecr-promote posts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The deploy files are written: ECS deploys the release next.
    InProgress,
    /// The release runs in production.
    Success,
    /// The deploy failed or was rolled back.
    Failure,
    /// A later deploy replaced this one.
    Inactive,
}

impl State {
    /// GitHub's word for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            State::InProgress => "in_progress",
            State::Success => "success",
            State::Failure => "failure",
            State::Inactive => "inactive",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        [
            State::InProgress,
            State::Success,
            State::Failure,
            State::Inactive,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }

    /// The status's description (GitHub keeps at most 140 characters).
    fn description(self, tag: &str) -> String {
        let text = match self {
            State::InProgress => format!("Deploying {tag} to production"),
            State::Success => format!("{tag} runs in production"),
            State::Failure => format!("{tag} failed in production"),
            State::Inactive => format!("{tag} was replaced by a later deploy"),
        };
        text.chars().take(140).collect()
    }
}

/// What was deployed, as a GitHub deployment describes it.
#[derive(Clone, Debug)]
pub struct Shipped {
    pub tag: String,
    pub commit: String,
    /// Each image as `(production image, digest)`.
    pub images: Vec<(String, String)>,
    pub kind: DeployKind,
}

impl Shipped {
    /// A deploy of a recorded release.
    pub fn of(record: &Record, deploy: &Deploy) -> Shipped {
        Shipped {
            tag: record.tag_name.clone(),
            commit: record.commit.clone(),
            images: record
                .images
                .iter()
                .map(|image| (image.target_image.clone(), image.digest.to_string()))
                .collect(),
            kind: deploy.kind,
        }
    }
}

/// The deployment: of the release's commit (a tag's ref could be moved; the commit is what was built),
/// never merged into, with no commit status required (the release was published: that is the approval).
pub(super) fn deployment(settings: &Settings, shipped: &Shipped) -> Value {
    json!({
        "ref": shipped.commit,
        "task": "deploy",
        "auto_merge": false,
        "required_contexts": [],
        "environment": settings.environment,
        "production_environment": true,
        "description": format!("ecr-promote {} of release {}", shipped.kind.as_str(), shipped.tag),
        "payload": {
            "tag": shipped.tag,
            "images": shipped.images.iter().map(|(image, digest)| json!({"image": image, "digest": digest})).collect::<Vec<_>>(),
        },
    })
}

/// A status: the build's console page as its log, and `auto_inactive` off (see the module's page).
pub(super) fn status(settings: &Settings, tag: &str, state: State) -> Value {
    let mut status = json!({
        "state": state.as_str(),
        "description": state.description(tag),
        "auto_inactive": false,
    });
    if let Some(url) = settings.build_arn.as_deref().and_then(console::build_url) {
        status["log_url"] = url.into();
    }
    if let Some(url) = &settings.environment_url {
        status["environment_url"] = url.clone().into();
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(build_arn: Option<&str>, environment_url: Option<&str>) -> Settings {
        Settings {
            token_secret_arn: "arn:aws:secretsmanager:us-east-1:1:secret:t".into(),
            api_url: "https://api.github.com".parse().unwrap(),
            environment: "production".into(),
            environment_url: environment_url.map(str::to_owned),
            repository: None,
            build_arn: build_arn.map(str::to_owned),
            app: None,
        }
    }

    #[test]
    fn states_read_back_as_written() {
        for state in [
            State::InProgress,
            State::Success,
            State::Failure,
            State::Inactive,
        ] {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        assert_eq!(State::parse("queued"), None);
        assert!(
            State::Inactive
                .description(&"v".repeat(200))
                .chars()
                .count()
                <= 140
        );
    }

    #[test]
    fn a_deployment_is_of_the_commit_in_production_with_the_images() {
        let record = crate::ledger::example("v1");
        let shipped = Shipped::of(&record, &crate::ledger::full().deploys[0]);
        let body = deployment(&settings(None, None), &shipped);
        assert_eq!(body["ref"], record.commit);
        assert_eq!(body["production_environment"], true);
        assert_eq!(body["auto_merge"], false);
        assert_eq!(
            body["payload"]["images"][0]["digest"],
            record.digest.to_string()
        );
        assert_eq!(body["description"], "ecr-promote redeploy of release v1");
    }

    #[test]
    fn a_status_links_the_build_only_when_there_is_one() {
        let arn = "arn:aws:codebuild:us-east-1:1:build/p:1";
        let with = status(
            &settings(Some(arn), Some("https://shop")),
            "v1",
            State::Success,
        );
        assert_eq!(with["auto_inactive"], false);
        assert_eq!(with["environment_url"], "https://shop");
        assert!(
            with["log_url"]
                .as_str()
                .is_some_and(|url| url.contains("build/p%3A1"))
        );
        let without = status(&settings(None, None), "v1", State::Failure);
        assert_eq!(without.get("log_url"), None, "{without}");
        assert_eq!(without.get("environment_url"), None, "{without}");
        assert_eq!(without["state"], "failure");
    }
}
