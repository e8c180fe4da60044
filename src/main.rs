//! The `recx` binary: everything lives in the library; see `recx::cli`.

/// mimalloc instead of glibc's malloc: training frees and reallocates tensors of many sizes
/// every step, and glibc keeps most of that memory (a LoRA step of SmolLM2-135M with gradient
/// checkpointing peaked at 4.4 GB under glibc, 2.2 GB under mimalloc, at the same speed).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match recx::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
