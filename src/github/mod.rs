//! GitHub deployments: each deploy of a release shown on GitHub, on the release's commit, in the `production`
//! environment, with its progress (`in_progress`, then `success`, `failure`, or `inactive` once superseded) and
//! a link to the build that did it. Off unless PROMOTE_GITHUB_TOKEN_SECRET_ARN names the Secrets Manager secret
//! holding a token, or a GitHub App's private key (PROMOTE_GITHUB_APP_ID, [`app`]).
//!
//! GitHub is told, never asked: a GitHub that cannot be reached or refuses never fails a promotion. What it
//! could not be told is recorded with the deploy in the ledger ([`GithubMark::owed`]) and told on the next
//! report. The ledger keeps each deploy's GitHub deployment id, so that an outcome known later (by whatever
//! learns it) reaches the right deployment through [`Deployments::report`].
//!
//! `auto_inactive` is sent `false` on every status: GitHub applies it only to non-production environments, and
//! a production deployment is what this makes, so ecr-promote marks the superseded deployment `inactive`
//! itself when a newer one succeeds — the same whatever the environment is called.
//!
//! Rooms: `deployment` (what GitHub is told, decided from the deploy and the settings), `client` (the REST
//! calls), `app` (a GitHub App's JWT), `console` (the build's log page); here, when it is told and what the
//! ledger keeps of it.

pub mod app;
pub mod client;
pub mod console;
mod deployment;

use std::time::Duration;

use serde_json::json;
use tokio::sync::OnceCell;
use url::Url;

use crate::intake::Secret;
use crate::intake::secrets::{Holding, Secrets};
use crate::ledger::{Deploy, GithubMark, Ledger, Record};
pub use app::App;
use client::{Client, Refused};
pub use deployment::{Shipped, State};

pub const TOKEN_SECRET: Holding = Holding {
    setting: "PROMOTE_GITHUB_TOKEN_SECRET_ARN",
    what: "the GitHub token (or the GitHub App's private key)",
};

/// Where and how deployments are reported.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The Secrets Manager secret holding the token (PROMOTE_GITHUB_TOKEN_SECRET_ARN).
    pub token_secret_arn: String,
    /// GitHub's REST API (PROMOTE_GITHUB_API_URL): api.github.com, or a GitHub Enterprise Server's `/api/v3`.
    pub api_url: Url,
    /// The deployments' environment (PROMOTE_GITHUB_ENVIRONMENT).
    pub environment: String,
    /// Shown as the environment's address on GitHub (PROMOTE_GITHUB_ENVIRONMENT_URL).
    pub environment_url: Option<String>,
    /// `owner/name` for releases that did not come from a webhook (PROMOTE_GITHUB_REPOSITORY).
    pub repository: Option<String>,
    /// The build that deploys (CODEBUILD_BUILD_ARN): its console page is the statuses' `log_url`.
    pub build_arn: Option<String>,
    /// A GitHub App instead of a token: the secret then holds the App's private key.
    pub app: Option<App>,
}

/// Reports deploys to GitHub, or, off, does nothing and makes no call.
pub struct Deployments {
    on: Option<On>,
}

struct On {
    settings: Settings,
    secrets: Secrets,
    http: reqwest::Client,
    /// Built with the token on first use, so that a run with nothing to report never reads the secret. One per
    /// run: a GitHub App's installation token is taken for the first repository reported to.
    client: OnceCell<Client>,
}

