//! Load generator for the ivr-verify capacity benchmark.
//!
//! Each call behaves like a caller: it places an INVITE, sends PCMA audio
//! every 20 ms, types its contract number and `#`
//! as RFC 4733 telephone-events, accepts the REFER with 202, reports the
//! transfer with a NOTIFY carrying a 200 sipfrag, and responds 200 to the BYE.
//! It prints its figures as `KEY=value` lines that a shell can source.
//!
//! Usage: ivr-loadgen --sip ADDR --customers CSV (--concurrent N | --rate R)
//!        [--duration-s S] [--ramp-s S] [--hold-ms MS] [--calls N]
//!        [--service-pid PID] [--expected-acr NAME]

mod call;
mod media;
mod sip;
mod stats;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stats::Stats;

struct Options {
    sip: SocketAddr,
    customers: String,
    concurrent: Option<u64>,
    rate: Option<f64>,
    duration: Duration,
    ramp: Duration,
    hold: Duration,
    calls: Option<u64>,
    service_pid: Option<u32>,
    expected_acr: String,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        sip: "127.0.0.1:5060".parse().unwrap(),
        customers: String::new(),
        concurrent: None,
        rate: None,
        duration: Duration::from_secs(30),
        ramp: Duration::ZERO,
        hold: Duration::from_millis(500),
        calls: None,
        service_pid: None,
        expected_acr: "basic".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let invalid = |_| format!("invalid value {value:?} for {flag}");
        match flag.as_str() {
            "--sip" => options.sip = value.parse().map_err(|_| format!("invalid address {value:?} for --sip"))?,
            "--customers" => options.customers = value,
            "--concurrent" => options.concurrent = Some(value.parse().map_err(invalid)?),
            "--rate" => options.rate = Some(value.parse().map_err(|_| format!("invalid value {value:?} for --rate"))?),
            "--duration-s" => options.duration = Duration::from_secs_f64(value.parse().map_err(|_| format!("invalid value {value:?} for --duration-s"))?),
            "--ramp-s" => options.ramp = Duration::from_secs_f64(value.parse().map_err(|_| format!("invalid value {value:?} for --ramp-s"))?),
            "--hold-ms" => options.hold = Duration::from_millis(value.parse().map_err(invalid)?),
            "--calls" => options.calls = Some(value.parse().map_err(invalid)?),
            "--service-pid" => options.service_pid = Some(value.parse().map_err(|_| format!("invalid value {value:?} for --service-pid"))?),
            "--expected-acr" => options.expected_acr = value,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.customers.is_empty() {
        return Err("--customers FILE is required".to_owned());
    }
    if options.concurrent.is_none() == options.rate.is_none() {
        return Err("give exactly one of --concurrent N and --rate CALLS_PER_S".to_owned());
    }
    Ok(options)
}

/// Reads (first phone, first contract) of every row of a customers file
/// with the header `customer_id,phones,mobile,contracts,…`.
fn read_customers(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    let rows: Vec<(String, String)> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("customer_id"))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let phone = fields.get(1)?.split(';').next()?.trim().to_owned();
            let contract = fields.get(3)?.split(';').next()?.trim().to_owned();
            Some((phone, contract))
        })
        .filter(|(phone, contract)| !phone.is_empty() && !contract.is_empty())
        .collect();
    if rows.is_empty() {
        return Err(format!("{path}: no customer with a phone and a contract"));
    }
    Ok(rows)
}

/// CPU time (utime + stime, in clock ticks) of a process.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from the state field (3).
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Busy CPU time of the whole machine in clock ticks: every field of the
/// `cpu` line of /proc/stat except idle and iowait.
fn machine_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let busy: u64 = fields.iter().take(8).enumerate().filter(|(index, _)| *index != 3 && *index != 4).map(|(_, v)| v).sum();
    Some(busy)
}

/// Resident set size of a process in KiB.
fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("ivr-loadgen: {message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build the tokio runtime");
    runtime.block_on(run(options));
}

