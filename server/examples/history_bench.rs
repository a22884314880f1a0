//! History's benchmark: 1,000,000 lines of about 100 bytes through the store (as the
//! writer thread drives it), then searches beside `grep` over the same text in a plain file,
//! the first page of a search and of a service's history, and reopening the store. Prints a
//! table with the targets; run by `scripts/bench.sh`, or alone:
//!
//! ```sh
//! cargo run --release -p lookout --example history_bench
//! # env: HISTORY_BENCH_LINES (1000000)
//! ```
//!
//! It measures the store (the part history adds); the engine reads lines as it always did.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use app::protocol::{Replica, Stream};
use lookout::clock::Timestamp;
use lookout::docker::frames::RawLine;
use lookout::history::{History, HistoryConfig};
use lookout::permits::Bound;
use lookout::search::{self, query, Bounds};
use lookout::store::{End, Owner, Retention, ServiceSpan, Store};

const CONTAINERS: usize = 4;
const BATCH: usize = 100;

fn main() {
    let total: usize = std::env::var("HISTORY_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("lookout-history-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder for the store");
    let retention = Retention {
        age: Duration::from_secs(7 * 86_400),
        bytes: u64::MAX,
    };
    let owners: Vec<Owner> = (0..CONTAINERS).map(owner).collect();
    // Today, so that the retention keeps it: one line every 50 µs, ending now.
    let now = lookout::clock::now_ns();
    let start = now - total as i64 * 50_000;
    // Beside the store's folder, not in it: the store's size is its folder's.
    let text_file = dir.with_extension("log");
    let mut plain = std::io::BufWriter::new(std::fs::File::create(&text_file).unwrap());

    // Ingest, a batch at a time, as followers hand lines to the writer.
    let mut store = Store::open(&dir, retention).expect("open the store");
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    let mut batches: Vec<Vec<RawLine>> =
        (0..CONTAINERS).map(|_| Vec::with_capacity(BATCH)).collect();
    let mut generated = Duration::ZERO;
    for i in 0..total {
        let g = Instant::now();
        let text = line_text(i);
        writeln!(plain, "{text}").unwrap();
        let c = i % CONTAINERS;
        batches[c].push(RawLine {
            ts: Timestamp {
                ns: start + i as i64 * 50_000,
            },
            seq: 0,
            stream: if i % 10 == 0 {
                Stream::Stderr
            } else {
                Stream::Stdout
            },
            text,
            truncated: false,
            level: None,
        });
        generated += g.elapsed();
        if batches[c].len() == BATCH {
            store.append(&owners[c], &batches[c]).expect("append");
            batches[c].clear();
        }
    }
    for (c, b) in batches.iter().enumerate() {
        store.append(&owners[c], b).expect("append");
    }
    store.flush().expect("flush");
    let wall = t0.elapsed().saturating_sub(generated);
    let cpu = cpu_secs() - cpu0 - generated.as_secs_f64();
    plain.flush().unwrap();
    drop(plain);
    let ingest = total as f64 / wall.as_secs_f64();
    let core_share = cpu / wall.as_secs_f64();
    let bytes = store.bytes().expect("size");

    let per_million = bytes as f64 * 1e6 / total as f64 / 1e6;
    let plain_mb = std::fs::metadata(&text_file).unwrap().len() as f64 / 1e6;

    // Full searches: a word in few lines, so every stored line is read.
    let rare = search_vs_grep(&store, "status=599", &["-c", "status=599"], &text_file);
    let regex = search_vs_grep(
        &store,
        r"/took=99\d\dms/",
        &["-cE", "took=99[0-9][0-9]ms"],
        &text_file,
    );
    // First pages: a common word (newest first, stops early) and a service's newest lines.
    let first_search = times(20, || {
        let q = query::parse("GET", now).unwrap();
        let bounds = Bounds {
            hits: 500,
            lines: u64::MAX,
        };
        search::find(&store.view_all(), "local", &q, |_, _| true, None, bounds).unwrap();
    });
    let first_history = times(20, || {
        let span = ServiceSpan {
            engine: "local",
            project: "bench",
            service: "api",
            since_ns: i64::MIN,
            until_ns: i64::MAX,
            levels: None,
        };
        store.view_all().lines(&span, 500, End::Newest).unwrap();
    });
    drop(store);
    let t = Instant::now();
    let mut reopened = Store::open(&dir, retention).expect("reopen");
    reopened.sweep(lookout::clock::now_ns()).expect("sweep");
    let startup = t.elapsed();
    let rss = peak_rss_mib();
    drop(reopened);
    let (quiet, busy) = writing_while_searched(&dir, retention, now);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&text_file);

    println!(
        "\nhistory: {total} lines of about 100 bytes, {CONTAINERS} containers, one day file\n"
    );
    println!("| figure | measured | target |");
    println!("|---|---|---|");
    println!(
        "| ingest | {ingest:.0} lines/s, {:.0}% of one core | >= 50000 lines/s, <= 100% of one core |",
        core_share * 100.0
    );
    println!(
        "| on disk | {per_million:.1} MB per 1,000,000 lines (plain text: {:.1} MB) | <= 40 MB |",
        plain_mb * 1e6 / total as f64
    );
    for (name, r) in [("substring", &rare), ("regex", &regex)] {
        println!(
            "| full {name} search | {:.0} ms, grep {:.0} ms: {:.1}x ({} hits, grep {}) | <= 5x grep, < 500 ms |",
            ms(r.ours),
            ms(r.grep),
            r.ours.as_secs_f64() / r.grep.as_secs_f64(),
            r.hits,
            r.grep_hits
        );
    }
    println!(
        "| first page of a search (500 hits) | p50 {:.1} ms, p95 {:.1} ms | p50 < 100 ms |",
        ms(first_search.0),
        ms(first_search.1)
    );
    println!(
        "| first page of a service's history (500 lines) | p50 {:.1} ms, p95 {:.1} ms | p50 < 100 ms |",
        ms(first_history.0),
        ms(first_history.1)
    );
    println!("| start-up with that store | {:.1} ms | |", ms(startup));
    println!(
        "| a batch of new lines stored, alone | p50 {:.2} ms, max {:.2} ms | |",
        ms(quiet.0),
        ms(quiet.1)
    );
    println!(
        "| the same while 4 full regex searches run | p50 {:.2} ms, max {:.2} ms ({} searches) | not held up by reads |",
        ms(busy.0),
        ms(busy.1),
        busy.2
    );
    println!("| peak RSS of this process | {rss:.1} MiB | bounded |");
}

