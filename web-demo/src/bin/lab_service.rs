//! The lab's flaky upstream service, standalone: every host on 127.0.0.1,
//! host `i` on port `--port-base + i` (default 8090; 0 picks free ports).
//! Prints the hosts as one JSON line, then serves until killed.

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let base = match args.as_slice() {
        [] => Ok(8090),
        [flag, port] if flag == "--port-base" => port
            .parse::<u16>()
            .map_err(|_| format!("--port-base takes a port number, got `{port}`")),
        _ => Err("usage: lab-service [--port-base N]".to_owned()),
    };
    let base = match base {
        Ok(b) => b,
        Err(message) => {
            eprintln!("lab-service: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio starts");
    runtime.block_on(async {
        match staunch_demo::service::Service::start(base).await {
            Ok(service) => {
                println!("{}", service.hosts_json());
                std::future::pending::<()>().await;
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lab-service: {e}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}

#[cfg(target_arch = "wasm32")]
fn main() {}
