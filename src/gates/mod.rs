//! Promotion gates: evidence, read before a release is claimed, that its staging image may ship. Each gate
//! is off unless its setting is given, and costs nothing then. What a gate saw is recorded with the release
//! ([`GateRecord`]); a gate that refuses stops the promotion before anything is written ([`Refused`]), unless
//! the run was told to override that gate, which is recorded with who, when and why. A redeploy ships what
//! was promoted already and is never gated.

pub mod soak;
pub mod staging;
pub mod vulnerabilities;

use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::registry::{EcrHost, Pointer, Reference};
use soak::SoakEvidence;
use staging::Staging;
use vulnerabilities::{Allowed, Judgement, Scans, Severity, VulnerabilityEvidence};

/// The gates this release of ecr-promote knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    /// The staging image's scan findings ([`vulnerabilities`]).
    Vulnerabilities,
    /// What staging's ECS service ran, healthy, for how long, and its alarms ([`soak`]).
    Soak,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Vulnerabilities => "vulnerabilities",
            Gate::Soak => "soak",
        }
    }
}

impl std::str::FromStr for Gate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "vulnerabilities" => Ok(Gate::Vulnerabilities),
            "soak" => Ok(Gate::Soak),
            other => Err(format!(
                "{other:?} is no gate: the gates are vulnerabilities and soak"
            )),
        }
    }
}

/// The vulnerability gate's settings.
#[derive(Clone, Debug)]
pub struct VulnerabilityGate {
    pub threshold: Severity,
    pub allowlist: Vec<Allowed>,
    /// How long to wait for a scan still in progress before leaving the release for a later run.
    pub scan_wait: Duration,
}

/// The staging soak gate's settings.
#[derive(Clone, Debug)]
pub struct SoakGate {
    /// How long staging must have run the image, healthy.
    pub soak: Duration,
    pub cluster: String,
    pub service: String,
    /// CloudWatch alarms in staging that must be OK.
    pub alarms: Vec<String>,
    /// The role in the staging account that may describe the service and its alarms; none: the caller's own.
    pub read_role: Option<String>,
}

/// Promote past a failing gate: for a person who has looked at the evidence and decided.
#[derive(Clone, Debug)]
pub struct Override {
    pub gate: Gate,
    pub reason: String,
}

/// Which gates a promotion passes through.
#[derive(Clone, Debug, Default)]
pub struct GateSettings {
    pub vulnerabilities: Option<VulnerabilityGate>,
    pub soak: Option<SoakGate>,
    pub override_gate: Option<Override>,
}

/// A gate's verdict as recorded: it passed, or it refused and was overridden.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Overridden,
}

/// Who overrode a gate, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideRecord {
    /// The caller's identity (STS GetCallerIdentity's ARN).
    pub by: String,
    pub reason: String,
    /// What the gate refused.
    pub refusal: String,
}

/// One gate's verdict on one image of a release, with what it saw: recorded in the ledger when the release is
/// claimed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRecord {
    pub gate: Gate,
    pub verdict: Verdict,
    /// RFC 3339 UTC.
    pub checked_at: String,
    /// The vulnerability gate's evidence; each record holds its own gate's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vulnerabilities: Option<VulnerabilityEvidence>,
    /// The soak gate's evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden: Option<OverrideRecord>,
}

/// What one gate saw of one image.
enum Evidence {
    Vulnerabilities(VulnerabilityEvidence),
    Soak(SoakEvidence),
}

impl GateRecord {
    /// The staging image the evidence is of, `repo@sha256:…`.
    pub fn image(&self) -> &str {
        match (&self.vulnerabilities, &self.soak) {
            (Some(v), _) => &v.image,
            (None, Some(s)) => &s.image,
            (None, None) => "",
        }
    }

    /// One line for people: the gate, its verdict and what it saw.
    pub fn summary(&self) -> String {
        let verdict = match self.verdict {
            Verdict::Pass => "pass",
            Verdict::Overridden => "OVERRIDDEN",
        };
        let mut line = format!("{} {verdict}: ", self.gate.as_str());
        if let Some(evidence) = &self.vulnerabilities {
            line.push_str(&vulnerabilities_summary(evidence));
        }
        if let Some(evidence) = &self.soak {
            line.push_str(&evidence.summary());
        }
        if let Some(o) = &self.overridden {
            line.push_str(&format!(
                "; overridden by {} at {}: {} (refused: {})",
                o.by, self.checked_at, o.reason, o.refusal
            ));
        }
        line
    }
}

