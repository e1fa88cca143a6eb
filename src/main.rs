//! okta-ingest: the Lambda function when run by the Lambda runtime, the local CLI otherwise.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return match okta_ingest::lambda::run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("okta-ingest: {err}");
                ExitCode::FAILURE
            }
        };
    }
    okta_ingest::cli::run().await
}
