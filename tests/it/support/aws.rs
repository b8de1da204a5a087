//! The test side's own SQS, DynamoDB and ECS clients, pointed at the world's moto: they set up the
//! queue, the ledger table and the production service the binary uses, and read back what it left
//! there.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use serde_json::Value;

use super::REGION;
use super::moto::Moto;

/// moto, as the SDK sees it: static test credentials, one region, no lookups in the environment.
fn config(moto: &Moto) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(moto.url())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "tests",
        )))
        .build()
}

/// A message received this many times moves to the dead-letter queue on its next receive.
pub const MAX_RECEIVE_COUNT: u32 = 2;

/// An SQS queue with a dead-letter queue behind it, as the release webhook's queue is set up.
pub struct Queue {
    client: aws_sdk_sqs::Client,
    pub url: String,
    pub dead_letter_url: String,
}

/// A message as the test side received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub body: String,
    /// How many times the message has been received, this time included.
    pub receive_count: u32,
}

/// How many messages a queue holds, by state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub visible: u32,
    /// Received and neither deleted nor back yet (in flight).
    pub not_visible: u32,
}

impl Queue {
    /// Creates `name` and `name-dead-letter`, with a redrive policy of MAX_RECEIVE_COUNT receives.
    pub async fn create(moto: &Moto, name: &str) -> Queue {
        let client = aws_sdk_sqs::Client::new(&config(moto));
        let dead_letter_url = create_queue(&client, &format!("{name}-dead-letter"), None).await;
        let dead_letter_arn = queue_arn(&client, &dead_letter_url).await;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dead_letter_arn,
            "maxReceiveCount": MAX_RECEIVE_COUNT,
        })
        .to_string();
        let url = create_queue(&client, name, Some(redrive)).await;
        Queue {
            client,
            url,
            dead_letter_url,
        }
    }

    /// Sends `body` and returns the message id SQS gave it.
    pub async fn send(&self, body: &str) -> String {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .expect("send a message")
            .message_id()
            .expect("a message id")
            .to_string()
    }

    pub async fn counts(&self) -> Counts {
        counts(&self.client, &self.url).await
    }

    /// The counts once every in-flight message is visible again (its visibility timeout ran
    /// out), or when `limit` has passed.
    pub async fn counts_once_visible(&self, limit: Duration) -> Counts {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let counts = self.counts().await;
            if counts.not_visible == 0 {
                // moto counts visible and in-flight messages at two instants: a message can turn
                // visible between them and be in neither. Counted again, every one is visible.
                return self.counts().await;
            }
            if tokio::time::Instant::now() > deadline {
                return counts;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn dead_letter_counts(&self) -> Counts {
        counts(&self.client, &self.dead_letter_url).await
    }

    /// Every message visible now, handed straight back (visible again) after reading. Each read
    /// counts as a receive towards the redrive policy.
    pub async fn peek(&self) -> Vec<Received> {
        receive_and_hand_back(&self.client, &self.url).await
    }

    pub async fn peek_dead_letters(&self) -> Vec<Received> {
        receive_and_hand_back(&self.client, &self.dead_letter_url).await
    }
}

async fn create_queue(client: &aws_sdk_sqs::Client, name: &str, redrive: Option<String>) -> String {
    let mut request = client.create_queue().queue_name(name);
    if let Some(redrive) = redrive {
        request = request.attributes(QueueAttributeName::RedrivePolicy, redrive);
    }
    request
        .send()
        .await
        .unwrap_or_else(|error| panic!("create queue {name}: {error:?}"))
        .queue_url()
        .expect("a queue URL")
        .to_string()
}

async fn counts(client: &aws_sdk_sqs::Client, url: &str) -> Counts {
    let answer = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("get the queue's message counts");
    let attributes = answer.attributes().expect("queue attributes");
    let count = |name: &QueueAttributeName| -> u32 {
        attributes
            .get(name)
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("no {name:?} in {attributes:?}"))
    };
    Counts {
        visible: count(&QueueAttributeName::ApproximateNumberOfMessages),
        not_visible: count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    }
}

