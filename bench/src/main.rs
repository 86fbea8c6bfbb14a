//! The `chat-bench` binary: parse the arguments, run, print the table and write the JSON.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

fn main() -> ExitCode {
    let config = match chat_bench::Args::parse().into_config() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("chat-bench: {error}");
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chat-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: chat_bench::Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    let json = config.json.clone();
    let report = runtime.block_on(chat_bench::run(config))?;
    let table = report.table();
    match json.as_deref() {
        Some(path) if path.as_os_str() == "-" => {
            eprint!("{table}");
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", report.to_json()).context("writing the JSON to stdout")?;
        }
        Some(path) => {
            print!("{table}");
            std::fs::write(path, report.to_json() + "\n")
                .with_context(|| format!("writing the JSON to {}", path.display()))?;
            println!("JSON written to {}", path.display());
        }
        None => print!("{table}"),
    }
    Ok(())
}
