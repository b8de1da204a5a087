//! Manifests: fetched and stored as the exact bytes the source holds, parsed only to find what they refer to.
//!
//! The parse is deliberately lenient (only descriptors are read) so that any field a builder adds — annotations,
//! `subject`, `artifactType` — travels untouched: the digest is of the bytes, and the bytes never change.

use bytes::Bytes;
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;

use super::digest::Digest;
use super::error::RegistryError;
use super::reference::{Pointer, Reference};
use super::transport::{MAX_MANIFEST_BYTES, Registry};

const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Every type we accept, schema 1 included so that it can be recognised and refused by name rather than
/// converted or misread. Without schema 2 in Accept, some registries rewrite manifests to schema 1.
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, \
     application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// Layers of this type live outside the registry (Windows base layers) and are never uploaded.
const FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

#[derive(Clone, Debug, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub urls: Vec<String>,
}

impl Descriptor {
    /// Foreign (non-distributable) layers are fetched by the runtime from their URLs, so a copy skips them.
    pub fn is_foreign(&self) -> bool {
        self.media_type == FOREIGN_LAYER
            || (self.media_type.contains("nondistributable") && !self.urls.is_empty())
    }
}

#[derive(Clone, Debug)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Bytes,
}

/// What a manifest refers to.
#[derive(Debug)]
pub enum Content {
    /// An image: its config and layers are blobs.
    Image(Vec<Descriptor>),
    /// An index or manifest list: its entries are manifests.
    Index(Vec<Descriptor>),
}

#[derive(Deserialize)]
struct Parts {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    manifests: Option<Vec<Descriptor>>,
}

impl Manifest {
    /// The digests of the manifests this index lists; none for an image.
    pub fn listed_manifests(&self, reference: &str) -> Result<Vec<Digest>, RegistryError> {
        Ok(match self.content(reference)? {
            Content::Index(entries) => entries.into_iter().map(|entry| entry.digest).collect(),
            Content::Image(_) => Vec::new(),
        })
    }

    pub fn content(&self, reference: &str) -> Result<Content, RegistryError> {
        let invalid = |detail: String| RegistryError::Corrupt {
            what: format!("reading manifest {reference}"),
            host: reference.split('/').next().unwrap_or_default().to_owned(),
            detail,
        };
        if self.media_type == DOCKER_SCHEMA1 || self.media_type == DOCKER_SCHEMA1_SIGNED {
            return Err(RegistryError::Schema1 {
                reference: reference.to_owned(),
            });
        }
        let parts: Parts = serde_json::from_slice(&self.bytes)
            .map_err(|e| invalid(format!("not a manifest this tool understands: {e}")))?;
        if parts.schema_version == Some(1) {
            return Err(RegistryError::Schema1 {
                reference: reference.to_owned(),
            });
        }
        let declared = parts.media_type.as_deref().unwrap_or(&self.media_type);
        match (parts.manifests, parts.config) {
            (Some(manifests), None) => Ok(Content::Index(manifests)),
            (None, Some(config)) => {
                let mut blobs = vec![config];
                blobs.extend(parts.layers.into_iter().filter(|l| !l.is_foreign()));
                Ok(Content::Image(blobs))
            }
            _ => Err(invalid(format!(
                "media type {declared:?} has neither a config nor a list of manifests"
            ))),
        }
    }
}

fn digest_header(response: &reqwest::Response) -> Option<Digest> {
    response
        .headers()
        .get("docker-content-digest")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn media_type_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
        .unwrap_or_default()
}

