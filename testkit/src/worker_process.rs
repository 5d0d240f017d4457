//! The real `kz-endpoint serve` binary, started as a process of its own, for measurement.
//!
//! The load tool measures the worker this way so that its CPU time is the worker's alone
//! (user + system of the process, from `/proc`), apart from the load generator and the echo
//! consumer that share the machine with it; and so that what is measured is what operators
//! run, logging included.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How a worker process is started.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The `kz-endpoint` binary.
    pub binary: PathBuf,
    /// `--amqp-url`.
    pub amqp_url: String,
    /// `--couch-url`.
    pub couch_url: String,
    /// `--queue`.
    pub queue: String,
    /// `--binding`.
    pub binding: String,
    /// `--prefetch`.
    pub prefetch: u16,
    /// `--cache-ttl-secs` (0: every build reads CouchDB).
    pub cache_ttl_secs: u64,
}

/// A running `kz-endpoint serve`; killed when dropped.
pub struct WorkerProcess {
    child: Child,
    ops: String,
}

impl WorkerProcess {
    /// The `kz-endpoint` binary beside the running executable (`target/<profile>/`).
    pub fn default_binary() -> anyhow::Result<PathBuf> {
        let exe = std::env::current_exe().context("locating the running executable")?;
        Ok(exe.with_file_name("kz-endpoint"))
    }

    /// Starts the process and waits until it is ready (`/readyz` answers 200).
    pub fn start(o: &ServeOptions) -> anyhow::Result<Self> {
        if !Path::new(&o.binary).is_file() {
            bail!(
                "no kz-endpoint binary at {} (build it first: cargo build --release)",
                o.binary.display()
            );
        }
        let ops = free_local_address()?;
        let child = Command::new(&o.binary)
            .arg("serve")
            .args(["--amqp-url", &o.amqp_url])
            .args(["--couch-url", &o.couch_url])
            .args(["--queue", &o.queue])
            .args(["--binding", &o.binding])
            .args(["--prefetch", &o.prefetch.to_string()])
            .args(["--cache-ttl-secs", &o.cache_ttl_secs.to_string()])
            .args(["--http-listen", &ops])
            .env_remove("KZ_BINDINGS")
            .env_remove("KZ_FIXTUREDB")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Its log lines are written as in production (one per request), then dropped.
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", o.binary.display()))?;
        let mut p = Self { child, ops };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = p.child.try_wait()? {
                bail!("kz-endpoint serve exited at start-up: {status}");
            }
            if p.get("/readyz")
                .is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
            {
                return Ok(p);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("kz-endpoint serve was not ready within 20 s")
    }

    /// The process's CPU time and context switches so far.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        process_usage(self.child.id())
    }

    /// Its `/metrics` text.
    pub fn metrics(&self) -> anyhow::Result<String> {
        self.get("/metrics")
    }

    fn get(&self, path: &str) -> anyhow::Result<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.ops)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.ops
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a process has used so far, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// CPU time, user + system, of all its threads (those gone included).
    pub cpu: Duration,
    /// The part of [`Usage::cpu`] spent in the kernel on the process's behalf: its system
    /// calls, and the network work a loopback send does in the sender's context (the
    /// receiving socket's TCP processing and the wake-up of the process that reads it).
    /// The kernel splits user from system time by sampling at each clock tick, so this is
    /// a share, not a count.
    pub system: Duration,
    /// Context switches, voluntary and not, of its live threads: each is a thread that went
    /// to sleep (waiting for a message, a lock, a wake-up) or was preempted. Per request,
    /// they count the hand-offs between threads a message costs.
    pub context_switches: u64,
}

impl Usage {
    /// What was used between `earlier` and `self`.
    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(earlier.cpu),
            system: self.system.saturating_sub(earlier.system),
            context_switches: self
                .context_switches
                .saturating_sub(earlier.context_switches),
        }
    }
}

/// What process `pid` has used so far.
pub fn process_usage(pid: u32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (which is in parentheses and may hold spaces):
    // utime and stime are fields 14 and 15 of the line, in clock ticks.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .context("a short /proc stat line")?
            .parse()
            .context("a /proc stat field")
    };
    // Fields 14 and 15 counted from 1, after the pid and the name: indexes 11 and 12.
    let (user, system) = (ticks(11)?, ticks(12)?);
    // A process's own `status` counts its main thread's switches only: add up its threads'.
    let mut context_switches = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
            continue; // (the thread ended meanwhile)
        };
        context_switches += status
            .lines()
            .filter(|l| {
                l.starts_with("voluntary_ctxt_switches:")
                    || l.starts_with("nonvoluntary_ctxt_switches:")
            })
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(Usage {
        cpu: Duration::from_secs_f64((user + system) as f64 / clock_ticks_per_second()),
        system: Duration::from_secs_f64(system as f64 / clock_ticks_per_second()),
        context_switches,
    })
}

/// A local address nothing listens on now (bound, read, released).
fn free_local_address() -> anyhow::Result<String> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on (the kernel's `USER_HZ`, which
/// `/proc` reports in, is fixed at 100 on x86 and arm).
fn clock_ticks_per_second() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's share is read from its own field, and never exceeds the whole.
    #[test]
    fn usage_splits_system_time_from_the_total() {
        // Spend system time: each read of /proc is a few system calls, some 10 µs of the
        // kernel's time; 20 000 of them are well over the 10 ms of one clock tick.
        for _ in 0..20_000 {
            std::hint::black_box(std::fs::read_to_string("/proc/self/stat").unwrap());
        }
        let u = process_usage(std::process::id()).unwrap();
        assert!(u.system > Duration::ZERO && u.system <= u.cpu, "{u:?}");
        let later = process_usage(std::process::id()).unwrap().since(u);
        assert!(later.system <= later.cpu, "{later:?}");
    }
}
