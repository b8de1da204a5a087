//! The files CodePipeline's ECS deploy actions read: `imagedefinitions.json` (standard deploy) and
//! `imageDetail.json` (blue/green through CodeDeploy).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct DeployFiles {
    pub imagedefinitions: PathBuf,
    pub image_detail: Option<PathBuf>,
}

/// One container and the image it is to run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageDefinition {
    pub name: String,
    #[serde(rename = "imageUri")]
    pub image_uri: String,
}

#[derive(Serialize)]
struct ImageDetail<'a> {
    #[serde(rename = "ImageURI")]
    image_uri: &'a str,
}

impl DeployFiles {
    /// The files' contents, path by path. The blue/green action deploys one image: the first container's.
    pub fn render(&self, definitions: &[ImageDefinition]) -> Vec<(&Path, String)> {
        let mut files = vec![(
            self.imagedefinitions.as_path(),
            serde_json::to_string_pretty(definitions).expect("plain strings serialise"),
        )];
        if let (Some(path), Some(first)) = (&self.image_detail, definitions.first()) {
            let detail = ImageDetail {
                image_uri: &first.image_uri,
            };
            files.push((
                path.as_path(),
                serde_json::to_string_pretty(&detail).expect("plain strings serialise"),
            ));
        }
        files
    }

    /// Writes every file atomically: the deploy stage sees the old file or the new one, never half of one.
    pub fn write(&self, definitions: &[ImageDefinition]) -> Result<()> {
        for (path, contents) in self.render(definitions) {
            write_atomically(path, contents.as_bytes())?;
        }
        Ok(())
    }
}

fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let file_name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let temporary = path.with_file_name(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        use std::io::Write;
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.with_context(|| {
        format!(
            "writing {}: check that its folder exists and is writable",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(name: &str, repository: &str) -> ImageDefinition {
        ImageDefinition {
            name: name.into(),
            image_uri: format!("222222222222.dkr.ecr.us-east-1.amazonaws.com/{repository}:v1.2.0"),
        }
    }

    #[test]
    fn writes_one_definition_per_container_and_the_image_detail() {
        let dir = tempfile::tempdir().unwrap();
        let files = DeployFiles {
            imagedefinitions: dir.path().join("imagedefinitions.json"),
            image_detail: Some(dir.path().join("imageDetail.json")),
        };
        files
            .write(&[definition("api", "api"), definition("worker", "worker")])
            .unwrap();

        let definitions: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("imagedefinitions.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            definitions,
            serde_json::json!([
                {"name": "api", "imageUri": "222222222222.dkr.ecr.us-east-1.amazonaws.com/api:v1.2.0"},
                {"name": "worker", "imageUri": "222222222222.dkr.ecr.us-east-1.amazonaws.com/worker:v1.2.0"}
            ])
        );
        let detail: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("imageDetail.json")).unwrap())
                .unwrap();
        assert_eq!(
            detail,
            serde_json::json!({"ImageURI": "222222222222.dkr.ecr.us-east-1.amazonaws.com/api:v1.2.0"})
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_missing_folder_is_named_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let files = DeployFiles {
            imagedefinitions: dir.path().join("absent/imagedefinitions.json"),
            image_detail: None,
        };
        let error = format!(
            "{:#}",
            files.write(&[definition("api", "api")]).unwrap_err()
        );
        assert!(error.contains("absent/imagedefinitions.json"), "{error}");
    }
}
