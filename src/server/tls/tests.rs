use std::path::PathBuf;

use super::*;

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = std::env::temp_dir().join(format!("dsgw-tls-{}", crate::util::ids::random_id()));
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn pair(&self, cert: &str, key: &str) -> TlsFiles {
        TlsFiles {
            cert_file: self.write("cert.pem", cert),
            key_file: self.write("key.pem", key),
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn self_signed(names: &[&str]) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let c = rcgen::generate_simple_self_signed(names).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

#[test]
fn a_valid_pair_is_described_without_the_key() {
    let f = Files::new();
    let (cert, key) = self_signed(&["gw.example", "127.0.0.1"]);
    let info = check_tls(&f.pair(&cert, &key)).unwrap();
    assert_eq!(info.names, ["gw.example", "127.0.0.1"]);
    assert!(info.not_after > now_unix() as i64);
    assert_eq!(info.chain_len, 1);
    assert!(settings(&f.pair(&cert, &key)).is_ok());
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let f = Files::new();
    let (cert, _) = self_signed(&["gw.example"]);
    let (_, other_key) = self_signed(&["gw.example"]);
    let e = check_tls(&f.pair(&cert, &other_key)).unwrap_err();
    assert_eq!(e.key, "server.tls_key_file");
    assert!(e.message.contains("does not match"), "{e}");
    assert!(!e.to_string().contains("PRIVATE KEY"));
}

#[test]
fn an_expired_certificate_is_refused() {
    let f = Files::new();
    let mut params = rcgen::CertificateParams::new(vec!["gw.example".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let e = check_tls(&f.pair(&cert.pem(), &key.serialize_pem())).unwrap_err();
    assert_eq!(e.key, "server.tls_cert_file");
    assert!(e.message.contains("expired"), "{e}");
}

#[test]
fn missing_and_garbage_files_name_their_key() {
    let f = Files::new();
    let (cert, key) = self_signed(&["gw.example"]);
    let missing = TlsFiles {
        cert_file: f.dir.join("nope.pem"),
        key_file: f.write("key.pem", &key),
    };
    assert_eq!(check_tls(&missing).unwrap_err().key, "server.tls_cert_file");
    let garbage_key = f.pair(&cert, "not a key");
    assert_eq!(
        check_tls(&garbage_key).unwrap_err().key,
        "server.tls_key_file"
    );
    let garbage_cert = f.pair("not a certificate", &key);
    assert_eq!(
        check_tls(&garbage_cert).unwrap_err().key,
        "server.tls_cert_file"
    );
}