async fn run(options: Options) {
    let customers = match read_customers(&options.customers) {
        Ok(customers) => Arc::new(customers),
        Err(message) => {
            eprintln!("ivr-loadgen: {message}");
            std::process::exit(2);
        }
    };
    let sip = match sip::SipSocket::bind(options.sip).await {
        Ok(sip) => sip,
        Err(error) => {
            eprintln!("ivr-loadgen: cannot bind the SIP socket: {error}");
            std::process::exit(1);
        }
    };

    let stats = Arc::new(Stats::new());
    let active = Arc::new(AtomicI64::new(0));
    let next_number = Arc::new(AtomicU64::new(0));
    let run_id = std::process::id();
    let start = Instant::now();
    let stop_placing = start + options.duration;
    let service = options.service_pid.map(|pid| pid.to_string());
    let rss_idle = service.as_deref().and_then(rss_kib);

    let spawn_call = {
        let sip = sip.clone();
        let stats = Arc::clone(&stats);
        let active = Arc::clone(&active);
        let customers = Arc::clone(&customers);
        let next_number = Arc::clone(&next_number);
        let hold = options.hold;
        let expected_acr = options.expected_acr.clone();
        move || {
            let number = next_number.fetch_add(1, Ordering::Relaxed);
            let (caller, contract) = customers[(number % customers.len() as u64) as usize].clone();
            let spec = call::CallSpec { number, caller, contract, expected_acr: expected_acr.clone(), type_after: hold, run_id };
            let sip = sip.clone();
            let stats = Arc::clone(&stats);
            let active = Arc::clone(&active);
            active.fetch_add(1, Ordering::Relaxed);
            async move {
                call::place(sip, spec, stats).await;
                active.fetch_sub(1, Ordering::Relaxed);
            }
        }
    };

    let mut placers = Vec::new();
    let total_cap = options.calls.unwrap_or(u64::MAX);
    if let Some(concurrent) = options.concurrent {
        for slot in 0..concurrent {
            let delay = options.ramp.mul_f64(slot as f64 / concurrent as f64);
            let spawn_call = spawn_call.clone();
            let next_number = Arc::clone(&next_number);
            placers.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                while Instant::now() < stop_placing && next_number.load(Ordering::Relaxed) < total_cap {
                    spawn_call().await;
                }
            }));
        }
    } else if let Some(rate) = options.rate {
        let spawn_call = spawn_call.clone();
        let next_number = Arc::clone(&next_number);
        placers.push(tokio::spawn(async move {
            let mut calls = Vec::new();
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while Instant::now() < stop_placing && next_number.load(Ordering::Relaxed) < total_cap {
                ticker.tick().await;
                calls.push(tokio::spawn(spawn_call()));
            }
            for call in calls {
                let _ = call.await;
            }
        }));
    }

    // Sample the service every 500 ms. The measuring window starts 2 s
    // after the ramp and ends when placing stops.
    // With --calls the calls may end before --duration-s; then so does the
    // window.
    let window_start = start + options.ramp + Duration::from_secs(2);
    let finished = Arc::new(AtomicBool::new(false));
    let sampler = {
        let active = Arc::clone(&active);
        let finished = Arc::clone(&finished);
        let service = service.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_millis(500));
            let mut window: Option<(Instant, Option<u64>, Option<u64>, Option<u64>)> = None;
            let mut call_seconds = 0.0;
            let mut last = Instant::now();
            let mut peak: (i64, Option<u64>) = (0, None);
            let mut max_active = 0;
            loop {
                ticker.tick().await;
                let now = Instant::now();
                let current = active.load(Ordering::Relaxed);
                max_active = max_active.max(current);
                let ending = now >= stop_placing || finished.load(Ordering::Relaxed);
                if now >= window_start && !ending {
                    if window.is_none() {
                        let self_ticks = cpu_ticks("self");
                        window = Some((now, service.as_deref().and_then(cpu_ticks), self_ticks, machine_busy_ticks()));
                    } else {
                        call_seconds += current as f64 * (now - last).as_secs_f64();
                    }
                    if current >= peak.0 {
                        peak = (current, service.as_deref().and_then(rss_kib));
                    }
                }
                last = now;
                if ending {
                    let Some((opened, service_start, self_start, machine_start)) = window else {
                        return (0.0, 0.0, None, None, None, peak, max_active);
                    };
                    let seconds = (now - opened).as_secs_f64();
                    let service_cpu = service.as_deref().and_then(cpu_ticks).zip(service_start).map(|(end, begin)| (end - begin) as f64 / clock_ticks_per_second());
                    let self_cpu = cpu_ticks("self").zip(self_start).map(|(end, begin)| (end - begin) as f64 / clock_ticks_per_second());
                    let machine_cpu = machine_busy_ticks().zip(machine_start).map(|(end, begin)| (end - begin) as f64 / clock_ticks_per_second());
                    return (seconds, call_seconds, service_cpu, self_cpu, machine_cpu, peak, max_active);
                }
            }
        })
    };

    for placer in placers {
        let _ = placer.await;
    }
    finished.store(true, Ordering::Relaxed);
    let (window_s, call_seconds, service_cpu, self_cpu, machine_cpu, peak, max_active) =
        sampler.await.unwrap_or((0.0, 0.0, None, None, None, (0, None), 0));
    let rss_end = service.as_deref().and_then(rss_kib);

    let inner = stats.lock();
    let show = |value: Option<f64>| value.map_or("n/a".to_owned(), |v| format!("{v:.3}"));
    println!("CALLS_STARTED={}", inner.started);
    println!("CALLS_COMPLETED={}", inner.completed);
    println!("CALLS_FAILED={}", inner.failed);
    let reasons: Vec<String> = inner.failures.iter().map(|(kind, count)| format!("{kind:?}:{count}")).collect();
    println!("FAILURE_REASONS=\"{}\"", reasons.join(" "));
    println!("DIGITS_LOST_CALLS={}", inner.digits_lost);
    println!("MAX_ACTIVE_CALLS={max_active}");
    println!("SETUP_P50_MS={}", show(inner.setup.quantile_ms(0.50)));
    println!("SETUP_P99_MS={}", show(inner.setup.quantile_ms(0.99)));
    println!("SETUP_MAX_MS={:.3}", inner.setup.max_ms());
    println!("SETUP_SAMPLES={}", inner.setup.count());
    println!("REFER_P50_MS={}", show(inner.digits_to_refer.quantile_ms(0.50)));
    println!("REFER_P99_MS={}", show(inner.digits_to_refer.quantile_ms(0.99)));
    println!("REFER_SAMPLES={}", inner.digits_to_refer.count());
    println!("JITTER_P99_MS={}", show(inner.jitter.quantile_ms(0.99)));
    println!("JITTER_P999_MS={}", show(inner.jitter.quantile_ms(0.999)));
    println!("JITTER_MAX_MS={:.3}", inner.jitter.max_ms());
    println!("RTP_RECEIVED={}", inner.rtp_received);
    println!("RTP_SENT={}", inner.rtp_sent);
    println!("RTP_LATE={}", inner.rtp_late);
    println!("WINDOW_S={window_s:.1}");
    println!("CALL_SECONDS={call_seconds:.1}");
    if let Some(cpu) = service_cpu {
        println!("SERVICE_CPU_S={cpu:.2}");
        if call_seconds > 0.0 {
            println!("CPU_US_PER_CALL_SECOND={:.1}", cpu * 1e6 / call_seconds);
        }
        if window_s > 0.0 {
            println!("SERVICE_CPU_UTIL={:.3}", cpu / window_s);
        }
    }
    if let Some(cpu) = self_cpu {
        if window_s > 0.0 {
            println!("LOADGEN_CPU_UTIL={:.3}", cpu / window_s);
        }
    }
    if let (Some(machine), Some(service), Some(own)) = (machine_cpu, service_cpu, self_cpu) {
        if window_s > 0.0 {
            println!("OTHER_CPU_UTIL={:.3}", ((machine - service - own) / window_s).max(0.0));
        }
    }
    if let Some(idle) = rss_idle {
        println!("RSS_IDLE_KIB={idle}");
    }
    if let (Some(idle), (calls, Some(rss))) = (rss_idle, peak) {
        println!("RSS_PEAK_KIB={rss}");
        println!("RSS_PEAK_CALLS={calls}");
        if calls > 0 {
            println!("RSS_PER_CALL_KIB={:.1}", (rss as f64 - idle as f64) / calls as f64);
        }
    }
    if let Some(rss) = rss_end {
        println!("RSS_END_KIB={rss}");
    }
}
