//! The local world itself: moto hands out the tokens the registries accept, the test-side
//! registry client round-trips images, and the redirecting front behaves like ECR and S3.

use crate::support::{
    Flavour, Image, Index, PRODUCTION_ACCOUNT, RedirectingFront, Registry, Request,
    STAGING_ACCOUNT, World,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};

/// The password moto's ecr:GetAuthorizationToken hands out for `account`.
async fn moto_password(moto_url: &str, account: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{moto_url}/"))
        .header(
            "X-Amz-Target",
            "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
        )
        .header("Content-Type", "application/x-amz-json-1.1")
        // moto does not check signatures, only which service the credential scope names.
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ecr/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .body(format!(r#"{{"registryIds":["{account}"]}}"#))
        .send()
        .await
        .expect("call moto");
    assert_eq!(response.status(), StatusCode::OK);
    let answer: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("read moto's answer"))
            .expect("moto answers JSON");
    let token = answer["authorizationData"][0]["authorizationToken"]
        .as_str()
        .expect("an authorization token");
    let decoded = String::from_utf8(STANDARD.decode(token).expect("base64 token")).expect("UTF-8");
    decoded.strip_prefix("AWS:").expect("user AWS").to_string()
}

async fn v2_status(registry: &Registry, credentials: Option<(&str, &str)>) -> StatusCode {
    let mut request = reqwest::Client::new().get(format!("{}/v2/", registry.url()));
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.expect("reach the registry").status()
}

#[tokio::test]
async fn registries_accept_the_tokens_moto_hands_out() {
    let world = World::start().await;
    for registry in [&world.staging, &world.production] {
        let password = moto_password(&world.moto.url(), &registry.account).await;
        assert_eq!(Some(&password), registry.password.as_ref());
        assert_eq!(v2_status(registry, None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            v2_status(registry, Some(("AWS", &password))).await,
            StatusCode::OK
        );
        assert_eq!(
            v2_status(registry, Some(("AWS", "not-the-token"))).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        world.staging.ecr_host(),
        format!("{STAGING_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com")
    );
    assert_eq!(
        world.production.ecr_host(),
        format!("{PRODUCTION_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com")
    );
}

#[tokio::test]
async fn an_anonymous_registry_needs_no_credentials() {
    let registry = Registry::start_anonymous(STAGING_ACCOUNT).await;
    assert_eq!(v2_status(&registry, None).await, StatusCode::OK);
    let image = Image::random(&[100], Flavour::Oci);
    assert_eq!(
        registry.push_image("app", "v1", &image).await,
        image.digest()
    );
}

#[tokio::test]
async fn the_client_round_trips_images_and_indexes() {
    let registry = Registry::start(STAGING_ACCOUNT).await;
    let oci = Image::random(&[1000, 2000], Flavour::Oci);
    let docker = Image::random(&[3000], Flavour::Docker);
    let index = Index::of(&[(&oci, "linux/amd64"), (&docker, "linux/arm64/v8")]);

    assert_eq!(registry.push_image("app", "oci", &oci).await, oci.digest());
    assert_eq!(
        registry.push_image("app", "docker", &docker).await,
        docker.digest()
    );
    assert_eq!(
        registry.push_index("team/app", "multi", &index).await,
        index.digest()
    );

    let (media_type, bytes) = registry.manifest("app", "oci").await.expect("oci manifest");
    assert_eq!(media_type, Flavour::Oci.manifest_media_type());
    assert_eq!(bytes, oci.manifest);
    let (media_type, _) = registry
        .manifest("app", "docker")
        .await
        .expect("docker manifest");
    assert_eq!(media_type, Flavour::Docker.manifest_media_type());
    assert_eq!(
        registry.manifest_digest("team/app", "multi").await,
        Some(index.digest())
    );
    assert_eq!(
        registry.manifest_digest("team/app", &docker.digest()).await,
        Some(docker.digest())
    );
    assert_eq!(registry.manifest("app", "missing").await, None);

    for image in [&oci, &docker] {
        assert!(registry.has_blobs_of("team/app", image).await);
    }
    assert_eq!(
        registry.blob("app", &oci.blob_digests()[1]).await,
        oci.layers[0]
    );
    assert!(!registry.blob_exists("other", &oci.blob_digests()[1]).await);

    let requests: Vec<Request> = registry.requests();
    let uploads = requests
        .iter()
        .filter(|request| request.is_blob_upload())
        .count();
    // Two requests (POST, PUT) per blob: 3 + 2 for the images, 3 + 2 again for the index.
    assert_eq!(uploads, 20, "{requests:#?}");
    assert!(
        requests
            .iter()
            .any(|request| request.is_manifest_put()
                && request.uri == "/v2/team/app/manifests/multi")
    );
    assert!(
        registry
            .storage_root()
            .join("docker/registry/v2/repositories/app")
            .is_dir()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_front_redirects_blob_downloads_and_refuses_leaked_credentials() {
    let registry = Registry::start(STAGING_ACCOUNT).await;
    let image = Image::random(&[5000], Flavour::Docker);
    registry.push_image("app", "v1", &image).await;
    let front = RedirectingFront::start(&registry).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let password = registry.password.clone().unwrap();
    let layer = &image.blob_digests()[1];

    // Without credentials the front answers like the registry.
    let anonymous = client
        .get(format!("{}/v2/app/blobs/{layer}", front.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().contains_key("www-authenticate"));

    let redirect = client
        .get(format!("{}/v2/app/blobs/{layer}", front.url()))
        .basic_auth("AWS", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = redirect.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert_eq!(front.redirects_served(), 1);

    let leaked = client
        .get(&location)
        .basic_auth("AWS", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(leaked.status(), StatusCode::BAD_REQUEST);
    assert_eq!(front.authorization_leaks(), 1);

    let presigned = client.get(&location).send().await.unwrap();
    assert_eq!(presigned.status(), StatusCode::OK);
    assert_eq!(presigned.bytes().await.unwrap(), image.layers[0]);

    // Everything else passes through: a manifest read, a blob check and an upload whose
    // Location must lead back to the front.
    let manifest = client
        .get(format!("{}/v2/app/manifests/v1", front.url()))
        .header("Accept", Flavour::Docker.manifest_media_type())
        .basic_auth("AWS", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(manifest.status(), StatusCode::OK);
    assert_eq!(manifest.bytes().await.unwrap(), image.manifest);

    let head = client
        .head(format!("{}/v2/app/blobs/{layer}", front.url()))
        .basic_auth("AWS", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "5000");

    let started = client
        .request(
            Method::POST,
            format!("{}/v2/copy/blobs/uploads/", front.url()),
        )
        .basic_auth("AWS", Some(&password))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let upload = started.headers()["location"].to_str().unwrap().to_string();
    assert!(upload.starts_with(&front.url()), "{upload}");
    let completed = client
        .put(format!("{upload}&digest={layer}"))
        .basic_auth("AWS", Some(&password))
        .body(image.layers[0].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(completed.status(), StatusCode::CREATED);
    assert_eq!(registry.blob("copy", layer).await, image.layers[0]);
    assert_eq!(front.redirects_served(), 1);
}
