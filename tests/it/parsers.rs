//! Bad input cannot crash it: property tests over the library's public parsers. A queue message,
//! an image reference or a setting is text someone else wrote; whatever it holds, parsing returns
//! an answer (often "no, because…") and never panics, and what parses prints back to itself.
//!
//! Manifest parsing (`registry::manifest`) is private to the crate, so it is reached only through
//! the copy tests, not from here.

use crate::support::{COMMIT, ENVELOPES, Envelope, ReleaseEvent, ping};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ecr_promote::intake::{self, Policy, Reading, Secret, envelope, github};
use ecr_promote::registry::{Digest, Endpoints, Pointer, Reference, Repository};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

const WEBHOOK_SECRET: &str = "it-is-a-secret-to-everybody";
/// Enough cases to find the odd input, few enough to run in seconds in CI.
const CASES: u32 = 2000;

fn policy() -> Policy {
    Policy {
        actions: vec!["published".to_string()],
        prereleases: false,
        webhook_secrets: Vec::new(),
    }
}

fn signed_policy() -> Policy {
    Policy {
        webhook_secrets: vec![Secret::new(
            WEBHOOK_SECRET.to_string(),
            "PROMOTE_WEBHOOK_SECRET",
        )],
        ..policy()
    }
}

/// Every outcome of `read` is one of its four answers, and a release to promote has a tag.
fn assert_sensible(reading: &Reading, policy: &Policy) {
    match reading {
        Reading::Promote { release, .. } => assert!(
            !release.tag_name.trim().is_empty(),
            "a release to promote has a tag: {reading:?}"
        ),
        Reading::Rejected(reason) => {
            assert!(
                !policy.webhook_secrets.is_empty(),
                "rejected without a webhook secret set: {reason}"
            );
            assert!(!reason.is_empty(), "a rejection says why");
        }
        Reading::Skip(reason) | Reading::Malformed(reason) => {
            assert!(!reason.is_empty(), "{reading:?} says why")
        }
    }
}

/// Any JSON value, nested a few levels: what a confused or hostile sender might put anywhere.
/// Reads `body` without and with a webhook secret: each reading is sensible, and an unsigned delivery
/// is never promoted when a secret is set.
fn read_under_both_policies(body: &str) -> Result<(), TestCaseError> {
    for policy in [policy(), signed_policy()] {
        let reading = intake::read(body, &policy);
        assert_sensible(&reading, &policy);
        if !policy.webhook_secrets.is_empty() {
            prop_assert!(
                !matches!(reading, Reading::Promote { .. }),
                "an unsigned delivery was promoted with a webhook secret set: {body}"
            );
        }
    }
    Ok(())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        any::<String>().prop_map(Value::String),
        Just(json!("")),
        Just(json!("Notification")),
        Just(json!("release")),
        Just(json!(COMMIT)),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(envelope_key(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Object keys the parsers look for, and others.
fn envelope_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Type",
            "Message",
            "detail-type",
            "detail",
            "body",
            "httpMethod",
            "requestContext",
            "headers",
            "isBase64Encoded",
            "action",
            "release",
            "tag_name",
            "target_commitish",
            "draft",
            "prerelease",
            "author",
            "login",
            "zen",
            "hook_id",
            "published_at",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z_-]{0,12}",
    ]
}

/// One step along a path into a JSON value.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Item(usize),
}

/// Every path in `value`, the root (empty path) included.
fn paths(value: &Value) -> Vec<Vec<Step>> {
    let mut found = vec![Vec::new()];
    let children: Vec<(Step, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, child)| (Step::Key(key.clone()), child))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, child)| (Step::Item(index), child))
            .collect(),
        _ => Vec::new(),
    };
    for (step, child) in children {
        for mut path in paths(child) {
            path.insert(0, step.clone());
            found.push(path);
        }
    }
    found
}

fn at_path<'a>(value: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(value, |value, step| match step {
        Step::Key(key) => &mut value[key.as_str()],
        Step::Item(index) => &mut value[*index],
    })
}

/// A change to one field of a JSON document.
#[derive(Clone, Debug)]
enum FieldMutation {
    Replace(Index, Value),
    Remove(Index),
    /// A string field's text cut short, as a truncated delivery would have it.
    Truncate(Index, Index),
}

