//! The GitHub release webhook as a Lambda function (custom runtime, `provided.al2023`). README, "The
//! webhook function".

use std::convert::Infallible;
use std::process::ExitCode;

use ecr_promote::webhook::{STALL, Settings, Webhook};
use ecr_promote::{aws, exit, logging};
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::{BoxFuture, service_fn};
use serde_json::Value;

fn main() -> ExitCode {
    // CloudWatch Logs Insights reads JSON lines.
    logging::init(logging::LogFormat::Json);
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            tracing::error!(exit_code = exit::USAGE, "error: {error}");
            return ExitCode::from(exit::USAGE);
        }
    };
    // One thread: an instance serves one invocation at a time, and its work is waiting on AWS.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("error: cannot start the async runtime: {error}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let served = runtime.block_on(async {
        let aws = match aws::Aws::load(STALL, None).await {
            Ok(aws) => aws,
            Err(error) => {
                tracing::error!(exit_code = exit::USAGE, "error: {error}");
                return Err(lambda_runtime::Error::from(error.0));
            }
        };
        let webhook = Webhook::new(&aws.config, settings);
        let webhook = &webhook;
        // The raw event, not lambda_http::run's Request: lambda_http panics on some malformed events before a
        // handler runs, and every event must get an answer (webhook::event). Boxed, as lambda_http boxes it:
        // the future is too deep a type for the compiler to lay out inline.
        lambda_runtime::run(service_fn(
            move |event: LambdaEvent<Value>| -> BoxFuture<'_, Result<Value, Infallible>> {
                Box::pin(async move { Ok(webhook.invoke(&event.payload).await) })
            },
        ))
        .await
    });
    match served {
        Ok(()) => ExitCode::from(exit::OK),
        Err(error) => {
            tracing::error!("error: the Lambda runtime stopped: {error}");
            ExitCode::from(exit::FAILURE)
        }
    }
}