async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> String {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap_or_else(|error| panic!("get the ARN of queue {url}: {error:?}"))
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn).cloned())
        .expect("a queue ARN")
}

async fn receive_and_hand_back(client: &aws_sdk_sqs::Client, url: &str) -> Vec<Received> {
    let mut received = Vec::new();
    let mut receipts = Vec::new();
    loop {
        // Hidden while we read on, so that each message is read once; handed back below.
        let answer = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .expect("receive messages");
        if answer.messages().is_empty() {
            break;
        }
        for message in answer.messages() {
            received.push(Received {
                body: message.body().unwrap_or_default().to_string(),
                receive_count: message
                    .attributes()
                    .and_then(|attributes| {
                        attributes.get(&MessageSystemAttributeName::ApproximateReceiveCount)
                    })
                    .and_then(|count| count.parse().ok())
                    .expect("ApproximateReceiveCount"),
            });
            receipts.push(message.receipt_handle().expect("a receipt").to_string());
        }
    }
    for receipt in receipts {
        client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .expect("hand a message back");
    }
    received
}

/// The ledger's DynamoDB table: string partition key `tag_name`, on demand.
pub struct Table {
    client: aws_sdk_dynamodb::Client,
    pub name: String,
}

impl Table {
    pub async fn create(moto: &Moto, name: &str) -> Table {
        let client = aws_sdk_dynamodb::Client::new(&config(moto));
        let created = client
            .create_table()
            .table_name(name)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("tag_name")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("an attribute definition"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("tag_name")
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("a key schema element"),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        // Each world has its own moto, so the table can only exist already if the SDK retried a
        // creation whose answer was lost (moto's server closes connections the client may reuse).
        let retried = created.as_ref().is_err_and(|error| {
            error
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception())
        });
        if !retried {
            created.unwrap_or_else(|error| panic!("create table {name}: {error:?}"));
        }
        Table {
            client,
            name: name.to_string(),
        }
    }

    /// The item recorded for `tag`, as JSON (strings, numbers, booleans, lists, maps).
    pub async fn item(&self, tag: &str) -> Option<Value> {
        self.attributes(tag).await.as_ref().map(json_of_item)
    }

    /// The item recorded for `tag`, as DynamoDB holds it.
    async fn attributes(&self, tag: &str) -> Option<HashMap<String, AttributeValue>> {
        self.client
            .get_item()
            .table_name(&self.name)
            .key("tag_name", AttributeValue::S(tag.to_string()))
            .consistent_read(true)
            .send()
            .await
            .expect("get an item")
            .item()
            .cloned()
    }

    /// Every item in the table, as JSON: the releases, the webhook's delivery claims and the deploy
    /// sequence.
    pub async fn all_items(&self) -> Vec<Value> {
        self.client
            .scan()
            .table_name(&self.name)
            .send()
            .await
            .expect("scan the table")
            .items()
            .iter()
            .map(json_of_item)
            .collect()
    }

    /// Every release item, as JSON (keys with a `#`, which no release tag has, left out).
    pub async fn items(&self) -> Vec<Value> {
        let mut items = self.all_items().await;
        items.retain(|item| {
            item["tag_name"]
                .as_str()
                .is_some_and(|key| !key.contains('#'))
        });
        items
    }

    /// Changes the item recorded for `tag` in place, as another writer (or an older ecr-promote) might
    /// have left it.
    pub async fn rewrite(
        &self,
        tag: &str,
        change: impl FnOnce(&mut HashMap<String, AttributeValue>),
    ) {
        let mut item = self
            .attributes(tag)
            .await
            .unwrap_or_else(|| panic!("no item for {tag}"));
        change(&mut item);
        self.put_attributes(item).await;
    }

    /// Writes an item of string attributes directly, as another run (or a person) might have.
    pub async fn put(&self, attributes: &[(&str, &str)]) {
        let item = attributes
            .iter()
            .map(|(name, value)| (name.to_string(), AttributeValue::S(value.to_string())))
            .collect();
        self.put_attributes(item).await;
    }

    async fn put_attributes(&self, item: HashMap<String, AttributeValue>) {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .expect("put an item");
    }
}