fn field_mutation() -> impl Strategy<Value = FieldMutation> {
    prop_oneof![
        (any::<Index>(), json_value()).prop_map(|(at, value)| FieldMutation::Replace(at, value)),
        any::<Index>().prop_map(FieldMutation::Remove),
        (any::<Index>(), any::<Index>()).prop_map(|(at, cut)| FieldMutation::Truncate(at, cut)),
    ]
}

fn mutate_fields(value: &mut Value, mutations: &[FieldMutation]) {
    for mutation in mutations {
        let all = paths(value);
        match mutation {
            FieldMutation::Replace(at, replacement) => {
                *at_path(value, &all[at.index(all.len())]) = replacement.clone();
            }
            FieldMutation::Remove(at) => {
                let path = &all[at.index(all.len())];
                let Some((last, parent)) = path.split_last() else {
                    continue;
                };
                match (at_path(value, parent), last) {
                    (Value::Object(map), Step::Key(key)) => {
                        map.remove(key);
                    }
                    (Value::Array(items), Step::Item(index)) => {
                        items.remove(*index);
                    }
                    _ => unreachable!("a path leads through objects and arrays"),
                }
            }
            FieldMutation::Truncate(at, cut) => {
                if let Value::String(text) = at_path(value, &all[at.index(all.len())]) {
                    let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
                    if !boundaries.is_empty() {
                        text.truncate(boundaries[cut.index(boundaries.len())]);
                    }
                }
            }
        }
    }
}

/// A change to the bytes of a message as it sits on the queue.
#[derive(Clone, Debug)]
enum ByteMutation {
    FlipBit(Index, u8),
    Delete(Index),
    Insert(Index, u8),
    /// Characters that change JSON's structure or escapes.
    InsertSyntax(Index, &'static str),
    Truncate(Index),
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    let syntax = prop::sample::select(vec![
        "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u", "\\ud800", "\0", "null", "=", "é",
        "\u{feff}",
    ]);
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| ByteMutation::FlipBit(at, bit)),
        any::<Index>().prop_map(ByteMutation::Delete),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| ByteMutation::Insert(at, byte)),
        (any::<Index>(), syntax).prop_map(|(at, text)| ByteMutation::InsertSyntax(at, text)),
        any::<Index>().prop_map(ByteMutation::Truncate),
    ]
}

fn mutate_bytes(message: &str, mutations: &[ByteMutation]) -> String {
    let mut bytes = message.as_bytes().to_vec();
    for mutation in mutations {
        if bytes.is_empty() {
            break;
        }
        match mutation {
            ByteMutation::FlipBit(at, bit) => {
                let at = at.index(bytes.len());
                bytes[at] ^= 1 << bit;
            }
            ByteMutation::Delete(at) => {
                bytes.remove(at.index(bytes.len()));
            }
            ByteMutation::Insert(at, byte) => bytes.insert(at.index(bytes.len() + 1), *byte),
            ByteMutation::InsertSyntax(at, text) => {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, text.bytes());
            }
            ByteMutation::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        }
    }
    // SQS bodies are Unicode text; what is not becomes replacement characters on the way.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A release event as the tests' support writes it, in every envelope.
fn release_event() -> impl Strategy<Value = (ReleaseEvent, Envelope)> {
    (
        "v[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        prop::sample::select(ENVELOPES.to_vec()),
        prop::sample::select(vec![
            "published",
            "created",
            "released",
            "edited",
            "deleted",
        ]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(tag, envelope, action, draft, prerelease)| {
            let mut event = ReleaseEvent::published(&tag, COMMIT).action(action);
            if draft {
                event = event.draft();
            }
            if prerelease {
                event = event.prerelease();
            }
            (event, envelope)
        })
}

/// The payload the event sends in its envelope (a bare release object, or the whole webhook).
fn payload_of(event: &ReleaseEvent, envelope: Envelope) -> Value {
    match envelope {
        Envelope::BareRelease => event.release(),
        _ => event.payload(),
    }
}

/// The queue message carrying `payload` in `envelope`.
fn message_of(payload: &Value, envelope: Envelope) -> String {
    match envelope {
        Envelope::BareRelease => payload.to_string(),
        envelope => envelope.wrap("release", &payload.to_string()),
    }
}

/// An API Gateway (REST) delivery of `body` with the signature GitHub computes for `secret`.
fn signed_delivery(body: &str, secret: &str) -> String {
    Envelope::ApiGatewayV1.wrap_signed("release", body, secret)
}

/// A delivery wrapped in `layers` envelopes, innermost first.
fn nested(payload: &Value, layers: &[Envelope]) -> String {
    layers.iter().fold(payload.to_string(), |inner, envelope| {
        envelope.wrap("release", &inner)
    })
}

/// Registry hosts as users write them: DNS names with an optional port, ECR's among them.
///
/// A label starting `xn--` is punycode (an IDNA A-label) and is a valid host only if it decodes; the
/// generator leaves those out, and `an_undecodable_punycode_host_is_refused_with_its_name` covers them.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{1,10}(\\.[a-z]([a-z0-9-]{0,8}[a-z0-9])?){1,3}(:[0-9]{1,4})?",
        "[0-9]{12}\\.dkr\\.ecr\\.[a-z]{2}-[a-z]{4,9}-[1-3]\\.amazonaws\\.com",
        "localhost(:[0-9]{1,4})?",
    ]
    .prop_filter("an xn-- label must be punycode that decodes", |host| {
        !host
            .split(['.', ':'])
            .any(|label| label.starts_with("xn--"))
    })
}

