//! **TEST DOUBLE — never use outside tests.** Serves the in-memory
//! TiKV+PD test double ([`tikv_test_server::TestCluster`]) on the address
//! given as the only argument (`host:port`, port 0 picks one) until killed,
//! so a test can run the metadata tier as a process of its own, e.g. in a
//! network namespace it can cut off. Prints `tikv-test-double: serving at
//! HOST:PORT` once serving. Everything is in memory: killing the process
//! loses every key.

use std::net::SocketAddr;

fn main() {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: tikv-test-double HOST:PORT");
        std::process::exit(2);
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tikv-test-double: bad address {addr:?}: {e}");
            std::process::exit(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tikv-test-double: runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async {
        let cluster = match tikv_test_server::TestCluster::start_on(addr).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tikv-test-double: bind {addr}: {e}");
                std::process::exit(1);
            }
        };
        println!("tikv-test-double: serving at {}", cluster.pd_endpoint());
        // Serves until the process is killed; the cluster lives as long
        // as this future.
        std::future::pending::<()>().await;
        drop(cluster);
    });
}
