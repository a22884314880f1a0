//! `lookout`: the command line, handed to the library.

use std::process::ExitCode;

use clap::Parser;
use lookout::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    lookout::run(Config::parse()).await
}