/// Repository names: lower-case path components, each starting and ending alphanumeric.
fn repository_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]([a-z0-9._-]{0,8}[a-z0-9])?", 1..4)
        .prop_map(|components| components.join("/"))
}

fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
}

fn digest() -> impl Strategy<Value = String> {
    "sha256:[0-9a-f]{64}"
}

/// Text from the alphabet references are made of, so that most inputs get past the first check.
fn reference_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9./:@_-]{0,60}",
        ("[a-z0-9.:]{0,20}", "[a-zA-Z0-9./:@_-]{0,40}")
            .prop_map(|(host, rest)| format!("{host}/{rest}")),
        ("[a-z.]{1,12}/[a-z/]{1,12}@", "sha256:[0-9a-fA-F]{60,68}")
            .prop_map(|(prefix, digest)| format!("{prefix}{digest}")),
    ]
}

proptest! {
    // Failures print their shrunk input; no regression file is written beside the tests.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(CASES)
    })]

    #[test]
    fn reading_any_text_never_panics(body in any::<String>()) {
        for policy in [policy(), signed_policy()] {
            assert_sensible(&intake::read(&body, &policy), &policy);
        }
    }

    #[test]
    fn reading_any_json_never_panics(value in json_value()) {
        let body = value.to_string();
        for policy in [policy(), signed_policy()] {
            assert_sensible(&intake::read(&body, &policy), &policy);
        }
    }

    #[test]
    fn a_release_in_any_envelope_is_read_as_github_sent_it((event, envelope) in release_event()) {
        let reading = intake::read(&event.message(envelope), &policy());
        // A bare release object carries no action: it was forwarded to be published.
        let published = event.action == "published" || envelope == Envelope::BareRelease;
        let should_promote = published && !event.draft && !event.prerelease;
        match reading {
            Reading::Promote { release, .. } => {
                prop_assert!(should_promote, "{envelope:?} {event:?} was promoted");
                prop_assert_eq!(&release.tag_name, &event.tag);
                prop_assert_eq!(&release.target_commitish, COMMIT);
            }
            Reading::Skip(reason) => {
                prop_assert!(!should_promote, "{envelope:?} {event:?} was skipped: {reason}");
                prop_assert!(reason.contains(&event.tag), "the reason names the release: {reason}");
            }
            other => prop_assert!(false, "{envelope:?} {event:?}: {other:?}"),
        }
    }

    #[test]
    fn a_release_with_mutated_fields_never_panics(
        (event, envelope) in release_event(),
        payload_mutations in prop::collection::vec(field_mutation(), 1..4),
        envelope_mutations in prop::collection::vec(field_mutation(), 0..3),
    ) {
        let mut payload = payload_of(&event, envelope);
        mutate_fields(&mut payload, &payload_mutations);
        let mut message: Value = serde_json::from_str(&message_of(&payload, envelope))
            .expect("an envelope is JSON");
        mutate_fields(&mut message, &envelope_mutations);
        let body = message.to_string();
        read_under_both_policies(&body)?;
    }

    #[test]
    fn a_release_with_mutated_bytes_never_panics(
        (event, envelope) in release_event(),
        mutations in prop::collection::vec(byte_mutation(), 1..6),
    ) {
        let body = mutate_bytes(&event.message(envelope), &mutations);
        read_under_both_policies(&body)?;
    }

    #[test]
    fn unwrapping_any_text_or_json_never_panics(body in any::<String>(), value in json_value()) {
        for text in [body, value.to_string()] {
            if let Ok(delivery) = envelope::unwrap(&text) {
                // What comes out is what the GitHub reader takes: it answers too.
                let _ = github::interpret(&delivery);
                prop_assert!(delivery.headers.keys().all(|name| *name == name.to_ascii_lowercase()));
            }
        }
    }

    #[test]
    fn envelopes_nested_as_deep_as_allowed_unwrap_to_the_payload(
        layers in prop::collection::vec(
            prop::sample::select(vec![
                Envelope::ApiGatewayV1,
                Envelope::ApiGatewayV2,
                Envelope::Sns,
                Envelope::EventBridge,
            ]),
            0..=5,
        ),
    ) {
        let payload = ReleaseEvent::published("v1.2.3", COMMIT).payload();
        let message = nested(&payload, &layers);
        match envelope::unwrap(&message) {
            Ok(delivery) => prop_assert_eq!(delivery.payload, payload),
            Err(error) => prop_assert!(false, "{} envelopes: {error}", layers.len()),
        }
    }

    #[test]
    fn parsed_references_print_back_to_themselves(text in reference_like()) {
        if let Ok(reference) = text.parse::<Reference>() {
            let printed = reference.to_string();
            prop_assert_eq!(printed.parse::<Reference>(), Ok(reference.clone()), "{}", printed);
            let repository = Repository { host: reference.host.clone(), name: reference.repository.clone() };
            prop_assert_eq!(repository.at(reference.pointer.clone()), reference);
        }
        if let Ok(repository) = text.parse::<Repository>() {
            let printed = repository.to_string();
            prop_assert_eq!(printed.parse::<Repository>(), Ok(repository.clone()), "{}", printed);
            let tagged = repository.at(Pointer::Tag("v1".to_string())).to_string();
            prop_assert!(tagged.parse::<Reference>().is_ok(), "{}", tagged);
        }
        if let Ok(digest) = text.parse::<Digest>() {
            prop_assert_eq!(digest.to_string(), text.clone());
            prop_assert_eq!(digest.short().len(), 12);
        }
    }

    #[test]
    fn well_formed_references_parse_to_their_parts(
        host in host(),
        name in repository_name(),
        pointer in prop_oneof![tag().prop_map(Ok), digest().prop_map(Err)],
    ) {
        let (text, expected) = match &pointer {
            Ok(tag) => (format!("{host}/{name}:{tag}"), Pointer::Tag(tag.clone())),
            Err(digest) => (
                format!("{host}/{name}@{digest}"),
                Pointer::Digest(digest.parse().expect("a well-formed digest")),
            ),
        };
        let reference: Reference = text.parse().map_err(TestCaseError::fail)?;
        prop_assert_eq!(&reference.host, &host);
        prop_assert_eq!(&reference.repository, &name);
        prop_assert_eq!(&reference.pointer, &expected);
        prop_assert_eq!(reference.to_string(), text);
        let repository: Repository = format!("{host}/{name}").parse().map_err(TestCaseError::fail)?;
        prop_assert_eq!(repository.at(expected), reference);
    }

    #[test]
    fn digests_are_sha256_of_64_lower_case_hex_and_nothing_else(
        text in prop_oneof![any::<String>(), "sha256:[0-9a-fA-F]{62,66}", "[a-z0-9]{3,7}:[0-9a-f]{64}"],
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let well_formed = text
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        prop_assert_eq!(text.parse::<Digest>().is_ok(), well_formed, "{:?}", text);
        let digest = Digest::of(&bytes);
        prop_assert_eq!(digest.to_string().parse::<Digest>(), Ok(digest));
    }

    #[test]
    fn endpoint_settings_never_panic_and_map_what_they_list(
        text in prop_oneof![any::<String>(), "[a-z0-9.:=/, -]{0,60}"],
        entries in prop::collection::vec((host(), "https?://[a-z][a-z0-9]{0,7}(\\.[a-z][a-z0-9]{0,7}){0,2}(:[0-9]{1,4})?(/[a-z]{1,6}){0,2}/?"), 0..4),
        other_host in host(),
    ) {
        if let Ok(endpoints) = text.parse::<Endpoints>() {
            let _ = endpoints.base_url(&other_host);
            for host in text.split([',', '=']) {
                let _ = endpoints.base_url(host);
            }
        }
        let setting = entries
            .iter()
            .map(|(host, url)| format!(" {host} = {url} "))
            .collect::<Vec<_>>()
            .join(",");
        let endpoints: Endpoints = setting.parse().map_err(TestCaseError::fail)?;
        // The last entry for a host wins, as a later variable setting would.
        let listed: std::collections::HashMap<&String, &String> =
            entries.iter().map(|(host, url)| (host, url)).collect();
        for (host, url) in listed {
            let base = endpoints.base_url(host).map_err(TestCaseError::fail)?;
            let mut expected = url::Url::parse(url).expect("a URL");
            if !expected.path().ends_with('/') {
                expected.set_path(&format!("{}/", expected.path()));
            }
            prop_assert_eq!(base, expected);
        }
        if !entries.iter().any(|(host, _)| *host == other_host) {
            let base = endpoints.base_url(&other_host).map_err(TestCaseError::fail)?;
            // Loopback registries speak plain HTTP; every other host HTTPS.
            let scheme = if other_host.starts_with("localhost") { "http" } else { "https" };
            let expected = url::Url::parse(&format!("{scheme}://{other_host}/")).expect("a URL");
            prop_assert_eq!(base, expected);
        }
    }
}