impl Deployments {
    /// `settings`: `None` is off. `stall`: how long a request to GitHub may take.
    pub fn new(
        config: &aws_config::SdkConfig,
        settings: Option<Settings>,
        stall: Duration,
    ) -> Deployments {
        let on = settings.and_then(|settings| {
            let http = reqwest::Client::builder()
                .user_agent(concat!("ecr-promote/", env!("CARGO_PKG_VERSION")))
                // A POST redirected would be sent again as a GET: a moved repository is an answer to read.
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(10))
                .timeout(stall)
                .build();
            match http {
                Ok(http) => Some(On {
                    secrets: Secrets::new(config, &settings.token_secret_arn, TOKEN_SECRET),
                    settings,
                    http,
                    client: OnceCell::new(),
                }),
                Err(error) => {
                    tracing::warn!(error = %error, "GitHub deployments are off: cannot build an HTTP client");
                    None
                }
            }
        });
        Deployments { on }
    }

    /// At a deploy (promote or redeploy), once the deploy files are written: first tells GitHub what earlier
    /// reports could not, then creates the deploy's GitHub deployment with an `in_progress` status. Returns
    /// what to record with the deploy; `None` when off, or when no repository is known for the release.
    pub async fn start(
        &self,
        ledger: &Ledger,
        shipped: &Shipped,
        repository: Option<&str>,
    ) -> Option<GithubMark> {
        let on = self.on.as_ref()?;
        let Some(repository) = repository.or(on.settings.repository.as_deref()) else {
            tracing::warn!(
                release = %shipped.tag,
                "no GitHub deployment: the release did not come from a GitHub webhook, so its repository is \
                 unknown; set PROMOTE_GITHUB_REPOSITORY to owner/name"
            );
            return None;
        };
        self.settle(ledger, None, false).await;
        let mark = GithubMark {
            repository: repository.to_owned(),
            ..GithubMark::default()
        };
        Some(on.bring(shipped, mark, State::InProgress).await)
    }

    /// When a deploy's outcome is known: posts `state` on the GitHub deployment of `deploy` (one of `record`'s
    /// deploys, with the sequence the ledger gave it; its deployment is created first if GitHub never got it)
    /// and records what GitHub was told. With `State::Success`, the deployment that succeeded before it is
    /// marked `inactive`. Then whatever else is owed in the table is told (one table scan per call). The same
    /// outcome reported again (events come at least once) posts nothing. Never fails: a GitHub that cannot be
    /// told is logged and owed. Does nothing when off, or for a deploy made while GitHub deployments were off
    /// (it has no [`GithubMark`]).
    pub async fn report(&self, ledger: &Ledger, record: &Record, deploy: &Deploy, state: State) {
        let Some(on) = self.on.as_ref() else { return };
        let (Some(mark), Some(sequence)) = (&deploy.github, deploy.sequence) else {
            return;
        };
        let this = (record.tag_name.as_str(), sequence);
        if mark.posted.as_deref() == Some(state.as_str()) && mark.owed.is_none() {
            self.settle(ledger, Some(this), false).await;
            return;
        }
        let mark = on
            .bring(&Shipped::of(record, deploy), mark.clone(), state)
            .await;
        on.record(ledger, this.0, sequence, &mark).await;
        // Only once GitHub shows this one succeeded: until then the one before is what production runs.
        let retire = mark.posted.as_deref() == Some(State::Success.as_str());
        self.settle(ledger, Some(this), retire).await;
    }

    /// Tells GitHub every status owed in the table and, with `retire`, marks `inactive` the deployments that
    /// `except` (the deploy that just succeeded) replaced: those whose last status is `success`, and those
    /// deployed before it still `in_progress` (superseded before their outcome was known; production no longer
    /// runs them either way). A deploy after it that is still in progress is left alone.
    async fn settle(&self, ledger: &Ledger, except: Option<(&str, u64)>, retire: bool) {
        let Some(on) = self.on.as_ref() else { return };
        let releases = match ledger.releases().await {
            Ok(releases) => releases,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot read the ledger for GitHub statuses owed; they are told on a later report"
                );
                return;
            }
        };
        for record in &releases.records {
            for deploy in &record.deploys {
                let (Some(mark), Some(sequence)) = (&deploy.github, deploy.sequence) else {
                    continue;
                };
                if except == Some((record.tag_name.as_str(), sequence)) {
                    continue;
                }
                let owed = mark.owed.as_deref().and_then(State::parse);
                let replaced = match mark.posted.as_deref().and_then(State::parse) {
                    Some(State::Success) => true,
                    Some(State::InProgress) => except.is_some_and(|(_, after)| sequence < after),
                    _ => false,
                };
                let state = match owed {
                    Some(state) => state,
                    None if retire && replaced => State::Inactive,
                    None => continue,
                };
                let told = on
                    .bring(&Shipped::of(record, deploy), mark.clone(), state)
                    .await;
                on.record(ledger, &record.tag_name, sequence, &told).await;
            }
        }
    }
}

