//! The `warden` command-line tool; the library's [`warden::cli`] does the work.

fn main() {
    std::process::exit(warden::cli::run(std::env::args_os(), warden::FILTER_WASM));
}
