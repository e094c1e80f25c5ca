//! allot against nats-servers that require credentials or TLS: with the
//! right ones it connects and decides an order; with wrong or missing ones
//! it says why. Keys and certificates are made at test time (`nkeys`,
//! `rcgen`): a CA, a server certificate for 127.0.0.1 and a client
//! certificate the server verifies.
//!
//! Not covered: JWT `.creds` files. They need an operator, an account with
//! JetStream limits and a user, each a signed JWT, and a server resolver;
//! without `nsc` that is a JWT minter written for the test, so only the
//! clear error for an unreadable `.creds` file is tested here.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use allot::service::{connect, NatsOptions};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use tempfile::TempDir;

use common::allot::{
    one_warehouse, order_id, partition, publish_all, AllotProcess, ConfigFile, Ledger, Outgoing,
};
use common::nats::NatsServer;

/// What allot logs when the server refuses its credentials.
const REFUSED: &str = "NATS refused allot's credentials";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nkey_user_is_served_and_a_wrong_seed_is_refused_by_name() {
    let user = nkeys::KeyPair::new_user();
    let stranger = nkeys::KeyPair::new_user();
    let server = NatsServer::start_with_config(&format!(
        "authorization {{ users = [ {{ nkey: {} }} ] }}\n",
        user.public_key()
    ));
    let seed = user.seed().expect("a user seed");
    let client = NatsOptions {
        url: server.url(),
        nkey_seed: Some(seed.clone()),
        ..Default::default()
    };
    serves_an_order(&server, &client, &["--nats-nkey", &seed], "nk-1").await;
    let wrong = stranger.seed().expect("a user seed");
    is_refused(&server, &["--nats-nkey", &wrong], REFUSED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_password_are_served_and_a_wrong_password_is_refused_by_name() {
    let server = NatsServer::start_with_config(
        "authorization { users = [ { user: allot, password: \"s3cret pass\" } ] }\n",
    );
    let client = NatsOptions {
        url: server.url(),
        user: Some("allot".into()),
        password: Some("s3cret pass".into()),
        ..Default::default()
    };
    let right = ["--nats-user", "allot", "--nats-password", "s3cret pass"];
    serves_an_order(&server, &client, &right, "up-1").await;
    let wrong = ["--nats-user", "allot", "--nats-password", "guess"];
    is_refused(&server, &wrong, REFUSED).await;
    is_refused(&server, &[], REFUSED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_served_and_a_wrong_token_is_refused_by_name() {
    let server = NatsServer::start_with_config("authorization { token: \"t0ken-42\" }\n");
    let client = NatsOptions {
        url: server.url(),
        token: Some("t0ken-42".into()),
        ..Default::default()
    };
    serves_an_order(&server, &client, &["--nats-token", "t0ken-42"], "tk-1").await;
    is_refused(&server, &["--nats-token", "t0ken-41"], REFUSED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_is_served_and_a_client_without_a_certificate_is_refused() {
    let pki = Pki::new();
    let server = NatsServer::start_with_config(&format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n  ca_file: {:?}\n  verify: true\n  timeout: 2\n}}\n",
        pki.path("server.pem"),
        pki.path("server-key.pem"),
        pki.path("ca.pem"),
    ));
    let client = NatsOptions {
        url: server.url(),
        tls_ca: Some(pki.path("ca.pem")),
        tls_cert: Some(pki.path("client.pem")),
        tls_key: Some(pki.path("client-key.pem")),
        ..Default::default()
    };
    let (ca, cert, key) = (
        pki.arg("ca.pem"),
        pki.arg("client.pem"),
        pki.arg("client-key.pem"),
    );
    let flags = [
        "--tls-ca",
        ca.as_str(),
        "--tls-cert",
        cert.as_str(),
        "--tls-key",
        key.as_str(),
    ];
    serves_an_order(&server, &client, &flags, "tls-1").await;
    is_refused(&server, &["--tls-ca", &ca], "NATS connection failed").await;
}

#[test]
fn an_unreadable_creds_file_stops_allot_naming_the_file() {
    let config = ConfigFile::new(&one_warehouse(1));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(["serve", "--nats-url", "nats://127.0.0.1:1"])
        .args(["--nats-creds", "/nonexistent/allot.creds"])
        .arg("--config")
        .arg(config.path())
        .env_remove("ALLOT_ENV")
        .output()
        .expect("run allot serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "allot serve started: {err}");
    assert!(
        err.contains("reading NATS credentials file /nonexistent/allot.creds"),
        "{err}"
    );
}

/// Starts `allot serve` with `flags`; an order published by a client with
/// `client`'s credentials is decided.
async fn serves_an_order(server: &NatsServer, client: &NatsOptions, flags: &[&str], id: &str) {
    let config = ConfigFile::new(&one_warehouse(1));
    let allot = AllotProcess::serve(&server.url(), &config, flags);
    let js = async_nats::jetstream::new(connect(client).await.expect("test client connects"));
    publish_all(&js, &[Outgoing::order(id, &partition("ams", "SEC-MUG"), 1)]).await;
    let mut ledger = Ledger::default();
    assert_eq!(
        ledger
            .wait_decided(&js, &[order_id(id)], Duration::from_secs(20))
            .await,
        0,
        "order {id} not decided; allot log:\n{}",
        allot.log()
    );
}

/// Starts `allot serve` with `flags`; it logs `why` and never connects.
async fn is_refused(server: &NatsServer, flags: &[&str], why: &str) {
    let config = ConfigFile::new(&one_warehouse(1));
    let allot = AllotProcess::serve(&server.url(), &config, flags);
    assert!(
        allot.wait_logged(why, 1, Duration::from_secs(10)).await,
        "allot with {flags:?} did not log {why:?}; its log:\n{}",
        allot.log()
    );
    assert_eq!(allot.count("NATS connected"), 0, "{}", allot.log());
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as
/// PEM files in a temp dir.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("allot-pki-")
            .tempdir()
            .expect("a temp dir for the certificates");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "allot test CA");
        let ca = ca_params.self_signed(&ca_key).expect("self-signed CA");
        let pki = Pki { dir };
        pki.write("ca.pem", &ca.pem());
        pki.leaf(
            "server",
            "127.0.0.1",
            ExtendedKeyUsagePurpose::ServerAuth,
            &ca,
            &ca_key,
        );
        pki.leaf(
            "client",
            "allot",
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca,
            &ca_key,
        );
        pki
    }

    /// `<name>.pem` and `<name>-key.pem`, for `san`, signed by the CA.
    fn leaf(
        &self,
        name: &str,
        san: &str,
        usage: ExtendedKeyUsagePurpose,
        ca: &Certificate,
        ca_key: &KeyPair,
    ) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec![san.to_owned()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, san);
        params.extended_key_usages = vec![usage];
        let cert = params
            .signed_by(&key, ca, ca_key)
            .expect("signed by the CA");
        self.write(&format!("{name}.pem"), &cert.pem());
        self.write(&format!("{name}-key.pem"), &key.serialize_pem());
    }

    fn write(&self, name: &str, pem: &str) {
        std::fs::write(self.path(name), pem).expect("write a PEM file");
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        let path = self.path(name);
        path.to_str().expect("temp paths are UTF-8").to_owned()
    }
}