/// A production ECS cluster in moto, in which the tests register task definitions and create
/// services as a deploy stage would.
pub struct Ecs {
    client: aws_sdk_ecs::Client,
    pub cluster: String,
}

impl Ecs {
    pub async fn create(moto: &Moto, cluster: &str) -> Ecs {
        Ecs::create_with(aws_sdk_ecs::Client::new(&config(moto)), cluster).await
    }

    /// The cluster created with `client` (e.g. acting in the staging account).
    async fn create_with(client: aws_sdk_ecs::Client, cluster: &str) -> Ecs {
        client
            .create_cluster()
            .cluster_name(cluster)
            .send()
            .await
            .unwrap_or_else(|error| panic!("create cluster {cluster}: {error:?}"));
        Ecs {
            client,
            cluster: cluster.to_string(),
        }
    }

    /// Registers the next revision of task definition `family`, each container `(name, image)`;
    /// returns its ARN.
    pub async fn register(&self, family: &str, containers: &[(&str, &str)]) -> String {
        let mut request = self.client.register_task_definition().family(family);
        for (name, image) in containers {
            request = request.container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name(*name)
                    .image(*image)
                    .memory(512)
                    .essential(true)
                    .build(),
            );
        }
        request
            .send()
            .await
            .unwrap_or_else(|error| panic!("register task definition {family}: {error:?}"))
            .task_definition()
            .and_then(|definition| definition.task_definition_arn())
            .expect("a task definition ARN")
            .to_string()
    }

    /// Creates service `name` whose deployment runs `task_definition` (an ARN). moto's
    /// UpdateService does not start a new deployment, so a service on another revision is created
    /// on it.
    pub async fn create_service(&self, name: &str, task_definition: &str) {
        self.create_service_of(name, task_definition, 2).await;
    }

    /// Creates service `name` on `task_definition` whose deployment ECS reports COMPLETED: moto
    /// completes a rollout once the running count (its MOTO_ECS_SERVICE_RUNNING, 0 here) reaches the
    /// desired count, so the service desires none.
    pub async fn create_completed_service(&self, name: &str, task_definition: &str) {
        self.create_service_of(name, task_definition, 0).await;
    }

    async fn create_service_of(&self, name: &str, task_definition: &str, desired_count: i32) {
        self.client
            .create_service()
            .cluster(&self.cluster)
            .service_name(name)
            .task_definition(task_definition)
            .desired_count(desired_count)
            .send()
            .await
            .unwrap_or_else(|error| panic!("create service {name}: {error:?}"));
    }

    /// The id (`ecs-svc/…`) of service `name`'s primary deployment.
    pub async fn primary_deployment(&self, name: &str) -> String {
        let answer = self
            .client
            .describe_services()
            .cluster(&self.cluster)
            .services(name)
            .send()
            .await
            .unwrap_or_else(|error| panic!("describe service {name}: {error:?}"));
        answer
            .services()
            .first()
            .and_then(|s| {
                s.deployments()
                    .iter()
                    .find(|d| d.status() == Some("PRIMARY"))
            })
            .and_then(|d| d.id())
            .unwrap_or_else(|| panic!("service {name} has no primary deployment: {answer:?}"))
            .to_string()
    }
}

fn json_of_item(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), json_of(value)))
            .collect(),
    )
}

fn json_of(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => Value::String(text.clone()),
        // The ledger's numbers (release ids, deploy sequences) are whole: as `show --json` prints them.
        AttributeValue::N(number) => {
            Value::from(number.parse::<u64>().unwrap_or_else(|_| {
                panic!("the ledger holds a number that is not whole: {number}")
            }))
        }
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(list) => Value::Array(list.iter().map(json_of).collect()),
        AttributeValue::M(map) => json_of_item(map),
        // A string set has no order: sorted, so that tests can compare it.
        AttributeValue::Ss(set) => {
            let mut strings = set.clone();
            strings.sort();
            Value::Array(strings.into_iter().map(Value::String).collect())
        }
        other => panic!("the ledger has no use for {other:?}"),
    }
}

/// The GitHub webhook secret in Secrets Manager, as the production stack keeps it.
pub struct WebhookSecret {
    client: aws_sdk_secretsmanager::Client,
    pub arn: String,
}

