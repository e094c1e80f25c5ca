//! The NATS connection: server list, credentials, TLS, and reconnects with
//! every state change logged and counted.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::{Client, ClientError, ConnectOptions, Event};
use tracing::{error, info, warn};

use crate::telemetry::NatsMetrics;

/// Why allot could not connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The credentials file could not be read.
    #[error("reading NATS credentials file {path}: {source}")]
    Credentials {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Only one of the client certificate and its key was given.
    #[error("nats.tls_cert and nats.tls_key go together; set both or neither")]
    TlsPair,
    /// `nats.url` names no server.
    #[error("no NATS server URL given (nats.url)")]
    NoServer,
    /// The client refused the options (a bad URL, an unreadable
    /// certificate).
    #[error("connecting to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
}

/// How to reach NATS. Credentials are chosen in this order: credentials
/// file, nkey seed, token, user and password.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// Comma-separated server URLs.
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub credentials_file: Option<PathBuf>,
    pub nkey_seed: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub name: Option<String>,
}

impl From<&crate::config::NatsConfig> for NatsOptions {
    fn from(c: &crate::config::NatsConfig) -> Self {
        Self {
            url: c.url.clone(),
            user: c.user.clone(),
            password: c.password.clone(),
            token: c.token.clone(),
            credentials_file: c.creds.clone(),
            nkey_seed: c.nkey.clone(),
            tls_ca: c.tls_ca.clone(),
            tls_cert: c.tls_cert.clone(),
            tls_key: c.tls_key.clone(),
            name: None,
        }
    }
}

/// Connects (retrying until the first connection succeeds) and logs every
/// disconnect, reconnect and slow-consumer event. A server that refuses the
/// credentials is logged at error on every attempt, naming the settings to
/// check; allot keeps retrying, as the server's accounts may be fixed
/// without restarting it.
pub async fn connect(o: &NatsOptions) -> Result<Client, ConnectError> {
    let mut options = match (&o.credentials_file, &o.nkey_seed, &o.token, &o.user) {
        (Some(path), ..) => ConnectOptions::with_credentials_file(path.clone())
            .await
            .map_err(|source| ConnectError::Credentials {
                path: path.clone(),
                source,
            })?,
        (None, Some(seed), ..) => ConnectOptions::with_nkey(seed.clone()),
        (None, None, Some(token), _) => ConnectOptions::with_token(token.clone()),
        (None, None, None, Some(user)) => ConnectOptions::with_user_and_password(
            user.clone(),
            o.password.clone().unwrap_or_default(),
        ),
        (None, None, None, None) => ConnectOptions::new(),
    };
    // A server may ask for TLS unasked. Already installed (by an earlier
    // connect or the embedding program) is fine: that provider is used.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(ca) = &o.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    match (&o.tls_cert, &o.tls_key) {
        (Some(cert), Some(key)) => {
            options = options.add_client_certificate(cert.clone(), key.clone())
        }
        (None, None) => {}
        _ => return Err(ConnectError::TlsPair),
    }
    let metrics = NatsMetrics::new();
    options = options
        .name(o.name.clone().unwrap_or_else(|| "allot".into()))
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .event_callback(move |event| {
            let metrics = metrics.clone();
            async move {
                match event {
                    Event::Connected => {
                        metrics.connected();
                        info!("NATS connected");
                    }
                    Event::Disconnected => {
                        metrics.disconnected();
                        warn!("NATS disconnected; reconnecting");
                    }
                    Event::ClientError(ClientError::Other(e)) if refused(&e) => error!(
                        error = %e,
                        "NATS refused allot's credentials (check nats.creds, nats.nkey, nats.token, nats.user and nats.password); retrying"
                    ),
                    Event::ClientError(e) => warn!(error = %e, "NATS connection failed; retrying"),
                    other => info!(event = %other, "NATS"),
                }
            }
        });
    let servers: Vec<&str> = o
        .url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        return Err(ConnectError::NoServer);
    }
    options
        .connect(servers)
        .await
        .map_err(|source| ConnectError::Connect {
            url: o.url.clone(),
            source,
        })
}

/// Whether a connect error is the server refusing the credentials (as
/// async-nats names its `AuthorizationViolation` and `Authentication` kinds).
fn refused(error: &str) -> bool {
    error == "authorization violation" || error == "failed signing nonce"
}

/// A connection to NATS with its JetStream context: what `allot serve`
/// holds of the broker.
#[derive(Clone)]
pub struct Broker {
    client: Client,
    js: async_nats::jetstream::Context,
}

impl Broker {
    /// Connects as [`connect`] does.
    pub async fn connect(o: &NatsOptions) -> Result<Broker, ConnectError> {
        let client = connect(o).await?;
        Ok(Broker {
            js: async_nats::jetstream::new(client.clone()),
            client,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn jetstream(&self) -> &async_nats::jetstream::Context {
        &self.js
    }

    /// Whether the connection is up now.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Flushes and closes the connection, for at most `within`.
    pub async fn drain(&self, within: Duration) {
        let _ = tokio::time::timeout(within, self.client.drain()).await;
    }
}
