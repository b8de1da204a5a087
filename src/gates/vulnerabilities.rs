//! The vulnerability gate: the staging image's ECR scan findings (basic and enhanced scanning) at or above a
//! severity refuse the release, less an allowlist of finding ids, each with an expiry date and a reason.
//!
//! [`judge`] decides from a scan already read, so that it is tested over recorded answers; [`Scans`] reads
//! them from the registry that scanned the image.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// ECR's severities, lowest first. `UNDEFINED` (basic scanning) and `UNTRIAGED` (enhanced) have no rank: they
/// are counted, never blocking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_uppercase().as_str() {
            "INFORMATIONAL" => Ok(Severity::Informational),
            "LOW" => Ok(Severity::Low),
            "MEDIUM" => Ok(Severity::Medium),
            "HIGH" => Ok(Severity::High),
            "CRITICAL" => Ok(Severity::Critical),
            other => Err(format!(
                "{other:?} is no severity: use CRITICAL, HIGH, MEDIUM, LOW or INFORMATIONAL"
            )),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Informational => "INFORMATIONAL",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        })
    }
}

/// One finding of a scan: its id (a CVE, or the vulnerability id enhanced scanning names) and severity as
/// ECR gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub severity: String,
    /// The package it was found in, when the scan says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

impl Finding {
    fn rank(&self) -> Option<Severity> {
        self.severity.parse().ok()
    }
}

/// Where the image's scan stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanStatus {
    Complete,
    /// Not finished yet (ECR's IN_PROGRESS, or PENDING for enhanced scanning): worth waiting for.
    InProgress,
    /// ECR has no scan of the image.
    NotScanned,
    /// Anything else ECR says (FAILED, UNSUPPORTED_IMAGE, …), with its description.
    Other {
        status: String,
        description: String,
    },
}

/// A scan as read from ECR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    pub status: ScanStatus,
    pub findings: Vec<Finding>,
    /// ECR's own count by severity.
    pub counts: BTreeMap<String, u64>,
}

/// A finding id let through until a date, and why.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowed {
    pub id: String,
    /// The last day (UTC) the entry holds: `YYYY-MM-DD`.
    pub expires: String,
    pub reason: String,
}

/// The allowlist file: `[[allow]]` entries of `id`, `expires` and `reason`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistFile {
    #[serde(default)]
    allow: Vec<Allowed>,
}

/// Reads and checks the allowlist: every entry must say why and until when.
pub fn read_allowlist(path: &Path) -> Result<Vec<Allowed>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the vulnerability allowlist {} (PROMOTE_GATE_ALLOWLIST)",
            path.display()
        )
    })?;
    parse_allowlist(&text).with_context(|| {
        format!(
            "the vulnerability allowlist {} (PROMOTE_GATE_ALLOWLIST)",
            path.display()
        )
    })
}

fn parse_allowlist(text: &str) -> Result<Vec<Allowed>> {
    let file: AllowlistFile = toml::from_str(text).map_err(|e| {
        anyhow::anyhow!("{e}; expected [[allow]] entries with id, expires (YYYY-MM-DD) and reason")
    })?;
    for entry in &file.allow {
        if day(&entry.expires).is_none() {
            anyhow::bail!(
                "entry {} expires {:?}, not a date YYYY-MM-DD",
                entry.id,
                entry.expires
            );
        }
        if entry.reason.trim().is_empty() || entry.id.trim().is_empty() {
            anyhow::bail!(
                "entry {:?} has no id or no reason: every allowed finding says why",
                entry.id
            );
        }
    }
    Ok(file.allow)
}

/// `YYYY-MM-DD` as a comparable day.
fn day(text: &str) -> Option<time::Date> {
    let mut parts = text.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
    time::Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()
}

/// What the gate saw, recorded with the release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnerabilityEvidence {
    /// The staging image the findings are of (`repo@sha256:…`).
    pub image: String,
    /// The lowest severity that blocks.
    pub threshold: Severity,
    /// ECR's scan status (COMPLETE, …).
    pub scan_status: String,
    /// ECR's count of findings by severity.
    pub counts: BTreeMap<String, u64>,
    /// Findings at or above the threshold that the allowlist let through, with their entry's expiry.
    #[serde(default)]
    pub allowlisted: Vec<String>,
    /// Findings at or above the threshold, worst first (at most [`NAMED`]).
    #[serde(default)]
    pub blocking: Vec<Finding>,
    /// How many findings block in all.
    #[serde(default)]
    pub blocking_count: usize,
}

