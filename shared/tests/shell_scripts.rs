//! Every script under scripts/ refuses a bad argument before it starts anything: what is wrong,
//! its usage line, exit status 2. `--help` prints the usage. A count that was not a number
//! once made a recipient generator loop until the disk was full.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, Instant},
};

fn scripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 10, "found only {scripts:?}");
    scripts
}

/// Runs the script; one that starts its work instead of refusing is killed within 20 s and fails.
fn run(script: &Path, args: &[&str]) -> Output {
    let mut child = Command::new("bash")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = Command::new("kill").args(["-9", &format!("-{}", child.id())]).status();
            panic!("{} {args:?} did not refuse its arguments within 20 s: it started its work", script.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn name(script: &Path) -> String {
    script.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_script_prints_its_usage_on_help() {
    for script in scripts() {
        let out = run(&script, &["--help"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {out:?}", name(&script));
        assert!(stdout.contains(&format!("scripts/{}", name(&script))), "{}: {stdout}", name(&script));
    }
}

#[test]
fn a_word_where_a_count_or_deployment_goes_is_refused_with_the_usage() {
    // test.sh passes its arguments to cargo nextest; every other script checks them.
    for script in scripts().into_iter().filter(|s| name(s) != "test.sh") {
        for args in [&["cluster"][..], &["-5"], &["0"], &["99999999999"], &["1e6"], &["1", "2", "3", "4", "5"]] {
            // chaos-failover.sh takes the deployment first.
            let args: Vec<&str> = match name(&script).as_str() {
                "chaos-failover.sh" if args == ["cluster"] => vec!["60000"],
                "chaos-failover.sh" => std::iter::once("cluster").chain(args.iter().copied()).collect(),
                "demo.sh" => vec!["x"],
                _ => args.to_vec(),
            };
            let out = run(&script, &args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{} {args:?}: {stderr}", name(&script));
            assert!(stderr.starts_with(&format!("{}: ", name(&script))), "{} {args:?}: {stderr}", name(&script));
            assert!(
                stderr.contains(&format!("usage:\n  scripts/{}", name(&script))),
                "{} {args:?}: {stderr}",
                name(&script)
            );
        }
    }
}

#[test]
fn chaos_failover_refuses_a_scenario_it_does_not_know() {
    let script = scripts().into_iter().find(|s| name(s) == "chaos-failover.sh").unwrap();
    let out = run(&script, &["sentinel", "100", "sideways"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SCENARIO must be one of: kill rejoin twice partition"), "{stderr}");
}
