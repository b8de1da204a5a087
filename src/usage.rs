//! A setting that is missing or wrong, found before anything was touched: raised on several floors (the AWS
//! configuration, the webhook's settings, the command line), mapped to exit code 2 at the top.

/// A setting that is missing or wrong, found before anything was touched.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);
