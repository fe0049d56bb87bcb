fn main() {
    std::process::exit(nettrace::cli::main());
}
