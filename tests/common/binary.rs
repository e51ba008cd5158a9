//! Running the `edgecap` binary from the tests that drive it as a user would (cli.rs, eval.rs).
//! Kept out of `common` because only targets built with the `cli` feature have the binary.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::process::Command;

/// Command-line arguments from a mix of `&str`, `String`, `&Path` and `PathBuf`.
macro_rules! argv {
    ($($arg:expr),* $(,)?) => { vec![$(std::ffi::OsString::from($arg)),*] };
}

/// What one run of the binary did.
pub struct Run {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn edgecap(args: impl IntoIterator<Item = impl AsRef<OsStr>>) -> Run {
    edgecap_with_env(args, &[])
}

/// `edgecap ARGS...` with extra environment variables.
pub fn edgecap_with_env(args: impl IntoIterator<Item = impl AsRef<OsStr>>, env: &[(&str, &str)]) -> Run {
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let shown = env.iter().map(|(k, v)| format!("{k}={v} ")).collect::<String>();
    let what = format!("{shown}edgecap {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
    let out = Command::new(env!("CARGO_BIN_EXE_edgecap"))
        .args(&args)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs");
    Run {
        what,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Run {
    /// Whether the run found no GPU adapter and the test may skip (saying so): never when
    /// `EDGECAP_REQUIRE_GPU=1`, as scripts/test.sh sets it, where the run's failure must stand.
    pub fn lacks_a_gpu_and_may_skip(&self) -> bool {
        let lacks = self.code != Some(0) && self.stderr.contains("no GPU adapter");
        let skip = lacks && std::env::var("EDGECAP_REQUIRE_GPU").as_deref() != Ok("1");
        if skip {
            eprintln!("skipped: {}", self.stderr.trim());
        }
        skip
    }
}
