use std::process::Command;

use ring::{rand::SystemRandom, signature};

use super::*;
use crate::config::{DkimAlgorithm, DkimConfig, DkimKeyConfig, MissingKey};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-dkim-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().expect("openssl is installed by scripts/test.sh");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn key(domain: &str, selector: &str, algorithm: DkimAlgorithm, file: &std::path::Path) -> DkimKeyConfig {
    DkimKeyConfig {
        domain: domain.into(),
        selector: selector.into(),
        algorithm,
        key_file: file.to_str().unwrap().into(),
        from: None,
    }
}

const MESSAGE: &[u8] = b"From: Shop <news@shop.example>\r\nTo: ann@x.example\r\nSubject: Hello\r\n\
Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@shop.example>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\nX-Other: not signed\r\n\r\nHello  there \r\n\r\n";

#[test]
fn rsa_public_key_matches_what_openssl_prints() {
    let dir = temp_dir("spki");
    let pem = dir.join("rsa.pem");
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem.to_str().unwrap()]);
    let der = openssl(&["pkey", "-in", pem.to_str().unwrap(), "-pubout", "-outform", "DER"]);
    let signer = Signer::from_config(&DkimConfig {
        keys: vec![key("shop.example", "s1", DkimAlgorithm::RsaSha256, &pem)],
        missing_key: MissingKey::Refuse,
    })
    .unwrap();
    assert_eq!(signer.keys_for("shop.example")[0].public_key_b64(), B64.encode(der));
}

#[test]
fn ed25519_signature_verifies_and_lists_the_signed_headers() {
    let dir = temp_dir("ed");
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pem = dir.join("ed.pem");
    write_private(
        &pem,
        &format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", B64.encode(pkcs8.as_ref())),
    );
    let config = DkimConfig {
        keys: vec![key("shop.example", "ed1", DkimAlgorithm::Ed25519Sha256, &pem)],
        missing_key: MissingKey::Refuse,
    };
    let signer = Signer::from_config(&config).unwrap();
    let header = String::from_utf8(signer.sign("shop.example", MESSAGE, Utc::now()).unwrap()).unwrap();
    assert!(header.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=shop.example; s=ed1;"));
    let unfolded = header.replace("\r\n\t", " ");
    assert!(
        unfolded.contains(" h=from:to:subject:date:message-id:mime-version:content-type:from:subject;"),
        "{unfolded}"
    );
    assert!(!unfolded.contains("l="), "no body length limit");
    // Verify with the public key over the same canonical data (the independent check with
    // dkimpy runs in e2e/tests/delivery/dkim.rs).
    let b = unfolded.rsplit_once("b=").unwrap().1.trim().replace(' ', "");
    let (fields, _) = canon::split(MESSAGE);
    let names: Vec<String> =
        "from:to:subject:date:message-id:mime-version:content-type:from:subject".split(':').map(String::from).collect();
    let mut data = canon::header_data(&fields, &names);
    let signed_value = &header["DKIM-Signature:".len()..header.rfind("b=").unwrap() + 2];
    canon::relaxed_header("DKIM-Signature", signed_value, &mut data);
    let public = signer.keys_for("shop.example")[0].public_key_b64();
    let verifier = signature::UnparsedPublicKey::new(&signature::ED25519, B64.decode(public).unwrap());
    verifier.verify(&Sha256::digest(&data), &B64.decode(&b).unwrap()).expect("signature verifies");
    let mut tampered = data.clone();
    tampered[10] ^= 1;
    assert!(verifier.verify(&Sha256::digest(&tampered), &B64.decode(&b).unwrap()).is_err());
}

#[test]
fn rotation_picks_the_latest_key_whose_time_has_come() {
    let dir = temp_dir("rot");
    let pem = |name: &str| {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let path = dir.join(name);
        write_private(
            &path,
            &format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", B64.encode(pkcs8.as_ref())),
        );
        path
    };
    let cutover: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
    let old = key("shop.example", "nov", DkimAlgorithm::Ed25519Sha256, &pem("old.pem"));
    let new = DkimKeyConfig {
        from: Some(cutover),
        ..key("shop.example", "dec", DkimAlgorithm::Ed25519Sha256, &pem("new.pem"))
    };
    let signer = Signer::from_config(&DkimConfig { keys: vec![old, new], missing_key: MissingKey::Refuse }).unwrap();
    let before = cutover - chrono::Duration::seconds(1);
    assert_eq!(signer.active("shop.example", before)[0].selector, "nov");
    assert_eq!(signer.active("SHOP.example", cutover)[0].selector, "dec");
    assert!(signer.active("other.example", cutover).is_empty());
    assert!(signer.sign("other.example", MESSAGE, cutover).unwrap().is_empty());
}

#[test]
fn bad_key_files_name_the_key() {
    let dir = temp_dir("bad");
    let junk = dir.join("junk.pem");
    write_private(&junk, "not a key");
    let e = Signer::from_config(&DkimConfig {
        keys: vec![key("a.example", "s", DkimAlgorithm::RsaSha256, &junk)],
        missing_key: MissingKey::Send,
    })
    .err()
    .unwrap();
    assert!(matches!(&e, DkimError::Key { index: 0, problem, .. } if problem.contains("PEM")), "{e}");
    let missing = dir.join("missing.pem");
    let e = Signer::from_config(&DkimConfig {
        keys: vec![key("a.example", "s", DkimAlgorithm::RsaSha256, &missing)],
        missing_key: MissingKey::Send,
    })
    .err()
    .unwrap();
    assert!(e.to_string().starts_with("dkim.keys[0].key_file"), "{e}");
}

#[test]
fn a_key_file_others_can_read_is_refused_naming_the_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("perm");
    let pem = dir.join("open.pem");
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    write_private(
        &pem,
        &format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", B64.encode(pkcs8.as_ref())),
    );
    let config = || DkimConfig {
        keys: vec![key("a.example", "s", DkimAlgorithm::Ed25519Sha256, &pem)],
        missing_key: MissingKey::Send,
    };
    assert!(Signer::from_config(&config()).is_ok(), "mode 600 loads");
    for mode in [0o640, 0o604, 0o620] {
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = Signer::from_config(&config()).err().unwrap().to_string();
        assert!(e.contains(pem.to_str().unwrap()) && e.contains(&format!("mode {mode:o}")), "{e}");
    }
}

/// Writes a key file as an operator should: readable by its owner only.
fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
