//! `cluster-certs`: makes (or reuses) a cluster directory's CA and issues server certificates with it.
//!
//! ```text
//! cluster-certs --ca-dir .tls --host 127.0.0.1 --host localhost --out NODE_1/tls --out .tls/nameserver
//! ```
//!
//! Each `--out` folder gets `cert.pem` and `key.pem` (mode 600) for every `--host`. The CA's
//! certificate path is printed, so a person knows what to trust. `init.sh` calls it when `TLS=1`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cluster_tls::LocalAuthority;

/// Issues TLS server certificates from a local CA (created in --ca-dir when absent).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Folder of the CA (ca.pem, ca-key.pem): reused when it holds one, created otherwise.
    #[arg(long, value_name = "DIR")]
    ca_dir: PathBuf,
    /// An IP address or DNS name the servers answer under; repeat for several.
    #[arg(long = "host", value_name = "HOST", required = true)]
    hosts: Vec<String>,
    /// A folder to write cert.pem and key.pem into; repeat for several servers.
    #[arg(long = "out", value_name = "DIR", required = true)]
    outs: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cluster-certs: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), cluster_tls::AuthorityError> {
    // init.sh names HOST beside 127.0.0.1 and localhost, which is often one of them.
    let mut hosts: Vec<String> = Vec::new();
    for host in &args.hosts {
        if !hosts.contains(host) {
            hosts.push(host.clone());
        }
    }
    let (authority, created) = LocalAuthority::open_or_create(&args.ca_dir)?;
    for out in &args.outs {
        authority.issue(&hosts)?.write_to(out)?;
    }
    let verb = if created { "created" } else { "reused" };
    println!(
        "{verb} the cluster's CA; trust {} to reach its HTTPS servers without warnings",
        authority.certificate_path().display()
    );
    println!(
        "issued {} server certificate(s) for {}",
        args.outs.len(),
        hosts.join(", ")
    );
    Ok(())
}
