//! Synthetic images: random layers, a small config, and manifests with the right media types.

use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Which manifest format an image is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Oci,
    /// Docker image manifest v2, schema 2.
    Docker,
}

impl Flavour {
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Flavour::Oci => "application/vnd.oci.image.manifest.v1+json",
            Flavour::Docker => "application/vnd.docker.distribution.manifest.v2+json",
        }
    }

    fn config_media_type(self) -> &'static str {
        match self {
            Flavour::Oci => "application/vnd.oci.image.config.v1+json",
            Flavour::Docker => "application/vnd.docker.container.image.v1+json",
        }
    }

    fn layer_media_type(self) -> &'static str {
        match self {
            Flavour::Oci => "application/vnd.oci.image.layer.v1.tar+gzip",
            Flavour::Docker => "application/vnd.docker.image.rootfs.diff.tar.gzip",
        }
    }
}

/// An image manifest with its config and layer blobs.
#[derive(Clone, Debug)]
pub struct Image {
    pub flavour: Flavour,
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
}

impl Image {
    /// An image whose layers are random (incompressible) bytes of the given sizes.
    pub fn random(layer_sizes: &[usize], flavour: Flavour) -> Image {
        let mut rng = rand::rng();
        let layers: Vec<Vec<u8>> = layer_sizes
            .iter()
            .map(|&size| {
                let mut layer = vec![0; size];
                rng.fill_bytes(&mut layer);
                layer
            })
            .collect();
        let layer_digests: Vec<String> = layers.iter().map(|layer| sha256_digest(layer)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Env": [format!("NONCE={}", rng.next_u64())] },
            "rootfs": { "type": "layers", "diff_ids": layer_digests },
        }))
        .expect("serialise the config");
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": flavour.manifest_media_type(),
            "config": descriptor(flavour.config_media_type(), &config),
            "layers": layers
                .iter()
                .map(|layer| descriptor(flavour.layer_media_type(), layer))
                .collect::<Vec<_>>(),
        }))
        .expect("serialise the manifest");
        Image {
            flavour,
            config,
            layers,
            manifest,
        }
    }

    pub fn media_type(&self) -> &'static str {
        self.flavour.manifest_media_type()
    }

    /// The manifest's digest.
    pub fn digest(&self) -> String {
        sha256_digest(&self.manifest)
    }

    /// Config first, then the layers.
    pub fn blobs(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.config.as_slice()).chain(self.layers.iter().map(Vec::as_slice))
    }

    pub fn blob_digests(&self) -> Vec<String> {
        self.blobs().map(sha256_digest).collect()
    }

    /// A cosign-style signature of this image, as `cosign sign` pushes it: an OCI manifest whose
    /// one layer is the simple-signing payload naming the image's digest, signature annotated.
    pub fn cosign_signature(&self, docker_reference: &str) -> Image {
        let payload = serde_json::to_vec(&json!({
            "critical": {
                "identity": { "docker-reference": docker_reference },
                "image": { "docker-manifest-digest": self.digest() },
                "type": "cosign container image signature",
            },
            "optional": null,
        }))
        .expect("serialise the signed payload");
        let config = serde_json::to_vec(&json!({
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&payload)] },
        }))
        .expect("serialise the signature's config");
        let mut layer = descriptor("application/vnd.dev.cosign.simplesigning.v1+json", &payload);
        layer["annotations"] = json!({
            "dev.cosignproject.cosign/signature": "MEUCIQDm2vY0Yw1Jr5bL7c0y1Q8m3f3Ow2Fv7u6rQm0gk1YhHwIgR1xR1Q==",
        });
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": Flavour::Oci.manifest_media_type(),
            "config": descriptor(Flavour::Oci.config_media_type(), &config),
            "layers": [layer],
        }))
        .expect("serialise the signature's manifest");
        Image {
            flavour: Flavour::Oci,
            config,
            layers: vec![payload],
            manifest,
        }
    }

    /// The tag cosign stores this image's signature under: `sha256-<hex>.sig`.
    pub fn cosign_signature_tag(&self) -> String {
        format!("{}.sig", self.digest().replace(':', "-"))
    }
}

/// An OCI image index over images for several platforms.
#[derive(Clone, Debug)]
pub struct Index {
    pub images: Vec<Image>,
    pub manifest: Vec<u8>,
}

impl Index {
    /// `platforms` pairs each image with `os/architecture[/variant]`, e.g. `linux/arm64`.
    pub fn of(platforms: &[(&Image, &str)]) -> Index {
        let manifests: Vec<_> = platforms
            .iter()
            .map(|(image, platform)| {
                let mut parts = platform.split('/');
                let (Some(os), Some(architecture)) = (parts.next(), parts.next()) else {
                    panic!("platform {platform:?} is not os/architecture[/variant]");
                };
                let mut platform = json!({ "os": os, "architecture": architecture });
                if let Some(variant) = parts.next() {
                    platform["variant"] = json!(variant);
                }
                let mut entry = descriptor(image.media_type(), &image.manifest);
                entry["platform"] = platform;
                entry
            })
            .collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": manifests,
        }))
        .expect("serialise the index");
        Index {
            images: platforms
                .iter()
                .map(|(image, _)| (*image).clone())
                .collect(),
            manifest,
        }
    }

    pub fn digest(&self) -> String {
        sha256_digest(&self.manifest)
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({ "mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len() })
}
