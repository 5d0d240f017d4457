//! The pure leg engine, with every input already gathered: one device, a user with 10
//! devices, a group of 50 members with nested groups. One iteration is one complete build,
//! so builds per second per core = 1 / (time per iteration).

// mimalloc: the engine allocates many small JSON objects; glibc's malloc is twice as slow
// at that (see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use kz_endpoint::build_api::parse_request;
use kz_endpoint::engine::{Outcome, build};
use kz_endpoint_testkit::synthetic;

fn engine(c: &mut Criterion) {
    let account = synthetic::account("be0c4000000000000000000000000001", 10);
    let inputs = account.inputs();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    for (name, target, legs) in [
        ("device", &account.device, 1),
        ("user_10_devices", &account.user, 10),
        ("group_50_members", &account.group, 60),
    ] {
        let req = parse_request(account.request(target).as_object().unwrap()).unwrap();
        match build(&req, &inputs) {
            Outcome::Done { result: Ok(l), .. } => assert_eq!(l.len(), legs, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        group.bench_function(name, |b| {
            b.iter(|| build(black_box(&req), black_box(&inputs)))
        });
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