/// How long a batch of 10 new lines takes to be stored (handed to the writer and gathered,
/// as a follower's are) with the store idle, then while 4 full regex searches over it run
/// without pause: reads must not hold up the writing, or live lines wait behind them.
fn writing_while_searched(
    dir: &std::path::Path,
    retention: Retention,
    now: i64,
) -> ((Duration, Duration), (Duration, Duration, usize)) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let history = History::open(HistoryConfig {
            dir: dir.to_owned(),
            retention,
            queue: 1024,
            queue_bytes: 32 << 20,
            catch_up_bytes: 4 << 20,
            search_max_lines: u64::MAX,
            reads: Bound {
                what: "reads of history",
                max: 4,
                max_flag: "--max-history-reads",
                wait: Duration::from_secs(60),
                wait_flag: "--history-read-wait",
            },
        })
        .expect("open the history");
        let web = owner(0);
        let mut next = now;
        let mut store_batches = |n: usize| {
            let (history, web) = (history.clone(), web.clone());
            let batches: Vec<Vec<RawLine>> = (0..n)
                .map(|_| {
                    (0..10)
                        .map(|_| {
                            next += 1000;
                            RawLine {
                                ts: Timestamp { ns: next },
                                seq: 0,
                                stream: Stream::Stdout,
                                text: "level=info a new line".into(),
                                truncated: false,
                                level: None,
                            }
                        })
                        .collect()
                })
                .collect();
            async move {
                let mut took = Vec::new();
                for batch in batches {
                    let t = Instant::now();
                    history.lines(&web, batch).await;
                    history.settle().await;
                    took.push(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                took.sort();
                (took[took.len() / 2], took[took.len() - 1])
            }
        };
        let quiet = store_batches(100).await;
        let stop = Arc::new(AtomicBool::new(false));
        let searches = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (history, stop, searches) = (history.clone(), stop.clone(), searches.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let q = query::parse("/took=99[0-9][0-9]ms/", now).expect("a query");
                        let bounds = Bounds {
                            hits: usize::MAX / 4,
                            lines: u64::MAX,
                        };
                        history
                            .read(
                                |_| true,
                                move |view| {
                                    search::find(view, "local", &q, |_, _| true, None, bounds)
                                },
                            )
                            .await
                            .expect("a search");
                        searches.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Let the searches get going first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let busy = store_batches(100).await;
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.await.expect("a reader");
        }
        (quiet, (busy.0, busy.1, searches.load(Ordering::Relaxed)))
    })
}

fn owner(c: usize) -> Owner {
    Owner {
        engine: "local".into(),
        project: "bench".into(),
        service: if c < 2 { "api" } else { "worker" }.into(),
        container: format!("{:012x}", 0xabc000 + c),
        replica: Replica {
            number: (c % 2 + 1) as u32,
            name: format!("bench-api-{}", c % 2 + 1),
        },
    }
}

/// About 100 bytes, as a web service logs a request.
fn line_text(i: usize) -> String {
    let methods = ["GET", "POST", "PUT", "DELETE"];
    let status = match i % 1000 {
        0 => 599,
        1..=20 => 503,
        _ => 200,
    };
    format!(
        "level=info method={} path=/api/items/{} status={status} took={}ms user=u{} req={:08x} ua=curl/8.5",
        methods[i % 4],
        i % 9973,
        (i * 7919) % 10_000,
        i % 313,
        i
    )
}

struct Versus {
    ours: Duration,
    grep: Duration,
    hits: usize,
    grep_hits: usize,
}

fn search_vs_grep(store: &Store, q: &str, grep: &[&str], file: &std::path::Path) -> Versus {
    let query = query::parse(q, lookout::clock::now_ns()).expect("a query");
    let bounds = Bounds {
        hits: usize::MAX / 4,
        lines: u64::MAX,
    };
    let t = Instant::now();
    let view = store.view_all();
    let found = search::find(&view, "local", &query, |_, _| true, None, bounds).expect("search");
    let ours = t.elapsed();
    let t = Instant::now();
    let out = Command::new("grep")
        .args(grep)
        .arg(file)
        .output()
        .expect("grep");
    let grep_time = t.elapsed();
    let grep_hits = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Versus {
        ours,
        grep: grep_time,
        hits: found.hits.len(),
        grep_hits,
    }
}

/// p50 and p95 of `n` runs.
fn times(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut all: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    all.sort();
    (all[n / 2], all[(n * 95 / 100).min(n - 1)])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// This process's user and system time, from /proc (clock ticks of 1/100 s).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are the 14th and 15th fields; `rest` starts at the 3rd.
    (tick(11) + tick(12)) / 100.0
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}
