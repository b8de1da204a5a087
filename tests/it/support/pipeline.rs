//! The production pipeline's CodeBuild step in miniature: a world, the release queue with its
//! dead-letter queue, the ledger table, a folder for the deploy files, and the settings that point
//! `ecr-promote run` and `ecr-promote promote` at them.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

use super::aws::{Counts, Queue, Table};
use super::github::{AUTHOR, Envelope, ReleaseEvent};
use super::registry::Request;
use super::{
    COMMIT, Flavour, Image, OTHER_COMMIT, Outcome, PIPELINE_INITIATOR, PROMOTE_BUILD_ARN,
    ROLLBACK_BUILD_ARN, ROLLBACK_INITIATOR, World, assert_recent, run,
};

/// The repository name in both registries, and the ECS container that runs it.
pub const REPOSITORY: &str = "api";
pub const CONTAINER: &str = "api";
pub const TABLE: &str = "releases";
/// The shortest visibility timeout the binary accepts: a message it leaves reappears this soon.
pub const VISIBILITY_SECONDS: u64 = 3;

/// The second [`Pipeline::two_releases_promoted_in_one_second`] records everything in.
pub const ONE_SECOND: &str = "2026-03-01T10:00:00Z";

/// The deploys of a release item, each as its map of attributes.
fn deploys_of(
    item: &mut std::collections::HashMap<String, AttributeValue>,
) -> impl Iterator<Item = &mut std::collections::HashMap<String, AttributeValue>> {
    let deploys = match item.get_mut("deploys") {
        Some(AttributeValue::L(deploys)) => deploys.as_mut_slice(),
        _ => &mut [],
    };
    deploys.iter_mut().filter_map(|deploy| match deploy {
        AttributeValue::M(deploy) => Some(deploy),
        _ => None,
    })
}

pub struct Pipeline {
    pub world: World,
    pub queue: Queue,
    pub table: Table,
}

impl Pipeline {
    pub async fn start() -> Pipeline {
        Pipeline::around(World::start().await).await
    }

    /// A pipeline around a world the test started itself (e.g. with a registry moto's token does
    /// not open).
    pub async fn around(world: World) -> Pipeline {
        let (queue, table) = tokio::join!(
            Queue::create(&world.moto, "github-releases"),
            Table::create(&world.moto, TABLE)
        );
        std::fs::create_dir(world.dir().join("out")).expect("create the output folder");
        Pipeline {
            world,
            queue,
            table,
        }
    }

    /// One run promotes v1.0.0 (of OTHER_COMMIT) and v1.1.0 (of COMMIT, published later) and deploys
    /// v1.1.0, all recorded in one second.
    pub async fn two_releases_promoted_in_one_second() -> Pipeline {
        let pipeline = Pipeline::start().await;
        pipeline.stage(OTHER_COMMIT).await;
        pipeline.stage(COMMIT).await;
        for (tag, commit, published) in [
            ("v1.0.0", OTHER_COMMIT, "2026-01-01T09:00:00Z"),
            ("v1.1.0", COMMIT, "2026-02-01T09:00:00Z"),
        ] {
            let release = ReleaseEvent::published(tag, commit).published_at(published);
            pipeline.queue.send(&release.message(Envelope::Raw)).await;
        }
        let outcome = pipeline.run_with(&[]).await;
        assert_eq!(outcome.code, 0, "{}", outcome.stderr);
        pipeline.assert_deploy_file_for("v1.1.0");
        let older = pipeline.recorded("v1.0.0").await;
        assert_eq!(
            older.get("deploys"),
            None,
            "v1.0.0 is not deployed: {older}"
        );
        for tag in ["v1.0.0", "v1.1.0"] {
            pipeline.recorded_in_one_second(tag, ONE_SECOND).await;
        }
        pipeline.remove_imagedefinitions();
        pipeline
    }

    /// Sets every time recorded for `tag` (its promotion and each deploy) to `second`: what a run whose
    /// copies are fast (or whose images were already there) writes, here every time rather than by luck.
    pub async fn recorded_in_one_second(&self, tag: &str, second: &str) {
        let at = || AttributeValue::S(second.to_string());
        self.table
            .rewrite(tag, |item| {
                item.insert("promoted_at".into(), at());
                for deploy in deploys_of(item) {
                    deploy.insert("deployed_at".into(), at());
                }
            })
            .await;
    }

