//! Test support for kz-endpoint, in one place the library does not ship: the synthetic
//! accounts of the benchmarks, the load tool and the tests ([`synthetic`]), a stand-in
//! ecallmgr registrar ([`ecallmgr`]), and an echo consumer with no AMQP client library
//! ([`raw_echo`]), the load tool's floor, with what it shares with the other echo consumer
//! ([`echo`]). The load tool, `kz-endpoint-load`, is this crate's
//! binary (`docs/performance.md`).

pub mod ecallmgr;
pub mod echo;
pub mod raw_echo;
pub mod synthetic;
pub mod worker_process;
