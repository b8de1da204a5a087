//! The Lambda event an HTTP request arrives as (API Gateway REST, HTTP API, function URL), opened into the
//! request's headers and body, and the function's answer in the shape all three take back.
//!
//! lambda_http's own reading of the event panics on a body marked base64 that is not base64 (and on a Host
//! header no URL can hold), before any handler runs: the caller would get no answer and the log no line. So
//! the event is read here, into the same aws_lambda_events types and in the same order, errors as values.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use lambda_http::http::{HeaderMap, StatusCode};
use serde::Deserialize as _;
use serde_json::{Value, json};

/// An HTTP request as the function reads it: headers (case-insensitive names) and the body as sent.
#[derive(Debug)]
pub struct HttpRequest {
    pub headers: HeaderMap,
    /// The body as the client sent it (decoded when the event carried it base64), or why it cannot be had.
    pub body: Result<Vec<u8>, String>,
}

/// `event` opened; `Err` when it is not an API Gateway or function URL event at all.
pub fn open(event: &Value) -> Result<HttpRequest, String> {
    // REST first: an HTTP API event has no top-level httpMethod, which a REST one must have.
    let (headers, body, base64) = if let Ok(event) = ApiGatewayProxyRequest::deserialize(event) {
        // Merged as lambda_http merges them: the single-valued headers win.
        let mut headers = event.multi_value_headers;
        headers.extend(event.headers);
        (headers, event.body, event.is_base64_encoded)
    } else {
        let event = ApiGatewayV2httpRequest::deserialize(event).map_err(|error| {
            format!("the event is not an API Gateway or function URL request: {error}")
        })?;
        (event.headers, event.body, event.is_base64_encoded)
    };
    let body = body.unwrap_or_default();
    let body = if base64 {
        BASE64.decode(&body).map_err(|error| {
            format!("the event's body is marked base64 but is not base64: {error}")
        })
    } else {
        Ok(body.into_bytes())
    };
    Ok(HttpRequest { headers, body })
}

/// The function's answer as API Gateway (REST and HTTP API) and function URLs all read it: `body` is the
/// JSON text of the HTTP response.
pub fn answer(status: StatusCode, body: &Value) -> Value {
    json!({
        "statusCode": status.as_u16(),
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
        "isBase64Encoded": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(headers: Value, body: &str, base64: bool) -> Value {
        json!({"resource": "/webhook", "path": "/webhook", "httpMethod": "POST", "headers": headers,
            "multiValueHeaders": {}, "requestContext": {"httpMethod": "POST", "resourcePath": "/webhook",
            "stage": "prod", "requestId": "r-1", "accountId": "222222222222"},
            "body": body, "isBase64Encoded": base64})
    }

    fn v2(headers: Value, body: &str, base64: bool) -> Value {
        json!({"version": "2.0", "routeKey": "$default", "rawPath": "/webhook", "rawQueryString": "",
            "headers": headers, "requestContext": {"accountId": "222222222222", "apiId": "abc",
            "domainName": "abc.lambda-url.us-east-1.on.aws", "http": {"method": "POST", "path": "/webhook",
            "protocol": "HTTP/1.1", "sourceIp": "192.30.252.1", "userAgent": "GitHub-Hookshot/1"},
            "requestId": "r-2", "routeKey": "$default", "stage": "$default",
            "time": "02/Mar/2026:10:15:00 +0000", "timeEpoch": 1772446500000_i64},
            "body": body, "isBase64Encoded": base64})
    }

    #[test]
    fn opens_rest_and_http_api_events_with_text_and_base64_bodies() {
        for event in [
            v1(json!({"X-GitHub-Event": "release"}), "{}", false),
            v1(json!({"X-GitHub-Event": "release"}), "e30=", true),
            v2(json!({"x-github-event": "release"}), "e30=", true),
            v2(json!({"x-github-event": "release"}), "{}", false),
        ] {
            let request = open(&event).unwrap();
            assert_eq!(request.headers["x-github-event"], "release", "{event}");
            assert_eq!(request.body.as_deref(), Ok(&b"{}"[..]), "{event}");
        }
    }

    #[test]
    fn a_body_marked_base64_that_is_not_keeps_its_headers_and_says_so() {
        for event in [
            v1(json!({"X-GitHub-Delivery": "d-1"}), "%%% not base64", true),
            v2(json!({"x-github-delivery": "d-1"}), "e30", true),
        ] {
            let request = open(&event).unwrap();
            assert_eq!(request.headers["x-github-delivery"], "d-1", "{event}");
            let error = request.body.unwrap_err();
            assert!(error.contains("not base64"), "{event}: {error}");
        }
    }

    #[test]
    fn other_events_are_refused_with_the_reason() {
        for event in [json!({}), json!([1]), json!({"Records": []}), json!("text")] {
            let error = open(&event).unwrap_err();
            assert!(
                error.contains("not an API Gateway or function URL"),
                "{event}: {error}"
            );
        }
    }
}