    /// imagedefinitions.json names release `tag`'s production image.
    pub fn assert_deploy_file_for(&self, tag: &str) {
        assert_eq!(
            self.deploy_file("imagedefinitions.json"),
            Some(self.imagedefinitions(tag)),
            "the deploy file names release {tag}"
        );
    }

    /// Removes the sequence from each of `tag`'s deploys, as an ecr-promote that numbered none left them.
    pub async fn unnumbered(&self, tag: &str) {
        self.table
            .rewrite(tag, |item| {
                for deploy in deploys_of(item) {
                    deploy.remove("sequence");
                }
            })
            .await;
    }

    /// `<staging ECR host>/api`
    pub fn source_repository(&self) -> String {
        self.world.staging.reference(REPOSITORY)
    }

    /// `<production ECR host>/api`
    pub fn target_repository(&self) -> String {
        self.world.production.reference(REPOSITORY)
    }

    /// Where the binary is told to write imagedefinitions.json.
    pub fn imagedefinitions_path(&self) -> PathBuf {
        self.output_dir().join("imagedefinitions.json")
    }

    /// The folder the binary runs in and writes its deploy files to.
    pub fn output_dir(&self) -> PathBuf {
        self.world.dir().join("out")
    }

    /// A deploy file the binary wrote, parsed; `None` if it wrote none.
    pub fn deploy_file(&self, name: &str) -> Option<Value> {
        let path = self.output_dir().join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => panic!("read {path:?}: {error}"),
        };
        Some(serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path:?}: {error}")))
    }

    /// The files in the output folder, by name.
    pub fn output_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.output_dir())
            .expect("list the output folder")
            .map(|entry| {
                entry
                    .expect("an output folder entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    /// `<production repository>:<tag>`, as imagedefinitions.json names a release.
    pub fn production_image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.target_repository())
    }

    /// imagedefinitions.json deploying release `tag` of the one image to the one container.
    pub fn imagedefinitions(&self, tag: &str) -> Value {
        json!([{ "name": CONTAINER, "imageUri": self.production_image(tag) }])
    }

    /// Removes the deploy file, to see whether the next run writes one.
    pub fn remove_imagedefinitions(&self) {
        std::fs::remove_file(self.imagedefinitions_path()).expect("remove imagedefinitions.json");
    }

    /// The digest production's `api:<tag>` names, if any.
    pub async fn production_digest(&self, tag: &str) -> Option<String> {
        self.world.production.manifest_digest(REPOSITORY, tag).await
    }

    /// The ledger item of `tag`, which must exist.
    pub async fn recorded(&self, tag: &str) -> Value {
        self.table
            .item(tag)
            .await
            .unwrap_or_else(|| panic!("no ledger item for {tag}"))
    }

    /// The deploy history of `tag`.
    pub async fn deploys(&self, tag: &str) -> Vec<Value> {
        self.recorded(tag).await["deploys"]
            .as_array()
            .unwrap_or_else(|| panic!("no deploys list for {tag}"))
            .clone()
    }

    /// Pushes a fresh random image to staging `api:<tag>`, as the staging build does.
    pub async fn stage(&self, tag: &str) -> Image {
        self.stage_in(REPOSITORY, tag).await
    }

    /// Pushes a fresh random image to staging `<repository>:<tag>`.
    pub async fn stage_in(&self, repository: &str, tag: &str) -> Image {
        let image = Image::random(&[200_000, 3_000], Flavour::Oci);
        self.world.staging.push_image(repository, tag, &image).await;
        image
    }

    /// `ecr-promote run` with the CodeBuild step's settings: this queue (no long poll, the shortest
    /// visibility), both repositories, the table, one container and the output folder.
    pub fn run_command(&self) -> tokio::process::Command {
        let mut command = self.promotion_command("run");
        command
            .env("PROMOTE_QUEUE_URL", &self.queue.url)
            .env("PROMOTE_WAIT_SECONDS", "0")
            .env("PROMOTE_VISIBILITY_SECONDS", VISIBILITY_SECONDS.to_string());
        command
    }

    /// `ecr-promote promote` with the same settings, and no queue.
    pub fn promote_command(&self) -> tokio::process::Command {
        self.promotion_command("promote")
    }

    /// `ecr-promote redeploy <tag>` with the same settings.
    pub fn redeploy_command(&self, tag: &str) -> tokio::process::Command {
        let mut command = self.promotion_command("redeploy");
        command.arg(tag);
        command
    }

    /// `ecr-promote run` with the pipeline's settings, and `env` on top.
    pub async fn run_with(&self, env: &[(&str, &str)]) -> Outcome {
        run(self.run_command().envs(env.iter().copied())).await
    }

    /// `ecr-promote promote --tag <tag> --commit <commit>` as the pipeline's promotion build runs it.
    pub async fn promote(&self, tag: &str, commit: &str) -> Outcome {
        run(self
            .promote_command()
            .args(["--tag", tag, "--commit", commit])
            .env("CODEBUILD_BUILD_ARN", PROMOTE_BUILD_ARN)
            .env("CODEBUILD_INITIATOR", PIPELINE_INITIATOR))
        .await
    }

    /// `ecr-promote redeploy <tag>` as an on-call engineer's rollback build runs it.
    pub async fn roll_back_to(&self, tag: &str) -> Outcome {
        run(self
            .redeploy_command(tag)
            .env("CODEBUILD_BUILD_ARN", ROLLBACK_BUILD_ARN)
            .env("CODEBUILD_INITIATOR", ROLLBACK_INITIATOR))
        .await
    }

    /// `ecr-promote <subcommand>` reading this pipeline's table (`history`, `show`).
    pub fn ledger_command(&self, subcommand: &str) -> tokio::process::Command {
        let mut command = self.world.command();
        command
            .arg(subcommand)
            .current_dir(self.output_dir())
            .env("PROMOTE_TABLE", &self.table.name);
        command
    }

    fn promotion_command(&self, subcommand: &str) -> tokio::process::Command {
        let mut command = self.world.command();
        command
            .arg(subcommand)
            .current_dir(self.output_dir())
            .env("PROMOTE_SOURCE_REPOSITORY", self.source_repository())
            .env("PROMOTE_TARGET_REPOSITORY", self.target_repository())
            .env("PROMOTE_TABLE", &self.table.name)
            .env("PROMOTE_CONTAINER_NAME", CONTAINER)
            .env("PROMOTE_IMAGEDEFINITIONS", self.imagedefinitions_path());
        command
    }

    /// Writes a ledger item for `tag` by hand, as a person or an older run might have: a digest and the
    /// images it names, and `fields` on top.
    pub async fn put_release_item(&self, tag: &str, fields: &[(&str, &str)]) {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let source_image = format!("{}@{digest}", self.source_repository());
        let target_image = self.production_image(tag);
        let mut item = vec![
            ("tag_name", tag),
            ("digest", digest.as_str()),
            ("source_image", source_image.as_str()),
            ("target_image", target_image.as_str()),
        ];
        item.extend_from_slice(fields);
        self.table.put(&item).await;
    }

    /// Production holds `image` under `repository:tag`, digest for digest, with every blob.
    pub async fn assert_in_production(&self, repository: &str, tag: &str, image: &Image) {
        let production = &self.world.production;
        assert_eq!(
            production.manifest_digest(repository, tag).await,
            Some(image.digest()),
            "production {repository}:{tag} is the staging digest"
        );
        assert!(
            production.has_blobs_of(repository, image).await,
            "production has every blob of {repository}:{tag}"
        );
    }

    /// `release` went all the way: `image` in production under the release tag, the release recorded
    /// with `commit`, and the deploy file naming the production image.
    pub async fn assert_shipped(&self, release: &ReleaseEvent, commit: &str, image: &Image) {
        self.assert_in_production(REPOSITORY, &release.tag, image)
            .await;
        self.assert_recorded(release, commit, image, None).await;
        self.assert_deploy_file_for(&release.tag);
    }

    /// The ledger item of a release promoted by a `run` from the queue, field by field (the deploy
    /// history, the deliveries and the repository, which only some envelopes carry, aside), with the build
    /// that promoted it if `build_arn` is given.
    pub async fn assert_recorded(
        &self,
        release: &ReleaseEvent,
        commit: &str,
        image: &Image,
        build_arn: Option<&str>,
    ) {
        let mut item = self.recorded(&release.tag).await;
        let promoted_at = item
            .as_object_mut()
            .and_then(|item| item.remove("promoted_at"))
            .unwrap_or_else(|| panic!("no promoted_at in {item}"));
        // No claim token: completing the claim removes it.
        if let Some(item) = item.as_object_mut() {
            item.remove("deploys");
            item.remove("deliveries");
            item.remove("repository");
        }

        assert_recent(&promoted_at);
        let source_image = format!("{}@{}", self.source_repository(), image.digest());
        let mut expected = json!({
            "tag_name": release.tag,
            "state": "done",
            "commit": commit,
            "digest": image.digest(),
            "digests": image.digest(),
            "release_id": 1,
            "source_image": source_image,
            "target_image": self.production_image(&release.tag),
            "containers": [CONTAINER],
            "release_name": release.name(),
            "html_url": release.html_url(),
            "author": AUTHOR,
            "prerelease": release.prerelease,
            "published_at": release.published_at,
            "images": [{
                "containers": [CONTAINER],
                "source_image": source_image,
                "target_image": self.production_image(&release.tag),
                "digest": image.digest(),
            }],
        });
        if let Some(build_arn) = build_arn {
            expected["build_arn"] = json!(build_arn);
        }
        assert_eq!(item, expected, "ledger item of {}", release.tag);
    }

    /// Nothing reached production or the ledger, and no deploy file was written.
    pub async fn assert_nothing_promoted(&self, tag: &str) {
        assert_eq!(
            self.production_digest(tag).await,
            None,
            "production has no {tag}"
        );
        assert_eq!(
            self.world.production.writes(),
            Vec::new(),
            "nothing was written to production"
        );
        self.assert_nothing_recorded_or_written().await;
    }

    /// Queues the webhook delivery of release `tag` of `commit` being published (raw envelope), and
    /// returns the message body.
    pub async fn queue_release(&self, tag: &str, commit: &str) -> String {
        let message = ReleaseEvent::published(tag, commit).message(Envelope::Raw);
        self.queue.send(&message).await;
        message
    }

    /// What each registry has been asked so far, as `(staging, production)`: to show later, with
    /// [`Pipeline::assert_refused_before_starting`], that a run asked nothing.
    pub fn registry_requests(&self) -> (Vec<Request>, Vec<Request>) {
        (
            self.world.staging.requests(),
            self.world.production.requests(),
        )
    }

    /// A run refused before it touched anything: the one queued message is visible and was never
    /// received, neither registry was asked anything since `before`, and no deploy file exists.
    pub async fn assert_refused_before_starting(&self, before: &(Vec<Request>, Vec<Request>)) {
        assert_eq!(
            self.queue.counts().await,
            Counts {
                visible: 1,
                not_visible: 0
            }
        );
        let received = self.queue.peek().await;
        assert_eq!(received.len(), 1);
        assert_eq!(
            received[0].receive_count, 1,
            "the binary never received the message (this look is the first receive)"
        );
        assert_eq!(&self.registry_requests(), before, "no registry contacted");
        assert_eq!(self.output_files(), Vec::<String>::new());
    }

    /// No release recorded in the ledger and no deploy file written.
    pub async fn assert_nothing_recorded_or_written(&self) {
        assert_eq!(self.table.items().await, Vec::<Value>::new(), "ledger");
        assert_eq!(self.output_files(), Vec::<String>::new(), "deploy files");
    }

    /// Neither the queue nor its dead-letter queue holds a message.
    pub async fn assert_queue_empty(&self) {
        let empty = Counts {
            visible: 0,
            not_visible: 0,
        };
        assert_eq!(self.queue.counts().await, empty, "queue");
        assert_eq!(
            self.queue.dead_letter_counts().await,
            empty,
            "dead-letter queue"
        );
    }

    /// The queue still holds exactly `bodies`, visible again once the binary's timeout ran out.
    pub async fn assert_kept(&self, bodies: &[&str]) {
        let started = std::time::Instant::now();
        let counts = self
            .queue
            .counts_once_visible(Duration::from_secs(VISIBILITY_SECONDS + 5))
            .await;
        let waited = started.elapsed();
        assert_eq!(
            counts,
            Counts {
                visible: bodies.len() as u32,
                not_visible: 0
            },
            "messages left on the queue after waiting {waited:?} (dead letters: {:?})",
            self.queue.dead_letter_counts().await
        );
        let mut received: Vec<String> = self
            .queue
            .peek()
            .await
            .into_iter()
            .map(|message| message.body)
            .collect();
        received.sort();
        let mut expected: Vec<String> = bodies.iter().map(|body| body.to_string()).collect();
        expected.sort();
        assert_eq!(received, expected, "bodies left on the queue");
    }
}
