//! Runs the engine in a loop, for profiling (`valgrind --tool=callgrind`, `perf record`).
//! Usage: cargo run --release --example engine_profile -- [device|user|group] [iterations]
// mimalloc: the engine allocates many small JSON objects; glibc's malloc is twice as slow
// at that (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kz_endpoint::build_api::parse_request;
use kz_endpoint::engine::build;
use kz_endpoint_testkit::synthetic;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "device".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let account = synthetic::account("be0c4000000000000000000000000001", 10);
    let inputs = account.inputs();
    let target = match which.as_str() {
        "user" => &account.user,
        "group" => &account.group,
        _ => &account.device,
    };
    let req = parse_request(account.request(target).as_object().unwrap()).unwrap();
    let started = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(build(std::hint::black_box(&req), &inputs));
    }
    let per = started.elapsed() / n as u32;
    println!(
        "{which}: {per:?} per build, {:.0} builds/s",
        1.0 / per.as_secs_f64()
    );
}
