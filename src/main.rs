//! The `allot` command; see [`cli`].

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // No transparent huge pages for this process: mimalloc asks for them,
    // and a 2 MiB page is resident however little of it the heap uses.
    // Off, peak RSS in the bench's big_sale fell 10-15% at the same speed
    // (BENCHMARKS.md); a kernel without the flag just keeps them.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    match cli::run(cli::Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("allot: {e:#}");
            ExitCode::from(2)
        }
    }
}