impl WebhookSecret {
    pub async fn create(moto: &Moto, name: &str, value: &str) -> WebhookSecret {
        let client = aws_sdk_secretsmanager::Client::new(&config(moto));
        let arn = client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|error| panic!("create secret {name}: {error:?}"))
            .arn()
            .expect("a secret ARN")
            .to_string();
        WebhookSecret { client, arn }
    }

    /// Puts a new value, as a rotation does: it becomes AWSCURRENT and the old one AWSPREVIOUS.
    pub async fn rotate(&self, value: &str) {
        self.client
            .put_secret_value()
            .secret_id(&self.arn)
            .secret_string(value)
            .send()
            .await
            .expect("put a new secret value");
    }
}

/// The production pipeline in moto's CodePipeline, which records each execution and its variables.
pub struct CodePipeline {
    client: aws_sdk_codepipeline::Client,
    pub name: String,
}

/// One execution, as the test side reads it back.
#[derive(Clone, Debug, PartialEq)]
pub struct Execution {
    pub id: String,
    /// Pipeline variables by name, with their resolved values.
    pub variables: Vec<(String, String)>,
}

impl CodePipeline {
    /// Creates `name` with two stages (CodePipeline's minimum) and the role it needs.
    pub async fn create(moto: &Moto, name: &str) -> CodePipeline {
        use aws_sdk_codepipeline::types::{
            ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore,
            ArtifactStoreType, PipelineDeclaration, PipelineType, PipelineVariableDeclaration,
            StageDeclaration,
        };
        let role_arn = create_pipeline_role(moto).await;
        let action = |category: ActionCategory, provider: &str| {
            ActionDeclaration::builder()
                .name(provider)
                .action_type_id(
                    ActionTypeId::builder()
                        .category(category)
                        .owner(ActionOwner::Aws)
                        .provider(provider)
                        .version("1")
                        .build()
                        .expect("an action type"),
                )
                .build()
                .expect("an action")
        };
        let stage = |name: &str, action: ActionDeclaration| {
            StageDeclaration::builder()
                .name(name)
                .actions(action)
                .build()
                .expect("a stage")
        };
        let declaration = PipelineDeclaration::builder()
            .name(name)
            .role_arn(role_arn)
            .pipeline_type(PipelineType::V2)
            .artifact_store(
                ArtifactStore::builder()
                    .r#type(ArtifactStoreType::S3)
                    .location("artifacts")
                    .build()
                    .expect("an artifact store"),
            )
            .variables(
                PipelineVariableDeclaration::builder()
                    .name("release_tag")
                    .default_value("-")
                    .build()
                    .expect("a variable"),
            )
            .stages(stage("Source", action(ActionCategory::Source, "S3")))
            .stages(stage("Promote", action(ActionCategory::Build, "CodeBuild")))
            .build()
            .expect("a pipeline declaration");
        let client = aws_sdk_codepipeline::Client::new(&config(moto));
        client
            .create_pipeline()
            .pipeline(declaration)
            .send()
            .await
            .unwrap_or_else(|error| panic!("create pipeline {name}: {error:?}"));
        CodePipeline {
            client,
            name: name.to_string(),
        }
    }

