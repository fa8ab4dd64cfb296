//! The destination shape as the API reads it (shape_read.lua) follows the same rate factor
//! take.lua applies: cut until `until`, then a linear ramp back over `ramp`.

use sluice_shared::{keys, redis::scripts::SCRIPTS};
use sluice_testkit::RedisServer;

fn read(conn: &mut redis::Connection, key: &str) -> Vec<i64> {
    SCRIPTS.shape_read.key(key).invoke(conn).unwrap()
}

#[test]
fn the_rate_factor_is_cut_then_ramps_back() {
    let redis = RedisServer::start();
    let mut conn = redis.conn();
    let key = keys::domain_shape("x.example");
    assert_eq!(read(&mut conn, &key)[1..], [1000, 0, 0, 0], "no shape: full rate");
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query(&mut conn).unwrap();
    let now = secs * 1000 + micros / 1000;
    let set = |conn: &mut redis::Connection, until: i64| {
        let _: () = redis::cmd("HSET")
            .arg(&key)
            .arg(&[("factor", "0.1".to_string()), ("until", until.to_string()), ("ramp", "100000".to_string())])
            .query(conn)
            .unwrap();
    };
    set(&mut conn, now + 60_000);
    assert_eq!(read(&mut conn, &key)[1], 100, "within the slow period");
    set(&mut conn, now - 50_000);
    let half = read(&mut conn, &key)[1];
    assert!((545..=555).contains(&half), "half way through the ramp: {half}");
    set(&mut conn, now - 200_000);
    assert_eq!(read(&mut conn, &key)[1], 1000, "after the ramp");
}
