//! The `kz-endpoint` command: parse the arguments, run the command, exit with its status.
//! The commands are in `cli/`, one file each.

mod cli;

// mimalloc: the engine allocates many small JSON objects; glibc's malloc is twice as slow
// at that (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    <cli::Cli as clap::Parser>::parse().run()
}