#[test]
fn an_undecodable_punycode_host_is_refused_with_its_name() {
    let endpoints: Endpoints = "".parse().expect("no endpoints is a setting");
    let error = endpoints
        .base_url("registry.xn--0")
        .expect_err("an xn-- label that is not punycode is no host");
    assert!(error.contains("\"registry.xn--0\""), "{error}");
    let decodable = endpoints
        .base_url("registry.xn--bcher-kva.example")
        .expect("a punycode host");
    assert_eq!(
        decodable.as_str(),
        "https://registry.xn--bcher-kva.example/"
    );
}

proptest! {
    // Each case computes HMACs in debug builds: fewer cases keep the suite at a few seconds.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(CASES / 4)
    })]

    #[test]
    fn a_signed_delivery_promotes_and_any_change_to_its_body_is_not(
        (event, _) in release_event(),
        mutations in prop::collection::vec(byte_mutation(), 1..4),
    ) {
        let event = ReleaseEvent { action: "published".to_string(), draft: false, prerelease: false, ..event };
        let body = event.payload().to_string();
        let reading = intake::read(&signed_delivery(&body, WEBHOOK_SECRET), &signed_policy());
        prop_assert!(matches!(reading, Reading::Promote { .. }), "{reading:?}");

        let tampered = mutate_bytes(&body, &mutations);
        prop_assume!(tampered != body);
        let reading = intake::read(&signed_delivery(&tampered, "not-the-secret"), &signed_policy());
        prop_assert!(!matches!(reading, Reading::Promote { .. }), "signed with another secret: {reading:?}");
        let mut message: Value = serde_json::from_str(&signed_delivery(&body, WEBHOOK_SECRET)).expect("JSON");
        message["body"] = json!(tampered);
        let reading = intake::read(&message.to_string(), &signed_policy());
        prop_assert!(
            matches!(reading, Reading::Rejected(_) | Reading::Malformed(_)),
            "a body changed after signing: {reading:?}"
        );
    }
}

/// GitHub's ping carried in every envelope that has room for headers is skipped, not malformed.
#[test]
fn a_ping_in_any_envelope_is_skipped() {
    for envelope in ENVELOPES {
        if envelope == Envelope::BareRelease {
            continue;
        }
        let message = envelope.wrap("ping", &ping().to_string());
        let reading = intake::read(&message, &policy());
        assert!(
            matches!(reading, Reading::Skip(_)),
            "{envelope:?}: {reading:?}"
        );
    }
}

/// A base64 body that is not base64 is malformed, whatever else the event says.
#[test]
fn a_body_marked_base64_that_is_not_is_malformed() {
    let payload = ReleaseEvent::published("v1.0.0", COMMIT)
        .payload()
        .to_string();
    let mut message: Value =
        serde_json::from_str(&Envelope::ApiGatewayV2.wrap("release", &payload)).expect("JSON");
    message["body"] = json!(format!("{}!", STANDARD.encode(&payload)));
    let reading = intake::read(&message.to_string(), &policy());
    assert!(matches!(reading, Reading::Malformed(_)), "{reading:?}");
}
