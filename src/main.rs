//! The `warden` command-line tool; the harness library does the work.

fn main() {
    std::process::exit(warden::harness::cli::run(std::env::args_os(), warden::FILTER_WASM));
}
