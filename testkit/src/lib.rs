//! Test support for kz-endpoint, in one place the library does not ship: the synthetic
//! accounts of the benchmarks, the load tool and the tests ([`synthetic`]), and a stand-in
//! ecallmgr registrar ([`ecallmgr`]). The load tool, `kz-endpoint-load`, is this crate's
//! binary (`docs/performance.md`).

pub mod ecallmgr;
pub mod synthetic;
pub mod worker_process;