    /// Every execution started so far, oldest first.
    pub async fn executions(&self) -> Vec<Execution> {
        let summaries = self
            .client
            .list_pipeline_executions()
            .pipeline_name(&self.name)
            .send()
            .await
            .expect("list pipeline executions");
        let mut executions = Vec::new();
        for summary in summaries.pipeline_execution_summaries().iter().rev() {
            let id = summary.pipeline_execution_id().expect("an execution id");
            let execution = self
                .client
                .get_pipeline_execution()
                .pipeline_name(&self.name)
                .pipeline_execution_id(id)
                .send()
                .await
                .expect("get a pipeline execution");
            let variables = execution
                .pipeline_execution()
                .map(|execution| execution.variables())
                .unwrap_or_default()
                .iter()
                .map(|variable| {
                    (
                        variable.name().unwrap_or_default().to_string(),
                        variable.resolved_value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            executions.push(Execution {
                id: id.to_string(),
                variables,
            });
        }
        executions
    }
}

/// moto creates a pipeline only with a role CodePipeline may assume. IAM through its query API:
/// the one call the tests make there does not warrant another SDK crate.
async fn create_pipeline_role(moto: &Moto) -> String {
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "CreateRole")
        .append_pair("Version", "2010-05-08")
        .append_pair("RoleName", "pipeline")
        .append_pair("AssumeRolePolicyDocument", &trust.to_string())
        .finish();
    let answer = reqwest::Client::new()
        .post(moto.url())
        // moto tells services apart by the credential scope of the signature.
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("ask moto's IAM to create the pipeline role");
    let status = answer.status();
    let text = answer.text().await.expect("read moto's IAM answer");
    assert!(
        status.is_success(),
        "create the pipeline role: {status}\n{text}"
    );
    let arn = text
        .split("<Arn>")
        .nth(1)
        .and_then(|rest| rest.split("</Arn>").next())
        .unwrap_or_else(|| panic!("no role ARN in moto's answer:\n{text}"));
    arn.to_string()
}

/// moto, as the SDK sees it acting as `role` (moto keeps each account's resources apart by the
/// account the role's ARN names).
async fn acting_as(moto: &Moto, role: &str) -> SdkConfig {
    let base = config(moto);
    let assumed = aws_sdk_sts::Client::new(&base)
        .assume_role()
        .role_arn(role)
        .role_session_name("tests")
        .send()
        .await
        .unwrap_or_else(|error| panic!("assume {role}: {error:?}"));
    let credentials = assumed.credentials().expect("credentials");
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_string()),
            None,
            "staging",
        )))
        .build()
}

/// Staging's ECS service and its CloudWatch alarms, in the staging account, as the soak gate reads
/// them. moto gives a new service one deployment, created now, whose rollout is COMPLETED when moto
/// runs with `MOTO_ECS_SERVICE_RUNNING` at least the desired count (2 here) and IN_PROGRESS
/// otherwise, with `MOTO_ECS_SERVICE_FAILED_TASKS` failed tasks; it never fails a rollout itself.
pub struct StagingService {
    ecs: aws_sdk_ecs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    pub cluster: String,
    pub service: String,
}

impl StagingService {
    /// Service `service` of cluster `cluster` whose task definition runs each container `(name,
    /// image)`, the image `repo@sha256:…` as a task definition pins it; created now.
    pub async fn create(
        moto: &Moto,
        role: &str,
        cluster: &str,
        service: &str,
        containers: &[(&str, &str)],
    ) -> StagingService {
        let staging = acting_as(moto, role).await;
        let ecs = Ecs::create_with(aws_sdk_ecs::Client::new(&staging), cluster).await;
        let definition = ecs.register("api", containers).await;
        ecs.create_service(service, &definition).await;
        StagingService {
            ecs: ecs.client,
            cloudwatch: aws_sdk_cloudwatch::Client::new(&staging),
            cluster: cluster.to_string(),
            service: service.to_string(),
        }
    }

    /// The service's deployments as DescribeServices gives them: (id, rolloutState).
    pub async fn deployments(&self) -> Vec<(String, String)> {
        let answer = self
            .ecs
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.service)
            .send()
            .await
            .expect("describe the staging service");
        answer.services()[0]
            .deployments()
            .iter()
            .map(|d| {
                (
                    d.id().unwrap_or_default().to_string(),
                    d.rollout_state().map_or("", |s| s.as_str()).to_string(),
                )
            })
            .collect()
    }

    /// A metric alarm `name` in staging, in `state` (OK, ALARM, INSUFFICIENT_DATA).
    pub async fn alarm(&self, name: &str, state: &str) {
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(10.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .unwrap_or_else(|error| panic!("put alarm {name}: {error:?}"));
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(state.into())
            .state_reason("set by the test")
            .send()
            .await
            .unwrap_or_else(|error| panic!("set alarm {name} to {state}: {error:?}"));
    }
}

