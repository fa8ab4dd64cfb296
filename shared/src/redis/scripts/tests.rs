//! Pins every script's key order: the names the Rust side passes (in order) against the names
//! the script declares, so a swapped key cannot pass silently.

use super::*;

/// `-- KEYS: a, b (note)` in a script's header, as names.
fn header_keys(body: &str) -> Vec<String> {
    let line = body.lines().find_map(|l| l.strip_prefix("-- KEYS: ")).expect("a `-- KEYS:` header line");
    let line = line.split(" (").next().unwrap_or(line);
    line.split(", ").map(str::to_string).collect()
}

/// The `local a, b = KEYS[1], KEYS[2]` line naming `names`.
fn declaration(names: &[&str]) -> String {
    let slots: Vec<String> = (1..=names.len()).map(|i| format!("KEYS[{i}]")).collect();
    format!("local {} = {}", names.join(", "), slots.join(", "))
}

#[test]
fn the_campaign_prelude_declares_the_keys_in_the_order_rust_passes_them() {
    assert!(CAMPAIGN_PRELUDE.lines().any(|l| l == declaration(&CAMPAIGN_KEYS)), "campaign_prelude.lua");
    for name in CAMPAIGN_KEYS {
        assert!(campaign_key("c1", name).contains("{c:c1}"), "{name} shares the campaign's hash tag");
    }
}

#[test]
fn campaign_scripts_name_their_keys_only_through_the_prelude() {
    for lua in all().into_iter().filter(|l| l.prelude == Prelude::Campaign) {
        assert_eq!(lua.keys, CAMPAIGN_KEYS, "{}", lua.name);
        assert!(!lua.body.contains("KEYS["), "{} indexes KEYS itself", lua.name);
        assert_eq!(header_keys(lua.body), ["the campaign's"], "{}", lua.name);
    }
}

#[test]
fn every_other_script_declares_the_keys_rust_passes_in_the_same_order() {
    for lua in all().into_iter().filter(|l| l.prelude != Prelude::Campaign) {
        assert_eq!(header_keys(lua.body), lua.keys, "{}: header", lua.name);
        if lua.keys.len() > 1 {
            assert!(lua.body.contains(&declaration(lua.keys)), "{}: {}", lua.name, declaration(lua.keys));
        }
        for n in lua.keys.len() + 1..=9 {
            assert!(
                !lua.body.contains(&format!("KEYS[{n}]")),
                "{} reads KEYS[{n}] but is passed {}",
                lua.name,
                lua.keys.len()
            );
        }
    }
}

#[test]
fn every_lua_file_is_a_script_or_a_prelude() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/redis/lua");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".lua").to_string())
        .filter(|f| !["clock", "campaign_prelude", "destination_prelude", "stream_rewrite"].contains(&f.as_str()))
        .collect();
    let mut names: Vec<String> = all().iter().map(|l| l.name.to_string()).collect();
    files.sort();
    names.sort();
    assert_eq!(files, names);
}
