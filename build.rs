//! Which real components the tests can use on this machine.
//!
//! Tests that drive a real component (Debian's `docker-registry`,
//! `promtool`, python3 with PyYAML or aioquic) are `#[ignore]`d, with the
//! reason and the package to install, when the component is missing: the
//! README's test command works on a fresh machine and says what it did not
//! run. With `IMAGEGATE_REQUIRE_TOOLS` set (`.ci/run`, after installing
//! them all) every such test runs, and a missing component fails it.
//! Nothing here affects the library or the binary.

use std::path::Path;
use std::process::{Command, Stdio};

/// (cfg name, whether the component is here).
fn components() -> [(&'static str, bool); 4] {
    [
        (
            "have_docker_registry",
            Path::new("/usr/bin/docker-registry").exists(),
        ),
        ("have_promtool", on_path("promtool")),
        ("have_pyyaml", python_imports("yaml")),
        ("have_aioquic", python_imports("aioquic")),
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

/// Where installing a component changes something, for re-running this
/// script then (and only then).
fn watched() -> Vec<String> {
    let mut dirs = vec!["/usr/bin".to_owned(), "/usr/local/bin".to_owned()];
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))",
        ])
        .stderr(Stdio::null())
        .output()
    {
        dirs.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned),
        );
    }
    dirs.retain(|d| Path::new(d).is_dir());
    dirs
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=IMAGEGATE_REQUIRE_TOOLS");
    println!("cargo::rerun-if-env-changed=PATH");
    for dir in watched() {
        println!("cargo::rerun-if-changed={dir}");
    }
    let required = std::env::var_os("IMAGEGATE_REQUIRE_TOOLS").is_some();
    for (cfg, here) in components() {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if here || required {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
