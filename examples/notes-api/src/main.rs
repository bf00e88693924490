use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match tollgate_notes_api::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
