//! Which real components the tests can use on this machine.
//!
//! Tests that drive a real component (Debian's `docker-registry`,
//! `promtool`, python3 with PyYAML, aioquic or python-tuf) are `#[ignore]`d, with the
//! reason and the package to install, when the component is missing: the
//! README's test command works on a fresh machine and says what it did not
//! run. With `IMAGEGATE_REQUIRE_TOOLS` set (`.ci/run`, after installing
//! them all) every such test runs, and a missing component fails it.
//! The cfgs change no code outside the tests (a change of them rebuilds the
//! crate, though).
//!
//! Re-run when the environment variable changes or a Debian package is
//! installed or removed (`/var/lib/dpkg/status`). A component installed
//! another way (`pip install aioquic`) is noticed at the next change of
//! this file: `touch build.rs`. Directories are not watched: Cargo scans a
//! watched directory recursively on every build (tens of thousands of files
//! in a Python site-packages).

use std::path::Path;
use std::process::{Command, Stdio};

/// (cfg name, whether the component is here).
fn components() -> [(&'static str, bool); 5] {
    [
        (
            "have_docker_registry",
            Path::new("/usr/bin/docker-registry").exists(),
        ),
        ("have_promtool", on_path("promtool")),
        ("have_pyyaml", python_imports("yaml")),
        ("have_aioquic", python_imports("aioquic")),
        (
            "have_python_tuf",
            python_imports("tuf.api.metadata, cryptography"),
        ),
    ]
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

fn python_imports(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=IMAGEGATE_REQUIRE_TOOLS");
    let dpkg = "/var/lib/dpkg/status";
    if Path::new(dpkg).is_file() {
        println!("cargo::rerun-if-changed={dpkg}");
    }
    let required =
        std::env::var("IMAGEGATE_REQUIRE_TOOLS").is_ok_and(|v| !v.is_empty() && v != "0");
    for (cfg, here) in components() {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if here || required {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
