//! The `jwt-auth` binary: parses the command line and hands over to `cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = jwt_auth_api::Cli::parse();
    match jwt_auth_api::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jwt-auth: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
