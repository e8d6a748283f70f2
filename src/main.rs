//! The `drover` binary.

fn main() {
    std::process::exit(drover::cli::main());
}
