//! For the CLI: prints its arguments and the variable WASI_UDP_GREETING, then
//! exits with the code given as its first argument (0 without one; WASI 0.2
//! reports any non-zero code as failure).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("args: {}", args[1..].join(" "));
    if let Ok(greeting) = std::env::var("WASI_UDP_GREETING") {
        println!("greeting: {greeting}");
    }
    let code = args
        .get(1)
        .map(|code| code.parse().expect("an exit code"))
        .unwrap_or(0);
    std::process::exit(code);
}