impl On {
    async fn client(&self, repository: &str) -> anyhow::Result<&Client> {
        self.client
            .get_or_try_init(|| async {
                let secret = self.secrets.current().await?;
                let token = match self.settings.app {
                    None => secret,
                    Some(app) => self.installation_token(app, &secret, repository).await?,
                };
                Ok(Client::new(
                    self.http.clone(),
                    self.settings.api_url.clone(),
                    token,
                ))
            })
            .await
    }

    /// The App's token for `repository`, taken with its JWT and limited to that repository and to writing
    /// deployments: what leaks from a run can do no more than the run does.
    async fn installation_token(
        &self,
        app: App,
        key: &Secret,
        repository: &str,
    ) -> anyhow::Result<Secret> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let jwt = app::jwt(app.id, key.reveal(), now).map_err(|e| {
            anyhow::anyhow!("{e} (PROMOTE_GITHUB_TOKEN_SECRET_ARN, PROMOTE_GITHUB_APP_ID)")
        })?;
        let as_app = Client::new(
            self.http.clone(),
            self.settings.api_url.clone(),
            Secret::new(jwt, "the GitHub App's JWT"),
        );
        let installation = match app.installation_id {
            Some(id) => id,
            None => as_app.installation(repository).await?,
        };
        let name = repository.rsplit('/').next().unwrap_or(repository);
        let limits = json!({"repositories": [name], "permissions": {"deployments": "write"}});
        let token = as_app
            .installation_token(installation, repository, &limits)
            .await?;
        Ok(Secret::new(token, "the GitHub App's installation token"))
    }

    /// Tells GitHub that the deploy is in `state`, creating its deployment first if GitHub has none yet;
    /// returns the mark, with `state` owed if GitHub could not be told.
    async fn bring(&self, shipped: &Shipped, mut mark: GithubMark, state: State) -> GithubMark {
        match self.tell(shipped, &mut mark, state).await {
            Ok(id) => {
                tracing::info!(release = %shipped.tag, repository = %mark.repository, deployment = id, state = state.as_str(), "GitHub deployment status posted");
                mark.posted = Some(state.as_str().to_owned());
                mark.owed = None;
            }
            Err(error) => {
                tracing::warn!(
                    release = %shipped.tag, repository = %mark.repository, state = state.as_str(),
                    reason = format!("{error:#}"),
                    "GitHub not told (the promotion is unaffected; it is told on the next report)"
                );
                mark.owed = Some(state.as_str().to_owned());
            }
        }
        mark
    }

    async fn tell(
        &self,
        shipped: &Shipped,
        mark: &mut GithubMark,
        state: State,
    ) -> anyhow::Result<u64> {
        let client = self.client(&mark.repository).await?;
        let id = match mark.deployment_id {
            Some(id) => id,
            None => {
                let id = client
                    .create_deployment(
                        &mark.repository,
                        &deployment::deployment(&self.settings, shipped),
                    )
                    .await?;
                mark.deployment_id = Some(id);
                id
            }
        };
        client
            .create_status(
                &mark.repository,
                id,
                &deployment::status(&self.settings, &shipped.tag, state),
            )
            .await
            .map_err(|Refused(reason)| anyhow::anyhow!("deployment {id}: {reason}"))?;
        Ok(id)
    }

    async fn record(&self, ledger: &Ledger, tag: &str, sequence: u64, mark: &GithubMark) {
        if let Err(error) = ledger.mark_github(tag, sequence, mark).await {
            tracing::warn!(release = %tag, sequence, error = format!("{error:#}"), "cannot record what GitHub was told; it may be told again");
        }
    }
}
