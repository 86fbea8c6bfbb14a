//! `sqlite-ceiling DIR [--seconds S] [--rows R] [--json PATH]`: what SQLite itself allows on this machine,
//! the write ceiling `make bench` divides the single node's write rate by.
//!
//! It opens a fresh database in DIR (a directory on the file system the nodes' data lives on) the way a
//! node opens its own (sqlx, WAL, `synchronous = FULL`, so every commit waits for the disk), creates a
//! table shaped like `messages` (16-byte ids, a chat, a sender, ~100 characters of text, two integers),
//! and for S seconds each:
//!
//! - **one row per transaction**: `BEGIN IMMEDIATE`, one INSERT, `COMMIT`;
//! - **R rows per transaction**: `BEGIN IMMEDIATE`, one INSERT of R rows (multi-VALUES), `COMMIT`.
//!
//! It prints rows per second for both and, with `--json`, writes them as
//! `{"seconds":…,"rows_per_transaction":R,"single":{"rows":…,"rows_per_sec":…},"batched":{…}}`.
//! The database is removed afterwards.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};

#[derive(Debug, Parser)]
#[command(
    about = "SQLite's insert rate on this machine (WAL, synchronous=FULL), one row and R rows per transaction"
)]
struct Args {
    /// Directory for the scratch database (the file system the nodes' data lives on).
    dir: PathBuf,
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rows per transaction of the batched measurement.
    #[arg(long, default_value_t = 64)]
    rows: usize,
    /// Writes the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Rate {
    rows: u64,
    transactions: u64,
    secs: f64,
    rows_per_sec: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    seconds: f64,
    rows_per_transaction: usize,
    single: Rate,
    batched: Rate,
}

const SCHEMA: &str = "CREATE TABLE rows (
    id BLOB PRIMARY KEY, chat_id BLOB NOT NULL, sender_id BLOB NOT NULL,
    content TEXT NOT NULL, created_at INTEGER NOT NULL, epoch INTEGER NOT NULL)";

/// ~100 characters, like the benchmark's messages.
const CONTENT: &str =
    "The quick brown fox jumps over the lazy dog while the cluster commits every row it was given.";

async fn open(path: &Path) -> Result<SqliteConnection, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let mut connection = SqliteConnection::connect_with(&options).await?;
    sqlx::query(SCHEMA).execute(&mut connection).await?;
    Ok(connection)
}

/// Inserts `rows` rows per transaction for `duration`.
async fn measure(
    connection: &mut SqliteConnection,
    rows: usize,
    duration: Duration,
    next_id: &mut u64,
) -> Result<Rate, sqlx::Error> {
    let chat = [7u8; 16];
    let started = Instant::now();
    let (mut written, mut transactions) = (0u64, 0u64);
    while started.elapsed() < duration {
        let mut transaction = connection.begin_with("BEGIN IMMEDIATE").await?;
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO rows (id, chat_id, sender_id, content, created_at, epoch) ",
        );
        let first = *next_id;
        insert.push_values(first..first + rows as u64, |mut row, n| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&n.to_be_bytes());
            row.push_bind(id.to_vec())
                .push_bind(chat.to_vec())
                .push_bind(id.to_vec())
                .push_bind(CONTENT)
                .push_bind(n as i64)
                .push_bind(n as i64);
        });
        insert.build().execute(&mut *transaction).await?;
        transaction.commit().await?;
        *next_id += rows as u64;
        written += rows as u64;
        transactions += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Rate {
        rows: written,
        transactions,
        secs,
        rows_per_sec: written as f64 / secs,
    })
}

async fn run(args: &Args) -> Result<Report, String> {
    if !args.seconds.is_finite() || args.seconds <= 0.0 || args.rows == 0 || args.rows > 1000 {
        return Err("--seconds must be > 0 and --rows 1–1000".into());
    }
    let scratch = tempfile_in(&args.dir)?;
    let path = scratch.join("ceiling.db");
    let result = async {
        let mut connection = open(&path).await?;
        let duration = Duration::from_secs_f64(args.seconds);
        let mut next_id = 0;
        let single = measure(&mut connection, 1, duration, &mut next_id).await?;
        let batched = measure(&mut connection, args.rows, duration, &mut next_id).await?;
        connection.close().await?;
        Ok::<_, sqlx::Error>(Report {
            seconds: args.seconds,
            rows_per_transaction: args.rows,
            single,
            batched,
        })
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    result.map_err(|error| format!("{}: {error}", path.display()))
}

/// A fresh directory inside `dir` (removed by the caller).
fn tempfile_in(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let scratch = dir.join(format!("sqlite-ceiling-{}", std::process::id()));
    std::fs::create_dir(&scratch).map_err(|error| format!("{}: {error}", scratch.display()))?;
    Ok(scratch)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sqlite-ceiling: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(run(&args)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("sqlite-ceiling: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "sqlite (WAL, synchronous=FULL): {:.0} rows/s one row per transaction, {:.0} rows/s {} rows per transaction",
        report.single.rows_per_sec, report.batched.rows_per_sec, report.rows_per_transaction
    );
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).expect("a report serialises");
        if let Err(error) = std::fs::write(path, text) {
            eprintln!("sqlite-ceiling: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
