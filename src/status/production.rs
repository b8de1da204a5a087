//! Reading what the production registry holds for the release images a service runs.

use std::collections::HashMap;

use anyhow::Result;

use crate::registry::{Connector, Digest, Pointer, Reference, RegistryError, Side};

/// What the production registry holds for one release image.
#[derive(Clone, Debug)]
pub struct Production {
    /// The digest the release tag is on now; `None` when the tag is gone.
    pub tagged: Option<Digest>,
    /// The manifests the recorded digest lists when it is an index (a multi-platform release): a running task
    /// may report the one it pulled. Empty for an image, or when the recorded manifest is gone.
    pub children: Vec<Digest>,
}

/// What production holds for each release image, by tag: the tag's current digest and the manifests the
/// recorded digest lists. The connector opens each registry once.
pub(super) async fn production_of(
    connector: &Connector,
    images: &[(Reference, Digest)],
) -> Result<HashMap<String, Production>> {
    let mut held = HashMap::new();
    for (tag, recorded) in images {
        let target = connector.connect(&tag.host, Side::Target).await?;
        let children = match target
            .children(&tag.with_pointer(Pointer::Digest(recorded.clone())))
            .await
        {
            Ok(children) => children,
            // The recorded manifest is gone, so its tag cannot be on it: the report names that drift.
            Err(RegistryError::ManifestUnknown { .. } | RegistryError::NameUnknown { .. }) => {
                Vec::new()
            }
            Err(error) => return Err(error.into()),
        };
        held.insert(
            tag.to_string(),
            Production {
                tagged: target.manifest_digest(tag).await?,
                children,
            },
        );
    }
    Ok(held)
}