fn vulnerabilities_summary(evidence: &VulnerabilityEvidence) -> String {
    let counts: Vec<String> = evidence
        .counts
        .iter()
        .map(|(severity, n)| format!("{severity} {n}"))
        .collect();
    let mut line = format!(
        "{} at or above {}, scan {}, findings {}",
        evidence.image,
        evidence.threshold,
        evidence.scan_status,
        if counts.is_empty() {
            "none".to_owned()
        } else {
            counts.join(", ")
        }
    );
    if !evidence.allowlisted.is_empty() {
        line.push_str(&format!(
            "; allowlisted {}",
            evidence.allowlisted.join(", ")
        ));
    }
    line
}

/// A gate refused the release: nothing was written. The reason names the evidence that failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "release {tag} refused by the {} gate: {reason} (a person who has weighed it may promote past it with \
     --override-gate {} --override-reason TEXT)", gate.as_str(), gate.as_str()
)]
pub struct Refused {
    pub tag: String,
    pub gate: Gate,
    pub reason: String,
}

/// A gate that cannot pass yet but may later (staging has not run the image for the soak time yet): nothing was
/// written; judge the release again at `until`.
#[derive(Debug, thiserror::Error)]
#[error("release {tag} waits for the {} gate until {}: {evidence}", gate.as_str(), crate::timestamp::time_text(*until))]
pub struct NotYet {
    pub tag: String,
    pub gate: Gate,
    pub until: std::time::SystemTime,
    /// What the gate saw, in one line.
    pub evidence: String,
}

/// How often a scan in progress is looked at again.
const SCAN_POLL: Duration = Duration::from_secs(5);

/// Runs the gates, with the clients they read through: built once by the command layer.
pub struct Gatekeeper {
    settings: GateSettings,
    scans: Scans,
    /// The staging service the soak gate reads, when it is on.
    staging: Option<Staging>,
    sts: aws_sdk_sts::Client,
    /// Who is running, asked once per run: the same for every override it records.
    caller: tokio::sync::OnceCell<String>,
}

impl Gatekeeper {
    /// `aws`: scans are read where staging's images are (the source role's account when one is set); the
    /// staging service with the staging read role when one is set.
    pub async fn new(settings: GateSettings, aws: &crate::aws::Aws) -> Gatekeeper {
        let staging = match &settings.soak {
            Some(gate) => {
                let config = match &gate.read_role {
                    Some(role) => crate::aws::assume_role(&aws.config, role).await,
                    None => aws.config.clone(),
                };
                Some(Staging::new(&config, &gate.cluster, &gate.service))
            }
            None => None,
        };
        Gatekeeper {
            settings,
            scans: Scans::new(aws.for_source()),
            staging,
            sts: aws_sdk_sts::Client::new(&aws.config),
            caller: tokio::sync::OnceCell::new(),
        }
    }

    /// The verdicts of every gate turned on, for each staging image (`host/repository@sha256:…`) of release
    /// `tag`; [`Refused`] when one refuses and is not overridden, [`NotYet`] when one must be asked again
    /// later. No gate on: no call, nothing recorded.
    pub async fn check(&self, tag: &str, images: &[Reference]) -> Result<Vec<GateRecord>> {
        let mut records = Vec::new();
        if let Some(gate) = &self.settings.vulnerabilities {
            for image in images {
                let (evidence, refusal) = self.vulnerabilities(gate, image).await?;
                records.push(
                    self.verdict(
                        tag,
                        Gate::Vulnerabilities,
                        Evidence::Vulnerabilities(evidence),
                        refusal,
                    )
                    .await?,
                );
            }
        }
        if let (Some(gate), Some(staging)) = (&self.settings.soak, &self.staging) {
            // One read of the service for every image of the release.
            let service = staging.read(&gate.alarms).await?;
            let now = time::OffsetDateTime::now_utc();
            let mut waiting: Option<NotYet> = None;
            for image in images {
                let Pointer::Digest(digest) = &image.pointer else {
                    anyhow::bail!("the soak gate needs the staging image by digest, not {image}");
                };
                let seen = staging.observe(&service, &digest.to_string()).await?;
                let (evidence, refusal) =
                    match soak::judge(&image.to_string(), &seen, gate.soak, now) {
                        soak::Judgement::Pass(evidence) => (evidence, None),
                        soak::Judgement::Refuse { evidence, reason } => (evidence, Some(reason)),
                        soak::Judgement::Wait { evidence, until } => {
                            let until = std::time::SystemTime::from(until);
                            let overridden = self
                                .settings
                                .override_gate
                                .as_ref()
                                .is_some_and(|o| o.gate == Gate::Soak);
                            if !overridden {
                                // The latest of the images' ends: the release waits for all of them.
                                if waiting.as_ref().is_none_or(|w| w.until < until) {
                                    waiting = Some(NotYet {
                                        tag: tag.to_owned(),
                                        gate: Gate::Soak,
                                        until,
                                        evidence: evidence.summary(),
                                    });
                                }
                                continue;
                            }
                            let reason = format!(
                                "the soak had not ended: {} until {}",
                                evidence.summary(),
                                crate::timestamp::time_text(until)
                            );
                            (evidence, Some(reason))
                        }
                    };
                records.push(
                    self.verdict(tag, Gate::Soak, Evidence::Soak(evidence), refusal)
                        .await?,
                );
            }
            if let Some(waiting) = waiting {
                return Err(waiting.into());
            }
        }
        Ok(records)
    }

