mod cli;

fn main() {
    // A closed stdout (`autorep train … | head -1`) ends the program quietly, as it does any
    // Unix tool: every stage writes its checkpoint and metrics before it prints an epoch.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    quiet_wayland();
    empty_is_unset();
    if let Err(e) = cli::run(cli::Cli::parse_args()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Without XDG_RUNTIME_DIR, libwayland prints "error: XDG_RUNTIME_DIR is invalid or not set"
/// each time a GPU instance probes it, which reads as a failure. A private runtime folder of
/// our own (created 0700, as the spec asks) silences it; nothing is written there.
fn quiet_wayland() {
    #[cfg(unix)]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::DirBuilderExt;
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("autorep-runtime-{uid}"));
        let ok = std::fs::DirBuilder::new().mode(0o700).create(&dir).is_ok() || dir.is_dir();
        if ok {
            // SAFETY: called at the start of main, before any thread exists.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
        }
    }
}

/// An environment option set to nothing (`AUTOREP_PLANS= autorep …`, a blanked variable in a
/// script) means "not set", not a value the parser rejects.
fn empty_is_unset() {
    for var in ["AUTOREP_PLANS", "AUTOREP_DEVICE"] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            // SAFETY: called at the start of main, before any thread exists.
            unsafe { std::env::remove_var(var) };
        }
    }
}