/// The EventBridge Scheduler schedules in moto's default group, as (name, expression, the
/// schedule's JSON as the API gives it).
pub async fn schedules(moto: &Moto) -> Vec<(String, Value)> {
    let client = aws_sdk_scheduler::Client::new(&config(moto));
    let listed = client
        .list_schedules()
        .send()
        .await
        .expect("list schedules");
    let mut found = Vec::new();
    for summary in listed.schedules() {
        let name = summary.name().unwrap_or_default().to_string();
        let schedule = client
            .get_schedule()
            .name(&name)
            .send()
            .await
            .unwrap_or_else(|error| panic!("get schedule {name}: {error:?}"));
        let target = schedule.target();
        found.push((
            name.clone(),
            serde_json::json!({
                "expression": schedule.schedule_expression(),
                "timezone": schedule.schedule_expression_timezone(),
                "after": schedule.action_after_completion().map(|a| a.as_str()),
                "target": target.map(|t| t.arn()),
                "role": target.map(|t| t.role_arn()),
                "input": target.and_then(|t| t.input()),
            }),
        ));
    }
    found
}

/// ECR's scans of staging images, as moto keeps them. moto's ECR holds no image bytes (the
/// Distribution registries do), so each scanned image is registered there by its manifest and
/// digest, in the staging account, a scan is started, and moto is told through its own API what
/// DescribeImageScanFindings answers for that digest.
pub struct StagingScans {
    moto: String,
    ecr: aws_sdk_ecr::Client,
}

impl StagingScans {
    /// Acting in the staging account, as the role `PROMOTE_SOURCE_ROLE_ARN` names does.
    pub async fn open(moto: &Moto, role: &str) -> StagingScans {
        let staging = acting_as(moto, role).await;
        StagingScans {
            moto: moto.url(),
            ecr: aws_sdk_ecr::Client::new(&staging),
        }
    }

    /// `image` in `repository` (under `tag`) scanned, with ECR's answer `findings` (the
    /// `imageScanFindings` object; `status` the scan status).
    pub async fn scanned(
        &self,
        repository: &str,
        tag: &str,
        image: &super::Image,
        status: &str,
        findings: Value,
    ) {
        let created = self
            .ecr
            .create_repository()
            .repository_name(repository)
            .send()
            .await;
        if let Err(error) = created {
            assert!(
                error
                    .as_service_error()
                    .is_some_and(|e| e.is_repository_already_exists_exception()),
                "create repository {repository}: {error:?}"
            );
        }
        let manifest = String::from_utf8(image.manifest.clone()).expect("a JSON manifest");
        let image_id = || {
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(image.digest())
                .build()
        };
        self.ecr
            .put_image()
            .repository_name(repository)
            .image_manifest(manifest)
            .image_manifest_media_type(image.media_type())
            .image_tag(tag)
            .image_digest(image.digest())
            .send()
            .await
            .unwrap_or_else(|error| panic!("register {repository}:{tag} in moto's ECR: {error:?}"));
        self.ecr
            .start_image_scan()
            .repository_name(repository)
            .image_id(image_id())
            .send()
            .await
            .unwrap_or_else(|error| panic!("start the scan of {repository}:{tag}: {error:?}"));
        let result = serde_json::json!({
            "account_id": super::STAGING_ACCOUNT,
            "region": REGION,
            "results": [{
                "registryId": super::STAGING_ACCOUNT,
                "repositoryName": repository,
                "imageId": {"imageDigest": image.digest()},
                "imageScanStatus": {"status": status, "description": format!("The scan is {status}.")},
                "imageScanFindings": findings,
            }],
        });
        let answer = reqwest::Client::new()
            .post(format!(
                "{}/moto-api/static/ecr/scan-finding-results",
                self.moto
            ))
            .header("content-type", "application/json")
            .body(result.to_string())
            .send()
            .await
            .expect("set moto's scan findings");
        assert!(
            answer.status().is_success(),
            "moto refused the findings: {}",
            answer.status()
        );
    }
}

/// The outcomes queue as the production stack makes it: an EventBridge rule on the default bus
/// matching ECS's deployment state-change events for the production service, with a queue as its
/// target. ECS in moto sends no such events, so the test puts them on the bus as ECS would.
pub struct OutcomesQueue {
    events: aws_sdk_eventbridge::Client,
    service_arn: String,
    pub queue: Queue,
}

