//! Unit tests of the sops port: the cipher and MAC against values built here the way sops' Go code
//! builds them (tests/sops.rs checks files written by the real sops and age).

use super::*;

/// sops' `aes.Cipher.Encrypt` (fixed IV, for reproducible tests).
fn encrypt(plain: &str, kind: &str, key: &[u8], aad: &str, iv: [u8; 32]) -> String {
    let cipher = SopsGcm::new_from_slice(key).unwrap();
    let out = cipher
        .encrypt(
            Nonce::<U32>::from_slice(&iv),
            Payload {
                msg: plain.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .unwrap();
    let (data, tag) = out.split_at(out.len() - 16);
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        B64.encode(data),
        B64.encode(iv),
        B64.encode(tag)
    )
}

fn path(s: &str) -> TreePath {
    TreePath::new(s).unwrap()
}

/// An encrypted YAML Secret with age recipient `keys`' first identity, built as sops builds it.
fn sops_file(identity: &age::x25519::Identity, values: &[(&str, &str, &str)], mac_only: bool) -> String {
    let key = [7u8; 32];
    let mut hash = Sha512::new();
    if mac_only {
        hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let mut body = String::from("apiVersion: v1\nkind: Secret\nmetadata:\n    name: s\ndata:\n");
    // The unencrypted fields first: `apiVersion`, `kind`, `metadata.name` are MACed unless mac_only.
    let mut mac_plain = vec!["v1".to_string(), "Secret".to_string(), "s".to_string()];
    if mac_only {
        mac_plain.clear();
    }
    for p in &mac_plain {
        hash.update(p.as_bytes());
    }
    for (i, (name, plain, kind)) in values.iter().enumerate() {
        let mut iv = [0u8; 32];
        iv[0] = i as u8 + 1;
        let enc = encrypt(plain, kind, &key, &format!("data:{name}:"), iv);
        body.push_str(&format!("    {name}: {enc}\n"));
        hash.update(plain.as_bytes());
    }
    let lastmodified = "2026-12-08T00:00:00Z";
    let mac = encrypt(
        &hex::encode_upper(hash.finalize()),
        "str",
        &key,
        lastmodified,
        [9u8; 32],
    );
    let recipient = identity.to_public();
    let armored = {
        let mut out = Vec::new();
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).unwrap();
        let mut w = encryptor
            .wrap_output(
                age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).unwrap(),
            )
            .unwrap();
        std::io::Write::write_all(&mut w, &key).unwrap();
        w.finish().unwrap().finish().unwrap();
        String::from_utf8(out).unwrap()
    };
    let enc_yaml: String = armored.lines().map(|l| format!("            {l}\n")).collect();
    // The metadata marks only `data` encrypted, as `--encrypted-regex '^data$'` does.
    format!(
        "{body}sops:\n    age:\n        - recipient: {recipient}\n          enc: |\n{enc_yaml}    lastmodified: \"{lastmodified}\"\n    mac: {mac}\n    encrypted_regex: ^data$\n{}    version: 3.13.3\n",
        if mac_only {
            "    mac_only_encrypted: true\n"
        } else {
            ""
        }
    )
}

fn keys_of(identity: &age::x25519::Identity) -> Decryption {
    use age::secrecy::ExposeSecret;
    let text = identity.to_string().expose_secret().to_string();
    Decryption::Keys(std::sync::Arc::new(
        Keys::parse(std::path::Path::new("key.txt"), text.as_bytes()).unwrap(),
    ))
}

fn read(file: &str, text: &str, decryption: &Decryption) -> Result<String, SopsError> {
    let r = decrypt_if_encrypted(
        &path(file),
        text.as_bytes().to_vec(),
        decryption,
        &Limits::DEFAULT,
    )?;
    assert!(r.encrypted);
    Ok(String::from_utf8(r.bytes).unwrap())
}

