//! Drives create → start → wait until stopped → delete of OCI runtimes, interleaved round by
//! round, and prints each contender's cycle times (ms) as JSON. Input on stdin:
//! `{"bundle", "rounds", "perRound", "contenders": [{"name", "bin", "root", "log", "createVia": [..]}]}`,
//! or `{"spawn": [argv..], "n"}` for the median cost of spawning one command.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{json, Value};

struct Contender {
    name: String,
    bin: String,
    root: String,
    log: String,
    create_via: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

/// One runtime command with the runtime's stdio on /dev/null (a pipe would stay open while
/// PID 1 waits for start); Err names the command and the log's last line.
fn run(c: &Contender, args: &[&str], via: &[String]) -> Result<(), String> {
    let mut argv: Vec<String> = via.to_vec();
    argv.push(c.bin.clone());
    argv.extend(["--root", &c.root, "--log", &c.log].map(str::to_owned));
    argv.extend(args.iter().map(|s| s.to_string()));
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    if status.success() {
        return Ok(());
    }
    let log = std::fs::read_to_string(&c.log).unwrap_or_default();
    Err(format!(
        "{} {}: {status}: {}",
        c.name,
        args.join(" "),
        log.lines().last().unwrap_or_default()
    ))
}

fn stopped(c: &Contender, id: &str) -> bool {
    let out = Command::new(&c.bin)
        .args(["--root", &c.root, "state", id])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice::<Value>(&o.stdout)
            .map(|s| s["status"] == "stopped")
            .unwrap_or(true),
        _ => true,
    }
}

/// The whole cycle of container `id`, in ms.
fn cycle(c: &Contender, bundle: &str, id: &str) -> Result<f64, String> {
    let t = Instant::now();
    run(c, &["create", "--bundle", bundle, id], &c.create_via)?;
    run(c, &["start", id], &[])?;
    while !stopped(c, id) {}
    run(c, &["delete", "--force", id], &[])?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

fn median_spawn(argv: &[String], n: usize) -> f64 {
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let _ = Command::new(&argv[0])
                .args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("stdin");
    let req: Value = serde_json::from_str(&input).expect("a JSON request on stdin");
    if let Some(argv) = req.get("spawn") {
        let n = req["n"].as_u64().unwrap_or(30) as usize;
        println!("{}", json!({ "medianMs": median_spawn(&strings(argv), n) }));
        return;
    }
    let contenders: Vec<Contender> = req["contenders"]
        .as_array()
        .expect("contenders")
        .iter()
        .map(|c| Contender {
            name: c["name"].as_str().unwrap_or_default().into(),
            bin: c["bin"].as_str().unwrap_or_default().into(),
            root: c["root"].as_str().unwrap_or_default().into(),
            log: c["log"].as_str().unwrap_or_default().into(),
            create_via: strings(&c["createVia"]),
        })
        .collect();
    let bundle = req["bundle"].as_str().expect("bundle");
    let rounds = req["rounds"].as_u64().unwrap_or(1);
    let per_round = req["perRound"].as_u64().unwrap_or(1);
    let mut samples = serde_json::Map::new();
    let mut errors = serde_json::Map::new();
    for r in 0..rounds {
        eprintln!("round {}/{rounds}", r + 1);
        for c in &contenders {
            if errors.contains_key(&c.name) {
                continue;
            }
            for i in 0..per_round {
                match cycle(c, bundle, &format!("c{r}-{i}")) {
                    Ok(ms) => samples
                        .entry(c.name.clone())
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                        .expect("an array")
                        .push(json!(ms)),
                    Err(e) => {
                        errors.insert(c.name.clone(), json!(e));
                        break;
                    }
                }
            }
        }
    }
    println!("{}", json!({ "samples": samples, "errors": errors }));
}
