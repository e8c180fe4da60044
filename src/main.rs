//! The `recx` binary: everything lives in the library; see `recx::cli`.

fn main() -> std::process::ExitCode {
    match recx::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
