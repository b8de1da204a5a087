//! What production runs, checked against what was released: each deployment of the ECS service, the image
//! its task definition gives each container, the digests its running tasks report, matched to the recorded
//! release they belong to and compared with the ledger and with the production registry.
//!
//! Reading and judging are apart: `ecs` reads the service (its deployments, task definitions and tasks),
//! `production` reads the production registry, and `judge` ([`report`]) decides from answers already
//! fetched, so that it is tested over recorded ECS answers (the local world's ECS reports no running
//! digests). [`check`] fetches, then judges.

use anyhow::Result;

use crate::ledger::Ledger;
use crate::registry::Connector;

mod ecs;
mod judge;
mod production;

pub use ecs::{ContainerDefinition, Deployment, Ecs, Service, Task, TaskContainer, TaskDefinition};
pub use judge::{
    Check, ContainerStatus, DeploymentStatus, MatchedBy, ReleaseFacts, Running, StatusReport,
    release_images, releases_in, report,
};
pub use production::Production;
use production::production_of;

/// What runs in production, or what a release tag holds, is not what was released: each finding names the
/// container or release and the image at fault. The report with every finding has been printed already.
#[derive(Debug, thiserror::Error)]
#[error("drift: {}{}", findings.first().map(String::as_str).unwrap_or("(no finding)"),
        match findings.len() { 0 | 1 => String::new(), n => format!(" (and {} more above)", n - 1) })]
pub struct Drift {
    pub findings: Vec<String>,
}

impl Drift {
    /// The drift among `findings`, if there is any.
    pub fn in_findings(findings: &[String]) -> Result<(), Drift> {
        if findings.is_empty() {
            Ok(())
        } else {
            Err(Drift {
                findings: findings.to_vec(),
            })
        }
    }
}

/// Fetches what ECS, the ledger and the production registry say, and reports.
pub async fn check(
    ecs: &Ecs,
    ledger: &Ledger,
    connector: &Connector,
    cluster: &str,
    service: &str,
) -> Result<StatusReport> {
    let (service, releases) = tokio::try_join!(ecs.service(cluster, service), ledger.releases())?;
    let production = production_of(connector, &release_images(&service, &releases.records)).await?;
    Ok(report(&service, &releases, &production))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_says_the_first_finding_and_how_many_more() {
        let drift = Drift {
            findings: vec![
                "container api runs x".into(),
                "container worker runs y".into(),
            ],
        };
        assert_eq!(
            drift.to_string(),
            "drift: container api runs x (and 1 more above)"
        );
    }
}
