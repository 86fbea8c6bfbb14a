//! `bench-summary DIR`: the summary of a `make bench` results directory, as Markdown, printed and
//! written to `DIR/summary.md` (see `chat_bench::suite`).

use std::path::PathBuf;
use std::process::ExitCode;

use chat_bench::suite::Suite;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: bench-summary DIR   (the results directory of scripts/bench.sh)");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let suite = match Suite::read(&dir) {
        Ok(suite) => suite,
        Err(error) => {
            eprintln!("bench-summary: {error}");
            return ExitCode::FAILURE;
        }
    };
    let markdown = suite.markdown();
    let path = dir.join("summary.md");
    if let Err(error) = std::fs::write(&path, &markdown) {
        eprintln!("bench-summary: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    print!("{markdown}");
    ExitCode::SUCCESS
}
