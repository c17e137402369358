//! The `keygate` binary: everything is in the library, so that tests and `cargo xtask codegen`
//! can reach the command-line definition.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    keygate::main()
}
