//! The `imagegate` binary: boots the CLI, nothing else.

fn main() {}
