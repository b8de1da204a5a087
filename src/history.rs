//! What `history` and `show` print: the ledger as people read it.

use std::fmt::Write as _;

use crate::ledger::{Record, Releases, Unreadable};

pub fn short(text: &str, length: usize) -> &str {
    &text[..text.len().min(length)]
}

/// Every release for scripts: the records, then each unreadable item as `{tag_name, state: "unreadable",
/// problem}`.
pub fn json(releases: &Releases) -> serde_json::Result<String> {
    let mut entries = Vec::new();
    for record in &releases.records {
        entries.push(serde_json::to_value(record)?);
    }
    for item in &releases.unreadable {
        entries.push(serde_json::json!({"tag_name": item.tag, "state": "unreadable", "problem": item.problem}));
    }
    serde_json::to_string_pretty(&entries)
}

/// One line per release, newest first, in aligned columns; unreadable items last, each with what is wrong.
pub fn table(releases: &Releases) -> String {
    let header = [
        "TAG",
        "STATE",
        "COMMIT",
        "DIGEST",
        "PROMOTED_AT",
        "LAST_DEPLOYED_AT",
        "OUTCOME",
        "PRERELEASE",
    ]
    .map(String::from);
    let mut rows: Vec<[String; 8]> = releases
        .records
        .iter()
        .map(|r| {
            [
                r.tag_name.clone(),
                r.state.as_str().to_owned(),
                short(&r.commit, 7).to_owned(),
                r.digest.short().to_owned(),
                r.promoted_at.clone().unwrap_or_else(|| "-".into()),
                r.last_deployed_at().unwrap_or("-").to_owned(),
                outcome_cell(r),
                if r.prerelease { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    rows.extend(releases.unreadable.iter().map(unreadable_row));
    let mut out = columns(&std::iter::once(header).chain(rows).collect::<Vec<_>>());
    for item in &releases.unreadable {
        let _ = writeln!(out, "unreadable {}: {}", item.tag, item.problem);
    }
    out
}

/// How the release's last deploy ended in ECS: `completed`, `failed`, `rolled_back:v1.1.0`, `in_progress`,
/// or `-` when not known.
fn outcome_cell(record: &Record) -> String {
    match record.last_deploy().and_then(|d| d.outcome.as_ref()) {
        None => "-".to_owned(),
        Some(outcome) => match &outcome.rolled_back_to {
            Some(to) => format!("{}:{to}", outcome.state.as_str()),
            None => outcome.state.as_str().to_owned(),
        },
    }
}

/// The row of an item that is not a record, in a table whose first two columns are the tag and the state:
/// its tag, `unreadable`, and `-` elsewhere.
pub fn unreadable_row<const N: usize>(item: &Unreadable) -> [String; N] {
    std::array::from_fn(|i| match i {
        0 => item.tag.clone(),
        1 => "unreadable".to_owned(),
        _ => "-".to_owned(),
    })
}

/// Rows (the header first) in columns aligned by padding, one line each, without trailing blanks.
pub fn columns<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .as_ref()
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// One release in full, with its deploy history.
pub fn release(record: &Record) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: &str| {
        let _ = writeln!(out, "{name:14} {value}");
    };
    line("tag", &record.tag_name);
    line("state", record.state.as_str());
    line("commit", &record.commit);
    line("digest", &record.digest.to_string());
    if let Some(name) = &record.release_name {
        line("name", name);
    }
    for image in &record.images {
        line(
            "image",
            &format!(
                "{} ← {} ({})",
                image.target_image,
                image.source_image,
                image.containers.join(", ")
            ),
        );
    }
    line("promoted_at", record.promoted_at.as_deref().unwrap_or("-"));
    let published = record.published_at.map(|p| p.to_string());
    line("published_at", published.as_deref().unwrap_or("-"));
    line("author", record.author.as_deref().unwrap_or("-"));
    line("prerelease", if record.prerelease { "yes" } else { "no" });
    line("html_url", record.html_url.as_deref().unwrap_or("-"));
    line("repository", record.repository.as_deref().unwrap_or("-"));
    line("build", record.build_arn.as_deref().unwrap_or("-"));
    for gate in &record.gates {
        line("gate", &gate.summary());
    }
    let _ = writeln!(out, "deploys:");
    if record.deploys.is_empty() {
        let _ = writeln!(out, "  none recorded");
    }
    for deploy in &record.deploys {
        // One line a deploy, its outcome at the end once known.
        let outcome = deploy
            .outcome
            .as_ref()
            .map(|o| format!("  outcome: {}", o.summary()));
        let _ = writeln!(
            out,
            "  {}  {:8}  by {}  build {}{}",
            deploy.deployed_at,
            deploy.kind.as_str(),
            deploy.initiator.as_deref().unwrap_or("-"),
            deploy.build_arn.as_deref().unwrap_or("-"),
            outcome.unwrap_or_default()
        );
        if let Some(github) = &deploy.github {
            let _ = writeln!(out, "    github  {}", github_line(github));
        }
    }
    out
}

/// What GitHub was told of a deploy, and what it is still owed.
fn github_line(mark: &crate::ledger::GithubMark) -> String {
    let deployment = match mark.deployment_id {
        Some(id) => format!("deployment {id} in {}", mark.repository),
        None => format!("no deployment yet in {}", mark.repository),
    };
    let owed = match &mark.owed {
        Some(state) => format!(" (owed: {state})"),
        None => String::new(),
    };
    format!(
        "{deployment}: {}{owed}",
        mark.posted.as_deref().unwrap_or("nothing told")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Deploy, DeployKind, ReleaseState, Unreadable};

    fn record(tag: &str, deployed: Option<&str>) -> Record {
        let mut record = crate::ledger::example(tag);
        record.prerelease = tag.contains("rc");
        record.deploys = deployed
            .map(|at| Deploy {
                sequence: None,
                deployed_at: at.into(),
                kind: DeployKind::Redeploy,
                build_arn: None,
                initiator: Some("alice".into()),
                outcome: None,
                github: None,
            })
            .into_iter()
            .collect();
        record
    }

    #[test]
    fn columns_line_up_whatever_the_tag_length() {
        let mut pending = record("v2", None);
        pending.state = ReleaseState::Pending;
        pending.promoted_at = None;
        let out = table(&Releases {
            records: vec![
                record("v10.20.30-rc.1", Some("2026-02-02T00:00:00Z")),
                record("v1", None),
                pending,
            ],
            unreadable: vec![Unreadable {
                table: "t".into(),
                tag: "v9".into(),
                problem: "field commit is missing".into(),
            }],
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 6, "{out}");
        assert!(
            lines[3].starts_with("v2") && lines[3].contains("pending"),
            "{out}"
        );
        assert!(
            lines[4].starts_with("v9") && lines[4].contains("unreadable"),
            "{out}"
        );
        assert_eq!(lines[5], "unreadable v9: field commit is missing", "{out}");
        let column = |line: &str| {
            line.find("3f2a9c1")
                .or_else(|| line.find("COMMIT"))
                .unwrap()
        };
        assert!(
            lines[..4].iter().all(|l| column(l) == column(lines[0])),
            "{out}"
        );
        assert!(
            lines[1].contains("ababababab")
                && lines[1].contains("2026-02-02T00:00:00Z")
                && lines[1].ends_with("yes"),
            "{out}"
        );
        assert!(
            lines[2].contains(" - ") && lines[2].ends_with("no"),
            "{out}"
        );
    }

    #[test]
    fn a_release_shows_its_deploys() {
        let out = release(&record("v1", Some("2026-02-02T00:00:00Z")));
        assert!(
            out.contains("2026-02-02T00:00:00Z  redeploy  by alice"),
            "{out}"
        );
        assert!(!out.contains("outcome"), "{out}");
        assert!(release(&record("v1", None)).contains("none recorded"));
        let shown = release(&crate::ledger::full());
        assert!(
            shown.contains(
                "  outcome: rolled back to v0 2026-01-02T00:05:00Z (ecs-svc/1234567890): ECS deployment \
                 circuit breaker"
            ),
            "{shown}"
        );
        let listed = table(&Releases {
            records: vec![crate::ledger::full()],
            unreadable: Vec::new(),
        });
        assert!(listed.contains(" rolled_back:v0 "), "{listed}");
    }

    #[test]
    fn a_deploy_shows_what_github_was_told_and_is_owed() {
        let shown = release(&crate::ledger::full());
        assert!(
            shown.contains("    github  deployment 42 in o/r: in_progress (owed: success)"),
            "{shown}"
        );
        assert!(shown.contains("repository     o/r"), "{shown}");
    }

    #[test]
    fn show_prints_each_gate_s_verdict_and_evidence() {
        let shown = release(&crate::ledger::full());
        let gate = shown
            .lines()
            .find(|l| l.starts_with("gate "))
            .unwrap_or_else(|| panic!("no gate line: {shown}"));
        for said in [
            "vulnerabilities OVERRIDDEN",
            "s/api@sha256:1 at or above HIGH",
            "CRITICAL 1, LOW 3",
            "allowlisted CVE-2026-0002 (until 2027-01-31)",
            "overridden by arn:aws:sts::222222222222:assumed-role/oncall/alice",
            "hotfix; the finding is in an unused package",
        ] {
            assert!(gate.contains(said), "says {said}: {gate}");
        }
        assert!(!release(&crate::ledger::example("v1")).contains("gate "));
    }
}
