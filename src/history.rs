//! What `history` and `show` print: the ledger as people read it.

use std::fmt::Write as _;

use crate::ledger::Record;

fn short(text: &str, length: usize) -> &str {
    let text = text.strip_prefix("sha256:").unwrap_or(text);
    &text[..text.len().min(length)]
}

/// One line per release, newest first, in aligned columns.
pub fn table(records: &[Record]) -> String {
    let header = [
        "TAG",
        "COMMIT",
        "DIGEST",
        "PROMOTED_AT",
        "LAST_DEPLOYED_AT",
        "PRERELEASE",
    ]
    .map(String::from);
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|r| {
            [
                r.tag_name.clone(),
                short(&r.commit, 7).to_owned(),
                short(&r.digest, 12).to_owned(),
                r.promoted_at.clone(),
                r.last_deployed_at().unwrap_or("-").to_owned(),
                if r.prerelease { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
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
    line("commit", &record.commit);
    line("digest", &record.digest);
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
    line("promoted_at", &record.promoted_at);
    line(
        "published_at",
        record.published_at.as_deref().unwrap_or("-"),
    );
    line("author", record.author.as_deref().unwrap_or("-"));
    line("prerelease", if record.prerelease { "yes" } else { "no" });
    line("html_url", record.html_url.as_deref().unwrap_or("-"));
    line("build", record.build_arn.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "deploys:");
    if record.deploys.is_empty() {
        let _ = writeln!(out, "  none recorded");
    }
    for deploy in &record.deploys {
        let _ = writeln!(
            out,
            "  {}  {:8}  by {}  build {}",
            deploy.deployed_at,
            deploy.kind,
            deploy.initiator.as_deref().unwrap_or("-"),
            deploy.build_arn.as_deref().unwrap_or("-")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Deploy, Image};

    fn record(tag: &str, deployed: Option<&str>) -> Record {
        let digest = format!("sha256:{}", "ab".repeat(32));
        Record {
            tag_name: tag.into(),
            commit: "3f2a9c1e5b7d4c8a9f0e1d2c3b4a5f6e7d8c9b0a".into(),
            digest: digest.clone(),
            source_image: format!("s/api@{digest}"),
            target_image: format!("p/api:{tag}"),
            containers: vec!["api".into()],
            images: vec![Image {
                containers: vec!["api".into()],
                source_image: format!("s/api@{digest}"),
                target_image: format!("p/api:{tag}"),
                digest,
            }],
            promoted_at: "2026-01-01T00:00:00Z".into(),
            release_name: None,
            html_url: None,
            author: None,
            prerelease: tag.contains("rc"),
            published_at: None,
            build_arn: None,
            deliveries: vec![],
            deploys: deployed
                .map(|at| Deploy {
                    deployed_at: at.into(),
                    kind: "redeploy".into(),
                    build_arn: None,
                    initiator: Some("alice".into()),
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn columns_line_up_whatever_the_tag_length() {
        let out = table(&[
            record("v10.20.30-rc.1", Some("2026-02-02T00:00:00Z")),
            record("v1", None),
        ]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        let column = |line: &str| {
            line.find("3f2a9c1")
                .or_else(|| line.find("COMMIT"))
                .unwrap()
        };
        assert!(lines.iter().all(|l| column(l) == column(lines[0])), "{out}");
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
        assert!(release(&record("v1", None)).contains("none recorded"));
    }
}