/// How many blocking findings the evidence and the refusal name: the worst, so that the message stays one line.
const NAMED: usize = 5;

/// The gate's decision on one scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// No finding at or above the threshold, but for allowlisted ones.
    Pass(VulnerabilityEvidence),
    /// Findings block (or the scan cannot be had): the reason names what failed.
    Refuse {
        evidence: VulnerabilityEvidence,
        reason: String,
    },
    /// The scan has not finished: look again later.
    Wait,
}

/// Judges `scan` of `image` against `threshold`, less the entries of `allowlist` that hold on `today`.
pub fn judge(
    image: &str,
    scan: &Scan,
    threshold: Severity,
    allowlist: &[Allowed],
    today: time::Date,
) -> Judgement {
    let mut evidence = VulnerabilityEvidence {
        image: image.to_owned(),
        threshold,
        scan_status: match &scan.status {
            ScanStatus::Complete => "COMPLETE".to_owned(),
            ScanStatus::InProgress => "IN_PROGRESS".to_owned(),
            ScanStatus::NotScanned => "NOT_SCANNED".to_owned(),
            ScanStatus::Other { status, .. } => status.clone(),
        },
        counts: scan.counts.clone(),
        allowlisted: Vec::new(),
        blocking: Vec::new(),
        blocking_count: 0,
    };
    match &scan.status {
        ScanStatus::Complete => {}
        ScanStatus::InProgress => return Judgement::Wait,
        ScanStatus::NotScanned => {
            return Judgement::Refuse {
                evidence,
                reason: format!(
                    "{image} has no scan: turn on scan on push for the staging repository, or start one \
                     (aws ecr start-image-scan)"
                ),
            };
        }
        ScanStatus::Other {
            status,
            description,
        } => {
            return Judgement::Refuse {
                evidence,
                reason: format!("the scan of {image} is {status}: {description}"),
            };
        }
    }
    let holds = |entry: &Allowed| day(&entry.expires).is_some_and(|last| last >= today);
    let mut blocking: Vec<&Finding> = Vec::new();
    for finding in &scan.findings {
        if finding.rank().is_none_or(|rank| rank < threshold) {
            continue;
        }
        match allowlist
            .iter()
            .find(|entry| entry.id == finding.id && holds(entry))
        {
            Some(entry) => evidence
                .allowlisted
                .push(format!("{} (until {})", finding.id, entry.expires)),
            None => blocking.push(finding),
        }
    }
    evidence.allowlisted.sort();
    evidence.allowlisted.dedup();
    // Worst first; among equals, by id, so that the message is the same on every run.
    blocking.sort_by(|a, b| b.rank().cmp(&a.rank()).then_with(|| a.id.cmp(&b.id)));
    blocking.dedup_by(|a, b| a.id == b.id);
    evidence.blocking_count = blocking.len();
    evidence.blocking = blocking.iter().take(NAMED).map(|f| (*f).clone()).collect();
    if blocking.is_empty() {
        return Judgement::Pass(evidence);
    }
    let named: Vec<String> = evidence
        .blocking
        .iter()
        .map(|f| match &f.package {
            Some(package) => format!("{} {} in {package}", f.severity, f.id),
            None => format!("{} {}", f.severity, f.id),
        })
        .collect();
    let more = match blocking.len().saturating_sub(NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let expired: Vec<&str> = blocking
        .iter()
        .filter(|f| allowlist.iter().any(|entry| entry.id == f.id))
        .map(|f| f.id.as_str())
        .collect();
    let expired = match expired.as_slice() {
        [] => String::new(),
        ids => format!(" (allowlist entries expired for {})", ids.join(", ")),
    };
    Judgement::Refuse {
        reason: format!(
            "{} finding(s) at or above {threshold} in {image}: {}{more}{expired}; fix them in a new release, or \
             allowlist each id with an expiry and a reason (PROMOTE_GATE_ALLOWLIST)",
            blocking.len(),
            named.join(", ")
        ),
        evidence,
    }
}

/// Reads scans from ECR, in the account that scanned the image (staging: with the source role when one is set).
pub struct Scans {
    client: aws_sdk_ecr::Client,
}

impl Scans {
    pub fn new(config: &aws_config::SdkConfig) -> Scans {
        Scans {
            client: aws_sdk_ecr::Client::new(config),
        }
    }

    /// The scan of `digest` in `repository` of registry (account) `registry`, every page of findings read.
    pub async fn read(&self, registry: &str, repository: &str, digest: &str) -> Result<Scan> {
        use aws_sdk_ecr::types::{ImageIdentifier, ScanStatus as Ecr};
        let mut pages = self
            .client
            .describe_image_scan_findings()
            .registry_id(registry)
            .repository_name(repository)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .into_paginator()
            .send();
        let mut scan = Scan {
            status: ScanStatus::Complete,
            findings: Vec::new(),
            counts: BTreeMap::new(),
        };
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_scan_not_found_exception()) =>
                {
                    scan.status = ScanStatus::NotScanned;
                    return Ok(scan);
                }
                Err(error) => {
                    return Err(crate::aws::sdk_error(error)).with_context(|| {
                        format!(
                            "reading the scan findings of {repository}@{digest} in registry {registry}: check \
                             ecr:DescribeImageScanFindings for the staging repository (with PROMOTE_SOURCE_ROLE_ARN \
                             when staging is another account)"
                        )
                    });
                }
            };
            if let Some(status) = page.image_scan_status() {
                scan.status = match status.status() {
                    // ACTIVE: enhanced scanning, scanned and watched continuously.
                    Some(Ecr::Complete | Ecr::Active) => ScanStatus::Complete,
                    Some(Ecr::InProgress | Ecr::Pending) => ScanStatus::InProgress,
                    other => ScanStatus::Other {
                        status: other.map_or("UNKNOWN", |s| s.as_str()).to_owned(),
                        description: status.description().unwrap_or_default().to_owned(),
                    },
                };
            }
            let Some(found) = page.image_scan_findings() else {
                continue;
            };
            if let Some(counts) = found.finding_severity_counts() {
                for (severity, count) in counts {
                    scan.counts.insert(
                        severity.as_str().to_owned(),
                        u64::try_from(*count).unwrap_or(0),
                    );
                }
            }
            scan.findings.extend(found.findings().iter().map(|f| {
                Finding {
                    id: f.name().unwrap_or_default().to_owned(),
                    severity: f.severity().map_or("UNDEFINED", |s| s.as_str()).to_owned(),
                    package: f
                        .attributes()
                        .iter()
                        .find(|a| a.key() == "package_name")
                        .and_then(|a| a.value())
                        .map(str::to_owned),
                }
            }));
            scan.findings
                .extend(found.enhanced_findings().iter().map(|f| {
                    let details = f.package_vulnerability_details();
                    Finding {
                        id: details
                            .and_then(|d| d.vulnerability_id())
                            .or(f.title())
                            .unwrap_or_default()
                            .to_owned(),
                        severity: f.severity().unwrap_or("UNTRIAGED").to_owned(),
                        package: details
                            .and_then(|d| d.vulnerable_packages().first())
                            .and_then(|p| p.name())
                            .map(str::to_owned),
                    }
                }));
        }
        Ok(scan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: &str = "111111111111.dkr.ecr.us-east-1.amazonaws.com/api@sha256:aa";

    fn finding(id: &str, severity: &str) -> Finding {
        Finding {
            id: id.into(),
            severity: severity.into(),
            package: Some("openssl".into()),
        }
    }

    fn complete(findings: Vec<Finding>) -> Scan {
        let mut counts = BTreeMap::new();
        for f in &findings {
            *counts.entry(f.severity.clone()).or_default() += 1;
        }
        Scan {
            status: ScanStatus::Complete,
            findings,
            counts,
        }
    }

    fn today() -> time::Date {
        day("2026-12-04").unwrap()
    }

    #[test]
    fn a_day_reads_as_a_date() {
        assert_eq!(day("2026-12-04").map(|d| d.day()), Some(4));
        assert_eq!(day("2026-13-04"), None);
    }

    fn allowed(id: &str, expires: &str) -> Allowed {
        Allowed {
            id: id.into(),
            expires: expires.into(),
            reason: "not reachable from the API".into(),
        }
    }

    #[test]
    fn findings_below_the_threshold_or_without_a_rank_pass() {
        let scan = complete(vec![
            finding("CVE-1", "MEDIUM"),
            finding("CVE-2", "UNDEFINED"),
            finding("CVE-3", "UNTRIAGED"),
        ]);
        let Judgement::Pass(evidence) = judge(IMAGE, &scan, Severity::High, &[], today()) else {
            panic!("refused");
        };
        assert_eq!(evidence.counts["MEDIUM"], 1);
        assert_eq!(evidence.blocking_count, 0);
    }

    #[test]
    fn a_finding_at_or_above_the_threshold_refuses_naming_the_worst_first() {
        let scan = complete(vec![
            finding("CVE-2026-0002", "HIGH"),
            finding("CVE-2026-0001", "CRITICAL"),
            finding("CVE-2026-0003", "LOW"),
        ]);
        let Judgement::Refuse { evidence, reason } =
            judge(IMAGE, &scan, Severity::High, &[], today())
        else {
            panic!("passed");
        };
        assert_eq!(
            evidence
                .blocking
                .iter()
                .map(|f| f.id.as_str())
                .collect::<Vec<_>>(),
            ["CVE-2026-0001", "CVE-2026-0002"]
        );
        assert!(
            reason.starts_with("2 finding(s) at or above HIGH")
                && reason.contains("CRITICAL CVE-2026-0001 in openssl, HIGH CVE-2026-0002")
                && reason.contains("PROMOTE_GATE_ALLOWLIST"),
            "{reason}"
        );
    }

    #[test]
    fn an_allowlisted_finding_passes_until_its_entry_expires() {
        let scan = complete(vec![finding("CVE-9", "CRITICAL")]);
        let holding = [allowed("CVE-9", "2026-12-04")];
        let Judgement::Pass(evidence) = judge(IMAGE, &scan, Severity::High, &holding, today())
        else {
            panic!("refused");
        };
        assert_eq!(evidence.allowlisted, ["CVE-9 (until 2026-12-04)"]);

        let expired = [allowed("CVE-9", "2026-12-03")];
        let Judgement::Refuse { reason, .. } =
            judge(IMAGE, &scan, Severity::High, &expired, today())
        else {
            panic!("an expired entry let it through");
        };
        assert!(
            reason.contains("allowlist entries expired for CVE-9"),
            "{reason}"
        );
    }

    #[test]
    fn a_scan_in_progress_waits_and_a_missing_or_failed_one_refuses() {
        let mut scan = complete(Vec::new());
        scan.status = ScanStatus::InProgress;
        assert_eq!(
            judge(IMAGE, &scan, Severity::High, &[], today()),
            Judgement::Wait
        );
        scan.status = ScanStatus::NotScanned;
        let Judgement::Refuse { reason, .. } = judge(IMAGE, &scan, Severity::High, &[], today())
        else {
            panic!("passed without a scan");
        };
        assert!(reason.contains("has no scan"), "{reason}");
        scan.status = ScanStatus::Other {
            status: "UNSUPPORTED_IMAGE".into(),
            description: "the image's OS is not supported".into(),
        };
        let Judgement::Refuse { reason, .. } = judge(IMAGE, &scan, Severity::High, &[], today())
        else {
            panic!("passed an unsupported image");
        };
        assert!(reason.contains("UNSUPPORTED_IMAGE"), "{reason}");
    }

    #[test]
    fn only_five_findings_are_named_and_the_rest_counted() {
        let scan = complete(
            (0..8)
                .map(|i| finding(&format!("CVE-{i}"), "HIGH"))
                .collect(),
        );
        let Judgement::Refuse { evidence, reason } =
            judge(IMAGE, &scan, Severity::High, &[], today())
        else {
            panic!("passed");
        };
        assert_eq!((evidence.blocking.len(), evidence.blocking_count), (5, 8));
        assert!(reason.contains("and 3 more"), "{reason}");
    }

    #[test]
    fn the_allowlist_must_say_why_and_until_when() {
        let good = "[[allow]]\nid = \"CVE-1\"\nexpires = \"2027-01-31\"\nreason = \"no shell in the image\"\n";
        assert_eq!(parse_allowlist(good).unwrap().len(), 1);
        for (bad, says) in [
            (
                "[[allow]]\nid = \"CVE-1\"\nexpires = \"soon\"\nreason = \"x\"\n",
                "not a date",
            ),
            (
                "[[allow]]\nid = \"CVE-1\"\nexpires = \"2027-01-31\"\nreason = \" \"\n",
                "says why",
            ),
            ("[[allow]]\nid = \"CVE-1\"\nreason = \"x\"\n", "expires"),
        ] {
            let error = format!("{:#}", parse_allowlist(bad).unwrap_err());
            assert!(error.contains(says), "{error}");
        }
    }

    #[test]
    fn severities_read_in_any_case_and_rank() {
        assert_eq!("high".parse::<Severity>(), Ok(Severity::High));
        assert!(Severity::Critical > Severity::High);
        assert!(
            "severe"
                .parse::<Severity>()
                .unwrap_err()
                .contains("CRITICAL")
        );
    }
}
