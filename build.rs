//! Records the git revision for `promptgauge_build_info{revision}`.
use std::process::Command;

fn main() {
    // Rebuild when HEAD moves (checkout or commit), not on every file change.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    println!("cargo:rerun-if-env-changed=PROMPTGAUGE_REVISION");
    let revision = std::env::var("PROMPTGAUGE_REVISION").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    println!(
        "cargo:rustc-env=PROMPTGAUGE_REVISION={}",
        revision.unwrap_or_else(|| "unknown".to_owned())
    );
}
