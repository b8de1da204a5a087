//! Secrets read from Secrets Manager by ARN. The webhook secret: given as a value, or read from Secrets Manager —
//! by `run` once, by the webhook function cached across invocations. The GitHub token that reports deployments
//! (PROMOTE_GITHUB_TOKEN_SECRET_ARN) is read the same way, its current value only.
//!
//! Both the `AWSCURRENT` value and, while it exists, the `AWSPREVIOUS` one are kept, so that a rotation
//! drops no delivery: GitHub signs with the old value until someone pastes the new one into the hook.
//! The cache is read again when it is older than [`MAX_AGE`], or when a signature matches neither value (the
//! secret may have been rotated since it was read): then no sooner than [`RECHECK_AFTER`] after the last
//! read, waiting out the rest if need be, so that a flood of badly signed requests makes at most one
//! Secrets Manager read a second, and a value rotated a moment after a read is still seen.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::intake::Secret;

/// Where `run` finds the webhook secret deliveries must be signed with.
#[derive(Debug)]
pub enum SecretSource {
    /// No secret: unsigned deliveries are accepted.
    Unsigned,
    /// The value itself (PROMOTE_WEBHOOK_SECRET): one value, so a delivery signed before a rotation and read
    /// after it is rejected.
    Value(Secret),
    /// The secret's ARN (PROMOTE_WEBHOOK_SECRET_ARN): its current value and, while a rotation is under way,
    /// the previous one, so that a delivery queued just before the rotation is still promoted.
    SecretsManager(String),
}

impl SecretSource {
    /// The values to check signatures against, the current one first; none for [`SecretSource::Unsigned`].
    pub async fn values(self, config: &aws_config::SdkConfig) -> anyhow::Result<Vec<Secret>> {
        Ok(match self {
            SecretSource::Unsigned => Vec::new(),
            SecretSource::Value(secret) => vec![secret],
            SecretSource::SecretsManager(arn) => Secrets::new(config, &arn, WEBHOOK_SECRET)
                .values()
                .await?
                .to_vec(),
        })
    }
}

/// What a secret holds and which setting names it: the words of every message about it.
#[derive(Clone, Copy, Debug)]
pub struct Holding {
    /// The setting that names the secret, e.g. `PROMOTE_WEBHOOK_SECRET_ARN`.
    pub setting: &'static str,
    /// What the secret's value is, e.g. `the GitHub webhook secret`.
    pub what: &'static str,
}

pub const WEBHOOK_SECRET: Holding = Holding {
    setting: "PROMOTE_WEBHOOK_SECRET_ARN",
    what: "the GitHub webhook secret",
};

pub const MAX_AGE: Duration = Duration::from_secs(300);
pub const RECHECK_AFTER: Duration = Duration::from_secs(1);

pub struct Secrets {
    client: aws_sdk_secretsmanager::Client,
    arn: String,
    holding: Holding,
    cache: Mutex<Option<Cached>>,
}

struct Cached {
    /// The current value first, then the previous one if there is one.
    values: Arc<Vec<Secret>>,
    read_at: Instant,
}

impl Secrets {
    pub fn new(config: &aws_config::SdkConfig, arn: &str, holding: Holding) -> Secrets {
        Secrets {
            client: aws_sdk_secretsmanager::Client::new(config),
            arn: arn.to_owned(),
            holding,
            cache: Mutex::new(None),
        }
    }

    /// The `AWSCURRENT` value alone, read now: for a credential sent to a service, where only the current value
    /// works.
    pub async fn current(&self) -> anyhow::Result<Secret> {
        self.stage("AWSCURRENT")
            .await?
            .with_context(|| self.no_current_value())
    }

    fn no_current_value(&self) -> String {
        format!(
            "the secret {} has no AWSCURRENT value ({}): put {} in it",
            self.arn, self.holding.setting, self.holding.what
        )
    }

    /// The values to check a signature against: cached, unless older than [`MAX_AGE`].
    pub async fn values(&self) -> anyhow::Result<Arc<Vec<Secret>>> {
        self.cached_within(MAX_AGE).await
    }

    /// After a signature matched none of `values()`: the values read again, once the cache is
    /// [`RECHECK_AFTER`] old.
    pub async fn reread(&self) -> anyhow::Result<Arc<Vec<Secret>>> {
        if let Some(age) = self.age() {
            tokio::time::sleep(RECHECK_AFTER.saturating_sub(age)).await;
        }
        self.cached_within(Duration::ZERO).await
    }

    fn age(&self) -> Option<Duration> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.as_ref().map(|cached| cached.read_at.elapsed())
    }

    async fn cached_within(&self, age: Duration) -> anyhow::Result<Arc<Vec<Secret>>> {
        {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(cached) = cache
                .as_ref()
                .filter(|cached| cached.read_at.elapsed() < age)
            {
                return Ok(cached.values.clone());
            }
        }
        let (current, previous) = tokio::join!(self.stage("AWSCURRENT"), self.stage("AWSPREVIOUS"));
        let current = current?.with_context(|| self.no_current_value())?;
        let values = Arc::new(
            std::iter::once(current)
                .chain(previous?)
                .collect::<Vec<_>>(),
        );
        *self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Cached {
            values: values.clone(),
            read_at: Instant::now(),
        });
        Ok(values)
    }

    /// The value under `stage`, `None` when no version has that stage.
    async fn stage(&self, stage: &str) -> anyhow::Result<Option<Secret>> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(&self.arn)
            .version_stage(stage)
            .send()
            .await;
        let value = match answer {
            Ok(value) => value,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception())
                    && stage != "AWSCURRENT" =>
            {
                return Ok(None);
            }
            Err(error) => {
                return Err(crate::aws::sdk_error(error)).with_context(|| {
                    format!(
                        "cannot read {} from secret {} ({stage}; {})",
                        self.holding.what, self.arn, self.holding.setting
                    )
                });
            }
        };
        let text = value.secret_string().with_context(|| {
            format!(
                "the secret {} ({stage}) holds binary data: store {} as its string",
                self.arn, self.holding.what
            )
        })?;
        Ok(Some(Secret::new(
            text.to_owned(),
            format!("the secret {} ({stage})", self.arn),
        )))
    }
}
