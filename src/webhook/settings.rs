//! The function's settings, from its environment: the names and meanings `run` uses where they match.

use crate::intake::Policy;
use crate::usage::Usage;

#[derive(Debug)]
pub struct Settings {
    /// PROMOTE_QUEUE_URL: where accepted releases go.
    pub queue_url: String,
    /// PROMOTE_PIPELINE_NAME: the production pipeline to start.
    pub pipeline_name: String,
    /// PROMOTE_WEBHOOK_SECRET_ARN: the Secrets Manager secret holding GitHub's webhook secret.
    pub secret_arn: String,
    /// PROMOTE_TABLE: the ledger table, where deliveries are claimed; unset, every delivery is acted on.
    pub table: Option<String>,
    /// PROMOTE_RELEASE_ACTIONS and PROMOTE_PRERELEASES. The signature is checked before the policy is
    /// applied, against the secrets' current and previous values, so the policy carries no secret.
    pub policy: Policy,
}

impl Settings {
    pub fn from_env() -> Result<Settings, Usage> {
        Settings::from_lookup(|name| std::env::var(name).ok())
    }

    /// `lookup` gives a variable's value; empty counts as unset, as it does for `run`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, Usage> {
        let optional = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let required = |name: &str, what: &str| {
            optional(name).ok_or_else(|| Usage(format!("{name} is not set: set it to {what}")))
        };
        let actions: Vec<String> = optional("PROMOTE_RELEASE_ACTIONS")
            .unwrap_or_else(|| "published".into())
            .split(',')
            .map(str::trim)
            .filter(|action| !action.is_empty())
            .map(str::to_owned)
            .collect();
        if actions.is_empty() {
            return Err(Usage(
                "PROMOTE_RELEASE_ACTIONS names no action: set it to e.g. published".into(),
            ));
        }
        let prereleases = match optional("PROMOTE_PRERELEASES")
            .map(|value| value.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false" | "0" | "no" | "off") => false,
            Some("true" | "1" | "yes" | "on") => true,
            Some(other) => {
                return Err(Usage(format!(
                    "PROMOTE_PRERELEASES is {other:?}: set it to true or false"
                )));
            }
        };
        Ok(Settings {
            queue_url: required("PROMOTE_QUEUE_URL", "the release queue's URL")?,
            pipeline_name: required("PROMOTE_PIPELINE_NAME", "the production pipeline's name")?,
            secret_arn: required(
                "PROMOTE_WEBHOOK_SECRET_ARN",
                "the ARN of the secret holding the GitHub webhook secret",
            )?,
            table: optional("PROMOTE_TABLE"),
            policy: Policy {
                actions,
                prereleases,
                webhook_secrets: Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, Usage> {
        Settings::from_lookup(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, value)| value.to_string())
        })
    }

    const REQUIRED: [(&str, &str); 3] = [
        ("PROMOTE_QUEUE_URL", "https://sqs/q"),
        ("PROMOTE_PIPELINE_NAME", "p"),
        ("PROMOTE_WEBHOOK_SECRET_ARN", "arn:s"),
    ];

    #[test]
    fn defaults_to_published_releases_and_no_claims() {
        let settings = settings(&REQUIRED).unwrap();
        assert_eq!(settings.policy.actions, ["published"]);
        assert!(!settings.policy.prereleases);
        assert_eq!(settings.table, None);
    }

    #[test]
    fn reads_actions_prereleases_and_the_table() {
        let mut pairs = REQUIRED.to_vec();
        pairs.extend([
            ("PROMOTE_RELEASE_ACTIONS", "published, released"),
            ("PROMOTE_PRERELEASES", "TRUE"),
            ("PROMOTE_TABLE", "releases"),
        ]);
        let settings = settings(&pairs).unwrap();
        assert_eq!(settings.policy.actions, ["published", "released"]);
        assert!(settings.policy.prereleases);
        assert_eq!(settings.table.as_deref(), Some("releases"));
    }

    #[test]
    fn names_the_variable_to_fix() {
        for (missing, _) in REQUIRED {
            let pairs: Vec<_> = REQUIRED
                .into_iter()
                .filter(|(n, _)| *n != missing)
                .collect();
            let error = settings(&pairs).unwrap_err().0;
            assert!(
                error.starts_with(&format!("{missing} is not set")),
                "{error}"
            );
        }
        let mut pairs = REQUIRED.to_vec();
        pairs.push(("PROMOTE_PRERELEASES", "maybe"));
        assert!(
            settings(&pairs)
                .unwrap_err()
                .0
                .contains("PROMOTE_PRERELEASES")
        );
    }
}