    /// The record of one gate's evidence on one image: passed, or refused and overridden; [`Refused`] when it
    /// refused and the run may not override it.
    async fn verdict(
        &self,
        tag: &str,
        gate: Gate,
        evidence: Evidence,
        refusal: Option<String>,
    ) -> Result<GateRecord> {
        let overridden = match refusal {
            None => None,
            Some(reason) => match &self.settings.override_gate {
                Some(o) if o.gate == gate => Some(OverrideRecord {
                    by: self.caller().await?.to_owned(),
                    reason: o.reason.clone(),
                    refusal: reason,
                }),
                _ => {
                    return Err(Refused {
                        tag: tag.to_owned(),
                        gate,
                        reason,
                    }
                    .into());
                }
            },
        };
        if let Some(o) = &overridden {
            tracing::warn!(release = tag, gate = gate.as_str(), by = %o.by, reason = %o.reason, refusal = %o.refusal, "gate overridden");
        }
        let (vulnerabilities, soak) = match evidence {
            Evidence::Vulnerabilities(v) => (Some(v), None),
            Evidence::Soak(s) => (None, Some(s)),
        };
        Ok(GateRecord {
            gate,
            verdict: if overridden.is_some() {
                Verdict::Overridden
            } else {
                Verdict::Pass
            },
            checked_at: crate::timestamp::now(),
            vulnerabilities,
            soak,
            overridden,
        })
    }

    /// The vulnerability gate on one image: its evidence, and the refusal if it refuses. A scan in progress is
    /// waited for, up to the setting.
    async fn vulnerabilities(
        &self,
        gate: &VulnerabilityGate,
        image: &Reference,
    ) -> Result<(VulnerabilityEvidence, Option<String>)> {
        let Pointer::Digest(digest) = &image.pointer else {
            anyhow::bail!("the vulnerability gate needs the staging image by digest, not {image}");
        };
        let registry = EcrHost::parse(&image.host).with_context(|| {
            format!(
                "the vulnerability gate reads ECR's scan findings, but {} is no ECR registry host \
                 (<account>.dkr.ecr.<region>.amazonaws.com): turn PROMOTE_GATE_VULNERABILITIES off for it",
                image.host
            )
        })?;
        let started = tokio::time::Instant::now();
        loop {
            let scan = self
                .scans
                .read(&registry.account, &image.repository, &digest.to_string())
                .await?;
            let today = time::OffsetDateTime::now_utc().date();
            match vulnerabilities::judge(
                &image.to_string(),
                &scan,
                gate.threshold,
                &gate.allowlist,
                today,
            ) {
                Judgement::Pass(evidence) => return Ok((evidence, None)),
                Judgement::Refuse { evidence, reason } => return Ok((evidence, Some(reason))),
                Judgement::Wait if started.elapsed() < gate.scan_wait => {
                    tracing::info!(image = %image, "scan in progress: waiting for its findings");
                    tokio::time::sleep(SCAN_POLL).await;
                }
                Judgement::Wait => anyhow::bail!(
                    "the scan of {image} is still in progress after {}: the release waits for a later run \
                     (PROMOTE_GATE_SCAN_WAIT sets how long a run waits)",
                    humantime::format_duration(gate.scan_wait)
                ),
            }
        }
    }

    /// Who is running: recorded with an override.
    async fn caller(&self) -> Result<&str> {
        let caller = self
            .caller
            .get_or_try_init(|| async {
                let identity = self
                    .sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(crate::aws::sdk_error)
                    .context("asking STS who overrides the gate (sts:GetCallerIdentity)")?;
                anyhow::Ok(identity.arn().unwrap_or("(unknown caller)").to_owned())
            })
            .await?;
        Ok(caller)
    }
}
