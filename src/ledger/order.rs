//! Which release came last: the one deployed last (what production runs), and the order `history` lists
//! promotions in. Order follows what happened, never the order the table lists items in.

use super::record::{Record, ReleaseState};
use crate::timestamp::Timestamp;

/// Of `records`, the completed release deployed last: what production runs unless someone changed it outside
/// ecr-promote. After a rollback that is the release rolled back to. A promotion that was never deployed (an
/// older release promoted in the same run as a newer one) is no deploy. Deploys recorded before they carried
/// a sequence tie only within a second; such a tie goes to the release published later. A release whose last
/// deploy failed in ECS (or was rolled back) is passed over: production does not run it, and deploying it again
/// unasked would fail again.
pub fn last_shipped(records: &[Record]) -> Option<&Record> {
    records
        .iter()
        .filter(|r| r.state == ReleaseState::Done && !r.last_deploy_failed())
        .filter_map(|r| Some((r.last_deploy()?.order(), r.precedence(), r)))
        .max_by(|a, b| {
            (&a.0, &a.1)
                .cmp(&(&b.0, &b.1))
                // Nothing tells them apart: one answer whatever order the table listed them in.
                .then_with(|| a.2.tag_name.cmp(&b.2.tag_name))
        })
        .map(|(_, _, record)| record)
}

/// The order `history` lists records in, newest first: claims not yet completed (no promotion time) first of
/// all, then by promotion time as an instant, then, within one second, the release published later first (a
/// run promotes the releases it reads oldest first, so that is the one promoted later).
pub(super) fn newest_first(a: &Record, b: &Record) -> std::cmp::Ordering {
    let when = |r: &Record| {
        (
            r.promoted_at.is_none(),
            r.promoted_at
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok()),
            r.precedence(),
        )
    };
    when(b)
        .cmp(&when(a))
        .then_with(|| b.tag_name.cmp(&a.tag_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Deploy, DeployKind, example};
    use proptest::strategy::Strategy;

    /// A done release of `tag`, published at second `published` of a day, never deployed.
    fn published(tag: &str, published: u32) -> Record {
        let mut record = example(tag);
        record.published_at = Some(format!("2026-01-01T00:00:{published:02}Z").parse().unwrap());
        record
    }

    fn deploy(sequence: Option<u64>, at: &str) -> Deploy {
        Deploy {
            sequence,
            deployed_at: at.into(),
            kind: DeployKind::Promote,
            build_arn: None,
            initiator: None,
            outcome: None,
            github: None,
        }
    }

    proptest::proptest! {
        /// Whatever the deploy times (many in one second) and the order the table lists records in, the release
        /// chosen as deployed last is the one whose deploy was recorded last; a release only promoted, however
        /// late, is never chosen.
        #[test]
        fn the_release_deployed_last_is_chosen_whatever_the_times_and_list_order(
            deployed in proptest::collection::vec(0usize..4, 1..12),
            steps in proptest::collection::vec(0u64..2, 12),
            listed in proptest::strategy::Just((0..5).collect::<Vec<usize>>()).prop_shuffle(),
        ) {
            let mut records: Vec<Record> = (0..5).map(|i| published(&format!("v1.{i}.0"), i as u32)).collect();
            // Release 4 is promoted after every deploy but never deployed.
            records[4].promoted_at = Some("2026-01-02T00:00:00Z".into());
            let mut second = 0;
            for (index, (&release, step)) in deployed.iter().zip(&steps).enumerate() {
                second += step;
                records[release].deploys.push(deploy(
                    Some(index as u64 + 1),
                    &format!("2026-01-01T00:01:{second:02}Z"),
                ));
            }
            let listed: Vec<Record> = listed.iter().map(|&i| records[i].clone()).collect();
            let chosen = last_shipped(&listed).map(|r| r.tag_name.clone());
            proptest::prop_assert_eq!(chosen, Some(format!("v1.{}.0", deployed.last().unwrap())));
        }
    }

    #[test]
    fn a_release_whose_last_deploy_failed_is_passed_over_until_it_is_deployed_again() {
        use crate::ledger::{Outcome, OutcomeState};
        let ended = |state, sequence| {
            let mut deploy = deploy(Some(sequence), "2026-01-01T00:01:00Z");
            deploy.outcome = Some(Outcome {
                state,
                deployment_id: format!("ecs-svc/{sequence}"),
                at: "2026-01-01T00:02:00Z".into(),
                reason: None,
                rolled_back_to: None,
            });
            deploy
        };
        let mut older = published("v1.0.0", 1);
        let mut newer = published("v1.1.0", 2);
        older.deploys = vec![ended(OutcomeState::Completed, 1)];
        for failure in [OutcomeState::Failed, OutcomeState::RolledBack] {
            newer.deploys = vec![ended(failure, 2)];
            let records = [older.clone(), newer.clone()];
            assert_eq!(last_shipped(&records).unwrap().tag_name, "v1.0.0");
        }
        // Still rolling out, or deployed again and completed: chosen as before.
        newer.deploys = vec![ended(OutcomeState::InProgress, 2)];
        assert_eq!(
            last_shipped(&[older.clone(), newer.clone()])
                .unwrap()
                .tag_name,
            "v1.1.0"
        );
        newer.deploys = vec![
            ended(OutcomeState::Failed, 2),
            ended(OutcomeState::Completed, 3),
        ];
        assert_eq!(last_shipped(&[older, newer]).unwrap().tag_name, "v1.1.0");
    }

    #[test]
    fn deploys_recorded_before_sequences_order_by_time_then_by_publication() {
        let mut older = published("v1.0.0", 1);
        let mut newer = published("v1.1.0", 2);
        older.deploys = vec![deploy(None, "2026-01-01T00:01:00Z")];
        newer.deploys = vec![deploy(None, "2026-01-01T00:01:00Z")];
        for listed in [
            vec![older.clone(), newer.clone()],
            vec![newer.clone(), older.clone()],
        ] {
            assert_eq!(last_shipped(&listed).unwrap().tag_name, "v1.1.0");
        }
        // A later time wins over publication; a numbered deploy wins over any deploy recorded before numbering.
        older.deploys.push(deploy(None, "2026-01-01T00:01:01Z"));
        assert_eq!(
            last_shipped(&[newer.clone(), older.clone()])
                .unwrap()
                .tag_name,
            "v1.0.0"
        );
        newer.deploys.push(deploy(Some(1), "2026-01-01T00:00:59Z"));
        assert_eq!(last_shipped(&[older, newer]).unwrap().tag_name, "v1.1.0");
    }

    #[test]
    fn history_lists_promotions_of_one_second_published_later_first_and_fractions_as_instants() {
        let mut records = vec![
            published("v1.0.0", 1),
            published("v1.2.0", 3),
            published("v1.1.0", 2),
        ];
        for record in &mut records {
            record.promoted_at = Some("2026-01-01T00:05:00Z".into());
        }
        let mut later = published("v0.9.0", 0);
        later.promoted_at = Some("2026-01-01T00:05:00.5Z".into());
        records.push(later);
        records.sort_by(newest_first);
        let tags: Vec<&str> = records.iter().map(|r| r.tag_name.as_str()).collect();
        assert_eq!(tags, ["v0.9.0", "v1.2.0", "v1.1.0", "v1.0.0"]);
    }
}
