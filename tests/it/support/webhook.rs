//! The front door in miniature: the production pipeline's queue and ledger (a [`Pipeline`]), the
//! webhook secret in Secrets Manager, the pipeline in CodePipeline, and the webhook function under
//! the Lambda emulator, set up as deploy/webhook.yml sets it up.

use serde_json::{Value, json};

use super::aws::{CodePipeline, Counts, Execution, WebhookSecret};
use super::github::{DELIVERY, Envelope, ReleaseEvent, signature};
use super::lambda::{Answer, Function};
use super::pipeline::Pipeline;

pub const SECRET_NAME: &str = "ecr-promote/github-webhook-secret";
pub const PIPELINE_NAME: &str = "ecr-promote-production";
/// The value the webhook secret starts with.
pub const WEBHOOK_SECRET: &str = "whsec-0b7e5c1d9a";

/// How an HTTP request reaches the function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// API Gateway REST API proxy event (v1): GitHub's header case, the body as text.
    RestApi,
    /// API Gateway HTTP API event (v2): lower-case headers, the body base64-encoded.
    HttpApi,
    /// Lambda function URL: the v2 shape, from a lambda-url domain.
    FunctionUrl,
}

pub const SHAPES: [Shape; 3] = [Shape::RestApi, Shape::HttpApi, Shape::FunctionUrl];

/// One webhook delivery as GitHub makes it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub shape: Shape,
    pub event: String,
    pub body: String,
    pub content_type: String,
    pub id: String,
    /// `X-Hub-Signature-256`; `None` sends none.
    pub signature: Option<String>,
}

impl Delivery {
    /// An unsigned delivery of GitHub event `event` with JSON `body`.
    pub fn of(event: &str, body: &str) -> Delivery {
        Delivery {
            shape: Shape::HttpApi,
            event: event.to_string(),
            body: body.to_string(),
            content_type: "application/json".to_string(),
            id: DELIVERY.to_string(),
            signature: None,
        }
    }

    pub fn release(release: &ReleaseEvent) -> Delivery {
        Delivery::of("release", &release.payload().to_string())
    }

    /// Signed with `secret` over the body as it will be sent.
    pub fn signed(mut self, secret: &str) -> Delivery {
        self.signature = Some(signature(&self.body, secret));
        self
    }

    /// The body sent as GitHub's `application/x-www-form-urlencoded` content type (`payload=`).
    pub fn form_encoded(mut self) -> Delivery {
        self.body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &self.body)
            .finish();
        self.content_type = "application/x-www-form-urlencoded".to_string();
        self
    }

    pub fn shape(mut self, shape: Shape) -> Delivery {
        self.shape = shape;
        self
    }

    pub fn id(mut self, id: &str) -> Delivery {
        self.id = id.to_string();
        self
    }

    /// The Lambda event API Gateway or the function URL hands the function.
    pub fn lambda_event(&self) -> Value {
        let envelope = match self.shape {
            Shape::RestApi => Envelope::ApiGatewayV1,
            Shape::HttpApi | Shape::FunctionUrl => Envelope::ApiGatewayV2,
        };
        let mut event: Value = serde_json::from_str(&envelope.wrap(&self.event, &self.body))
            .expect("an API Gateway event is JSON");
        let header = |name: &str| match self.shape {
            Shape::RestApi => name.to_string(),
            Shape::HttpApi | Shape::FunctionUrl => name.to_ascii_lowercase(),
        };
        let headers = &mut event["headers"];
        headers[header("Content-Type")] = json!(self.content_type);
        headers[header("X-GitHub-Delivery")] = json!(self.id);
        if let Some(signature) = &self.signature {
            headers[header("X-Hub-Signature-256")] = json!(signature);
        }
        if self.shape == Shape::FunctionUrl {
            event["routeKey"] = json!("$default");
            event["requestContext"]["routeKey"] = json!("$default");
            event["requestContext"]["domainName"] = json!("abcdefghij.lambda-url.us-east-1.on.aws");
        }
        event
    }
}

/// A pipeline with the webhook function in front of it.
pub struct FrontDoor {
    pub pipeline: Pipeline,
    pub secret: WebhookSecret,
    pub codepipeline: CodePipeline,
    pub function: Function,
}

impl FrontDoor {
    pub async fn start() -> FrontDoor {
        FrontDoor::start_with(&[]).await
    }

    /// With `settings` added to (or overriding) the function's environment.
    pub async fn start_with(settings: &[(&str, &str)]) -> FrontDoor {
        let pipeline = Pipeline::start().await;
        let (secret, codepipeline) = tokio::join!(
            WebhookSecret::create(&pipeline.world.moto, SECRET_NAME, WEBHOOK_SECRET),
            CodePipeline::create(&pipeline.world.moto, PIPELINE_NAME)
        );
        let function = start_function(&pipeline, &secret, settings).await;
        FrontDoor {
            pipeline,
            secret,
            codepipeline,
            function,
        }
    }

    /// Replaces the function with a fresh instance (a cold start) with `settings`.
    pub async fn restart_with(&mut self, settings: &[(&str, &str)]) {
        self.function = start_function(&self.pipeline, &self.secret, settings).await;
    }

    pub async fn deliver(&self, delivery: &Delivery) -> Answer {
        self.function.invoke(&delivery.lambda_event()).await
    }

    pub async fn executions(&self) -> Vec<Execution> {
        self.codepipeline.executions().await
    }

    /// The bodies of the messages on the queue.
    pub async fn queued(&self) -> Vec<String> {
        self.pipeline
            .queue
            .peek()
            .await
            .into_iter()
            .map(|message| message.body)
            .collect()
    }

    /// Nothing on the queue, no execution started, no delivery claimed.
    pub async fn assert_nothing_queued_or_started(&self) {
        assert_eq!(
            self.pipeline.queue.counts().await,
            Counts {
                visible: 0,
                not_visible: 0
            },
            "queue"
        );
        assert_eq!(self.executions().await, Vec::new(), "pipeline executions");
        assert_eq!(
            self.pipeline.table.all_items().await,
            Vec::<Value>::new(),
            "ledger"
        );
    }

    /// One message on the queue and one execution, started for release `tag`.
    pub async fn assert_queued_and_started_once(&self, tag: &str) {
        assert_eq!(self.queued().await.len(), 1, "messages on the queue");
        let executions = self.executions().await;
        assert_eq!(executions.len(), 1, "pipeline executions: {executions:?}");
        assert_eq!(
            executions[0].variables,
            [("release_tag".to_string(), tag.to_string())],
            "the execution's variables"
        );
    }
}

async fn start_function(
    pipeline: &Pipeline,
    secret: &WebhookSecret,
    settings: &[(&str, &str)],
) -> Function {
    let mut environment = vec![
        ("PROMOTE_QUEUE_URL", pipeline.queue.url.as_str()),
        ("PROMOTE_PIPELINE_NAME", PIPELINE_NAME),
        ("PROMOTE_WEBHOOK_SECRET_ARN", secret.arn.as_str()),
        ("PROMOTE_TABLE", pipeline.table.name.as_str()),
    ];
    environment.extend_from_slice(settings);
    Function::start(&pipeline.world, &environment).await
}