#[test]
fn decrypts_every_value_type_and_checks_the_mac() {
    let id = age::x25519::Identity::generate();
    let values = [
        ("a", "YWJj", "str"),
        ("n", "42", "int"),
        ("f", "1.5", "float"),
        ("b", "True", "bool"),
    ];
    for mac_only in [false, true] {
        let file = sops_file(&id, &values, mac_only);
        let out = read("s.yaml", &file, &keys_of(&id)).unwrap();
        assert_eq!(
            out,
            "apiVersion: v1\ndata:\n  a: YWJj\n  b: true\n  f: 1.5\n  \"n\": 42\nkind: Secret\nmetadata:\n  name: s\n",
            "mac_only_encrypted: {mac_only}"
        );
    }
}

#[test]
fn a_changed_unencrypted_value_breaks_the_mac_unless_only_encrypted_values_count() {
    let id = age::x25519::Identity::generate();
    let values = [("a", "YWJj", "str")];
    let file = sops_file(&id, &values, false).replace("name: s\n", "name: t\n");
    let e = read("s.yaml", &file, &keys_of(&id)).unwrap_err().to_string();
    assert!(e.starts_with("s.yaml: SOPS MAC mismatch"), "{e}");
    let file = sops_file(&id, &values, true).replace("name: s\n", "name: t\n");
    read("s.yaml", &file, &keys_of(&id)).unwrap();
}

#[test]
fn a_moved_or_tampered_value_fails_authentication_naming_its_path_not_its_value() {
    let id = age::x25519::Identity::generate();
    let file = sops_file(&id, &[("a", "c2VjcmV0", "str"), ("b", "b3RoZXI=", "str")], false);
    // Swap the two ciphertexts: each was sealed with its own path as additional data.
    let lines: Vec<&str> = file.lines().collect();
    let a = lines.iter().position(|l| l.starts_with("    a: ")).unwrap();
    let mut swapped: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    swapped[a] = format!("    a: {}", &lines[a + 1][7..]);
    swapped[a + 1] = format!("    b: {}", &lines[a][7..]);
    let e = read("s.yaml", &(swapped.join("\n") + "\n"), &keys_of(&id))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("at \"data:a\" cannot be decrypted: authentication failed"),
        "{e}"
    );
    assert!(!e.contains("c2VjcmV0"));
}

#[test]
fn wrong_or_missing_key_is_an_error_naming_the_file_and_recipients() {
    let id = age::x25519::Identity::generate();
    let file = sops_file(&id, &[("a", "YWJj", "str")], false);
    let other = age::x25519::Identity::generate();
    let e = read("s.yaml", &file, &keys_of(&other)).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "s.yaml: SOPS-encrypted for {}; no identity of key.txt matches",
            id.to_public()
        )
    );
    let e = read("s.yaml", &file, &Decryption::NoKey).unwrap_err().to_string();
    assert!(
        e.starts_with("s.yaml: SOPS-encrypted, but no age key was given"),
        "{e}"
    );
}

#[test]
fn placeholders_follow_the_ciphertext_and_stay_base64_under_data() {
    let id = age::x25519::Identity::generate();
    let file = sops_file(&id, &[("a", "YWJj", "str")], false);
    let out = read("s.yaml", &file, &Decryption::Placeholders).unwrap();
    let v: Value = crate::manifest::yaml::parse_documents(&out, "x", &Limits::DEFAULT)
        .unwrap()
        .remove(0);
    assert!(is_placeholder(&v["data"]["a"], true), "{out}");
    assert!(!out.contains("YWJj"));
}

#[test]
fn plain_files_are_untouched_and_other_kinds_are_refused() {
    let plain = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lastmodified-sops}\n";
    let r = decrypt_if_encrypted(
        &path("c.yaml"),
        plain.as_bytes().to_vec(),
        &Decryption::NoKey,
        &Limits::DEFAULT,
    )
    .unwrap();
    assert!(!r.encrypted);
    assert_eq!(r.bytes, plain.as_bytes());

    let id = age::x25519::Identity::generate();
    let file = sops_file(&id, &[("a", "YWJj", "str")], false).replace("kind: Secret", "kind: ConfigMap");
    // The kind is MACed: refuse before or after the MAC, never print the value.
    let e = read("c.yaml", &file, &keys_of(&id)).unwrap_err().to_string();
    assert!(e.starts_with("c.yaml: "), "{e}");
}

