//! Promotion gates: evidence, read before a release is claimed, that its staging image may ship. Each gate
//! is off unless its setting is given, and costs nothing then. What a gate saw is recorded with the release
//! ([`GateRecord`]); a gate that refuses stops the promotion before anything is written ([`Refused`]), unless
//! the run was told to override that gate, which is recorded with who, when and why. A redeploy ships what
//! was promoted already and is never gated.

pub mod vulnerabilities;

use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::registry::{EcrHost, Pointer, Reference};
use vulnerabilities::{Allowed, Judgement, Scans, Severity, VulnerabilityEvidence};

/// The gates this release of ecr-promote knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    /// The staging image's scan findings ([`vulnerabilities`]).
    Vulnerabilities,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Vulnerabilities => "vulnerabilities",
        }
    }
}

impl std::str::FromStr for Gate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "vulnerabilities" => Ok(Gate::Vulnerabilities),
            other => Err(format!(
                "{other:?} is no gate: the gates are vulnerabilities"
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
    pub vulnerabilities: VulnerabilityEvidence,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden: Option<OverrideRecord>,
}

impl GateRecord {
    /// One line for people: the gate, its verdict and what it saw.
    pub fn summary(&self) -> String {
        let evidence = &self.vulnerabilities;
        let counts: Vec<String> = evidence
            .counts
            .iter()
            .map(|(severity, n)| format!("{severity} {n}"))
            .collect();
        let mut line = format!(
            "{} {}: {} at or above {}, scan {}, findings {}",
            self.gate.as_str(),
            match self.verdict {
                Verdict::Pass => "pass",
                Verdict::Overridden => "OVERRIDDEN",
            },
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
        if let Some(o) = &self.overridden {
            line.push_str(&format!(
                "; overridden by {} at {}: {} (refused: {})",
                o.by, self.checked_at, o.reason, o.refusal
            ));
        }
        line
    }
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

/// How often a scan in progress is looked at again.
const SCAN_POLL: Duration = Duration::from_secs(5);

/// Runs the gates, with the clients they read through: built once by the command layer.
pub struct Gatekeeper {
    settings: GateSettings,
    scans: Scans,
    sts: aws_sdk_sts::Client,
    /// Who is running, asked once per run: the same for every override it records.
    caller: tokio::sync::OnceCell<String>,
}

impl Gatekeeper {
    /// `aws`: scans are read where staging's images are (the source role's account when one is set).
    pub fn new(settings: GateSettings, aws: &crate::aws::Aws) -> Gatekeeper {
        Gatekeeper {
            settings,
            scans: Scans::new(aws.for_source()),
            sts: aws_sdk_sts::Client::new(&aws.config),
            caller: tokio::sync::OnceCell::new(),
        }
    }

    /// The verdicts of every gate turned on, for each staging image (`host/repository@sha256:…`) of release
    /// `tag`; [`Refused`] when one refuses and is not overridden. No gate on: no call, nothing recorded.
    pub async fn check(&self, tag: &str, images: &[Reference]) -> Result<Vec<GateRecord>> {
        let Some(gate) = &self.settings.vulnerabilities else {
            return Ok(Vec::new());
        };
        let mut records = Vec::new();
        for image in images {
            let (evidence, refusal) = self.vulnerabilities(gate, image).await?;
            let overridden = match refusal {
                None => None,
                Some(reason) => match &self.settings.override_gate {
                    Some(o) if o.gate == Gate::Vulnerabilities => Some(OverrideRecord {
                        by: self.caller().await?.to_owned(),
                        reason: o.reason.clone(),
                        refusal: reason,
                    }),
                    _ => {
                        return Err(Refused {
                            tag: tag.to_owned(),
                            gate: Gate::Vulnerabilities,
                            reason,
                        }
                        .into());
                    }
                },
            };
            if let Some(o) = &overridden {
                tracing::warn!(release = tag, gate = "vulnerabilities", by = %o.by, reason = %o.reason, refusal = %o.refusal, "gate overridden");
            }
            records.push(GateRecord {
                gate: Gate::Vulnerabilities,
                verdict: if overridden.is_some() {
                    Verdict::Overridden
                } else {
                    Verdict::Pass
                },
                checked_at: crate::timestamp::now(),
                vulnerabilities: evidence,
                overridden,
            });
        }
        Ok(records)
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
