//! The production pipeline's CodeBuild step in miniature: a world, the release queue with its
//! dead-letter queue, the ledger table, a folder for the deploy files, and the settings that point
//! `ecr-promote run` and `ecr-promote promote` at them.

use std::path::PathBuf;

use serde_json::Value;

use std::time::Duration;

use super::aws::{Counts, Queue, Table};
use super::github::{Envelope, ReleaseEvent};
use super::registry::Request;
use super::{Flavour, Image, World};

/// The repository name in both registries, and the ECS container that runs it.
pub const REPOSITORY: &str = "api";
pub const CONTAINER: &str = "api";
pub const TABLE: &str = "releases";
/// The shortest visibility timeout the binary accepts: a message it leaves reappears this soon.
pub const VISIBILITY_SECONDS: u64 = 3;

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