#[test]
fn go_formats() {
    assert_eq!(go_float(1.0), "1");
    assert_eq!(go_float(1.5), "1.5");
    assert_eq!(go_float(1e21), "1000000000000000000000");
    assert_eq!(go_float(0.000001), "0.000001");
    assert_eq!(go_bool("True"), Some(true));
    assert_eq!(go_bool("yes"), None);
    let p = path("x.yaml");
    assert_eq!(
        lastmodified_aad(&p, "2026-12-08T00:00:00Z").unwrap(),
        "2026-12-08T00:00:00Z"
    );
    assert_eq!(
        lastmodified_aad(&p, "2026-12-08T00:00:00.123Z").unwrap(),
        "2026-12-08T00:00:00Z"
    );
    assert_eq!(
        lastmodified_aad(&p, "2026-12-08T01:00:00+00:00").unwrap(),
        "2026-12-08T01:00:00Z"
    );
    assert_eq!(
        lastmodified_aad(&p, "2026-12-08T01:00:00+02:00").unwrap(),
        "2026-12-08T01:00:00+02:00"
    );
}

#[test]
fn dotenv_metadata_unflattens() {
    let node = unflatten(
        &path("a.env"),
        vec![
            ("age__list_0__map_enc".into(), "x".into()),
            ("age__list_0__map_recipient".into(), "r".into()),
            ("mac".into(), "m".into()),
        ],
    )
    .unwrap();
    let meta: Metadata = serde_json::from_value(node.into_json()).unwrap();
    assert_eq!(meta.age[0].recipient, "r");
    assert_eq!(meta.mac, "m");
}

/// A file written by the real sops 3.13.3 (`sops encrypt --age ... --encrypted-regex
/// '^(data|stringData)$'`) with a key made by age-keygen 1.3.2: every scalar type, a null and a
/// sequence (whose items share their parent's path as additional data).
#[test]
fn decrypts_a_file_written_by_sops() {
    let key = include_str!("testdata/age-key.txt");
    let file = include_str!("testdata/secret.sops.yaml");
    let keys = Decryption::Keys(std::sync::Arc::new(
        Keys::parse(std::path::Path::new("age-key.txt"), key.as_bytes()).unwrap(),
    ));
    let out = read("secret.sops.yaml", file, &keys).unwrap();
    assert_eq!(
        out,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: kafka\nstringData:\n  enabled: true\n  \
         list:\n  - a\n  - 2\n  nothing: null\n  password: hunter2\n  port: 9092\n  ratio: 1.5\ntype: Opaque\n"
    );
    // Any byte of the MAC's ciphertext changed: refused.
    let tampered = file.replace("mac: ENC[AES256_GCM,data:nw1o", "mac: ENC[AES256_GCM,data:nw1p");
    let e = read("secret.sops.yaml", &tampered, &keys)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("secret.sops.yaml: SOPS MAC cannot be decrypted"),
        "{e}"
    );
    // An unencrypted value changed (the MAC covers it): refused.
    let tampered = file.replace("namespace: kafka", "namespace: other");
    let e = read("secret.sops.yaml", &tampered, &keys)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("secret.sops.yaml: SOPS MAC mismatch"), "{e}");
}

/// Helm values (and chart files) are copied to disk for helm: an encrypted one is refused, a plain
/// one read as it is.
#[test]
fn files_for_disk_refuse_encrypted_content() {
    use crate::render::load::Loader;
    use crate::render::memtree::MemTree;
    let file = include_str!("testdata/secret.sops.yaml");
    let tree = MemTree::new(&[("chart/values.yaml", file), ("chart/plain.yaml", "a: 1\n")]);
    let loader = Loader::new(&tree, Limits::DEFAULT).with_decryption(Decryption::Placeholders);
    let e = loader
        .read_bytes_for_disk(&path("chart/values.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("chart/values.yaml: SOPS-encrypted Helm values are not supported"),
        "{e}"
    );
    assert_eq!(
        loader.read_bytes_for_disk(&path("chart/plain.yaml")).unwrap(),
        b"a: 1\n"
    );
}