impl OutcomesQueue {
    pub async fn create(moto: &Moto, cluster: &str, service: &str) -> OutcomesQueue {
        let events = aws_sdk_eventbridge::Client::new(&config(moto));
        let queue = Queue::create(moto, "deploy-outcomes").await;
        let queue_arn = queue_arn(&queue.client, &queue.url).await;
        let service_arn = format!(
            "arn:aws:ecs:{REGION}:{}:service/{cluster}/{service}",
            super::PRODUCTION_ACCOUNT
        );
        let pattern = serde_json::json!({
            "source": ["aws.ecs"],
            "detail-type": ["ECS Deployment State Change"],
            "resources": [service_arn],
        });
        events
            .put_rule()
            .name("deploy-outcomes")
            .event_pattern(pattern.to_string())
            .send()
            .await
            .expect("put the outcomes rule");
        events
            .put_targets()
            .rule("deploy-outcomes")
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("outcomes")
                    .arn(queue_arn)
                    .build()
                    .expect("a target"),
            )
            .send()
            .await
            .expect("put the outcomes rule's target");
        OutcomesQueue {
            events,
            service_arn,
            queue,
        }
    }

    /// ECS tells of deployment `deployment_id`: `event_name` is SERVICE_DEPLOYMENT_IN_PROGRESS,
    /// _COMPLETED or _FAILED, with ECS's `reason`. The detail is shaped as AWS documents it
    /// ("Amazon ECS service deployment state change events").
    pub async fn ecs_says(&self, event_name: &str, deployment_id: &str, reason: &str) {
        let detail = serde_json::json!({
            "eventType": if event_name.ends_with("FAILED") { "ERROR" } else { "INFO" },
            "eventName": event_name,
            "deploymentId": deployment_id,
            "updatedAt": "2026-12-04T10:02:11Z",
            "reason": reason,
        });
        let answer = self
            .events
            .put_events()
            .entries(
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("aws.ecs")
                    .detail_type("ECS Deployment State Change")
                    .resources(&self.service_arn)
                    .detail(detail.to_string())
                    .build(),
            )
            .send()
            .await
            .expect("put an ECS event");
        assert_eq!(answer.failed_entry_count(), 0, "{answer:?}");
    }
}

/// A subscription to ecr-promote's events, as a team would make one: an EventBridge bus, a rule on
/// it matching the source `ecr-promote`, and a queue as the rule's target (moto's EventBridge
/// delivers to SQS targets), from which the test reads each event's JSON.
pub struct EventSubscription {
    pub bus: String,
    queue: Queue,
}

impl EventSubscription {
    pub async fn create(moto: &Moto, bus: &str) -> EventSubscription {
        let events = aws_sdk_eventbridge::Client::new(&config(moto));
        events
            .create_event_bus()
            .name(bus)
            .send()
            .await
            .unwrap_or_else(|error| panic!("create event bus {bus}: {error:?}"));
        let queue = Queue::create(moto, &format!("{bus}-subscriber")).await;
        let queue_arn = queue_arn(&queue.client, &queue.url).await;
        events
            .put_rule()
            .name("ecr-promote-events")
            .event_bus_name(bus)
            .event_pattern(r#"{"source": ["ecr-promote"]}"#)
            .send()
            .await
            .expect("put the rule");
        events
            .put_targets()
            .rule("ecr-promote-events")
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("subscriber")
                    .arn(queue_arn)
                    .build()
                    .expect("a target"),
            )
            .send()
            .await
            .expect("put the rule's target");
        EventSubscription {
            bus: bus.to_string(),
            queue,
        }
    }

    /// Every event delivered so far, each as EventBridge sent it (`source`, `detail-type`,
    /// `detail`), in the order the queue holds them.
    pub async fn events(&self) -> Vec<Value> {
        self.queue
            .peek()
            .await
            .iter()
            .map(|m| serde_json::from_str(&m.body).expect("an event is JSON"))
            .collect()
    }
}

impl Moto {
    /// The AWS configuration that reaches this moto, for tests that call the library itself.
    pub fn sdk_config(&self) -> SdkConfig {
        config(self)
    }
}