impl Registry {
    /// Fetches a manifest's exact bytes and checks them against the digest asked for.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<Manifest, RegistryError> {
        let what = format!("fetching manifest {reference}");
        let url = self.url(
            &reference.repository,
            &format!("manifests/{}", reference.pointer.as_path()),
        );
        let response = self
            .send(&what, || {
                self.request(Method::GET, url.clone())
                    .header(header::ACCEPT, ACCEPT)
            })
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Err(self.missing(reference).await);
        }
        if !response.status().is_success() {
            return Err(self.failure(&what, &reference.repository, response).await);
        }
        let media_type = media_type_of(&response);
        let announced = digest_header(&response);
        let bytes = self.body(&what, response, MAX_MANIFEST_BYTES).await?;
        let digest = Digest::of(&bytes);
        if let Pointer::Digest(expected) = &reference.pointer
            && *expected != digest
        {
            return Err(RegistryError::Corrupt {
                what,
                host: self.host.clone(),
                detail: format!("asked for {expected}, received bytes of {digest}"),
            });
        }
        // Fetched by tag, the registry's own word on the digest is the only check: bytes that do not hash to
        // it are not the image the tag names (the ledger would record a digest the source does not hold).
        if let Some(announced) = announced
            && announced != digest
        {
            return Err(RegistryError::Corrupt {
                what,
                host: self.host.clone(),
                detail: format!(
                    "the registry announced Docker-Content-Digest {announced}, the bytes received are {digest}"
                ),
            });
        }
        // Registries that send no Content-Type still declare it in the manifest itself.
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
                .unwrap_or(media_type)
        } else {
            media_type
        };
        Ok(Manifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// The digests of the manifests an index at `reference` lists; none for an image.
    pub async fn children(&self, reference: &Reference) -> Result<Vec<Digest>, RegistryError> {
        self.get_manifest(reference)
            .await?
            .listed_manifests(&reference.to_string())
    }

    /// The digest a tag or digest currently resolves to, or `None` when there is no such manifest.
    pub async fn manifest_digest(
        &self,
        reference: &Reference,
    ) -> Result<Option<Digest>, RegistryError> {
        let what = format!("checking {reference}");
        let url = self.url(
            &reference.repository,
            &format!("manifests/{}", reference.pointer.as_path()),
        );
        let response = self
            .send(&what, || {
                self.request(Method::HEAD, url.clone())
                    .header(header::ACCEPT, ACCEPT)
            })
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => match digest_header(&response) {
                Some(digest) => Ok(Some(digest)),
                // Without the header the only way to know is to hash the bytes.
                None => Ok(Some(self.get_manifest(reference).await?.digest)),
            },
            _ => Err(self.failure(&what, &reference.repository, response).await),
        }
    }

    /// Stores the manifest bytes verbatim under the reference's tag or digest.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        manifest: &Manifest,
    ) -> Result<(), RegistryError> {
        let what = format!("storing manifest {reference}");
        let url = self.url(
            &reference.repository,
            &format!("manifests/{}", reference.pointer.as_path()),
        );
        let response = self
            .send(&what, || {
                self.request(Method::PUT, url.clone())
                    .header(header::CONTENT_TYPE, &manifest.media_type)
                    .body(manifest.bytes.clone())
            })
            .await?;
        if !response.status().is_success() {
            return Err(self.failure(&what, &reference.repository, response).await);
        }
        match digest_header(&response) {
            Some(stored) if stored != manifest.digest => Err(RegistryError::Corrupt {
                what,
                host: self.host.clone(),
                detail: format!("sent {}, the registry stored {stored}", manifest.digest),
            }),
            _ => Ok(()),
        }
    }

    /// A 404 for a manifest: a missing repository or a missing tag/digest, told apart for the error message.
    async fn missing(&self, reference: &Reference) -> RegistryError {
        match self.repository_exists(&reference.repository).await {
            Ok(false) => self.name_unknown(&reference.repository),
            Err(e) => e,
            Ok(true) => RegistryError::ManifestUnknown {
                reference: reference.to_string(),
                what: match &reference.pointer {
                    Pointer::Tag(tag) => format!("tag {tag}"),
                    Pointer::Digest(digest) => format!("manifest {digest}"),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn manifest(media_type: &str, json: &str) -> Manifest {
        Manifest {
            media_type: media_type.into(),
            digest: Digest::of(json.as_bytes()),
            bytes: Bytes::copy_from_slice(json.as_bytes()),
        }
    }

    #[test]
    fn image_lists_config_then_layers_without_foreign_ones() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{D1}","size":7}},
            "layers":[{{"mediaType":"{FOREIGN_LAYER}","digest":"{D2}","size":9,"urls":["https://x"]}},
                      {{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{D2}","size":9}}]}}"#
        );
        let Content::Image(blobs) = manifest(DOCKER_MANIFEST, &json).content("r").unwrap() else {
            panic!("not an image")
        };
        let digests: Vec<String> = blobs.iter().map(|b| b.digest.to_string()).collect();
        assert_eq!(digests, [D1, D2]);
    }

    #[test]
    fn index_lists_its_manifests() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":3,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let Content::Index(children) = manifest(OCI_INDEX, &json).content("r").unwrap() else {
            panic!("not an index")
        };
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].digest.to_string(), D1);
    }

    #[test]
    fn refuses_schema_1_by_media_type_or_by_version() {
        let schema1 = r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        for media_type in [DOCKER_SCHEMA1_SIGNED, "application/json"] {
            let err = manifest(media_type, schema1)
                .content("host/x:y")
                .unwrap_err();
            assert!(matches!(err, RegistryError::Schema1 { .. }), "{err}");
            assert!(err.to_string().contains("schema 1"), "{err}");
        }
    }

    #[test]
    fn refuses_json_that_is_no_manifest() {
        for json in [r#"{"hello":"world"}"#, "[1,2]", "not json"] {
            assert!(manifest(OCI_MANIFEST, json).content("r").is_err(), "{json}");
        }
    }
}
