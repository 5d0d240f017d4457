//! `amqps://`: the broker connection over TLS, against the real RabbitMQ behind a TLS
//! relay of this test's own (RabbitMQ here listens in plain AMQP only). The relay's
//! certificate is signed by a certificate authority made for the test with `openssl`, and
//! given to the connection as the system's trust store (`SSL_CERT_FILE`), so this is a
//! binary of its own: the variable is set before anything reads the trust store.

mod live;
use live::*;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kz_endpoint::amqp::{json_properties, random_hex};
use kz_endpoint::broker_connection::{BrokerConnection, ConnectionError, Consume, Event};
use lapin::options::QueueDeleteOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority and a server certificate it signs for `localhost` only.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=kz-endpoint test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// A TLS relay to the broker's plain AMQP port, with the server certificate of `dir`.
async fn tls_relay(dir: &Path) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A handshake that fails (the client refused our certificate) ends here.
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let mut broker = TcpStream::connect(broker_addr()).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
            });
        }
    });
    port
}

#[test]
fn the_broker_connection_speaks_tls_and_checks_the_certificate() {
    let dir = std::env::temp_dir().join(format!("kz-test-amqps-{}", random_hex(8)));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir);
    // SAFETY: set before the runtime starts, while this test's thread is the only one.
    unsafe { std::env::set_var("SSL_CERT_FILE", dir.join("ca.pem")) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let port = tls_relay(&dir).await;
        let (_c, ch) = channel().await;
        let queue = kapps_queue(&ch, "kz-test-amqps").await;
        let consume = |url: &str| {
            let url = url.to_owned();
            let queue = queue.clone();
            async move {
                BrokerConnection::open(&Consume {
                    amqp_url: &url,
                    connection_name: "kz-test-amqps",
                    queue: &queue,
                    consumer_tag: "kz-test-amqps",
                    prefetch: 1,
                    ..Default::default()
                })
                .await
            }
        };
        // The certificate names localhost, not 127.0.0.1: refused.
        match consume(&amqp_url_at("amqps", &format!("127.0.0.1:{port}"), "")).await {
            Err(ConnectionError::Tls(why)) => {
                assert!(why.contains("certificate"), "{why}")
            }
            other => panic!("expected a TLS refusal, got {other:?}"),
        }
        // By its name, the certificate is trusted: a message comes through TLS and is
        // acknowledged.
        let (mut conn, outbox) = consume(&amqp_url_at("amqps", &format!("localhost:{port}"), ""))
            .await
            .expect("the broker connection over TLS");
        publish_raw(&ch, &queue, b"{\"over\":\"tls\"}", json_properties()).await;
        let d = match tokio::time::timeout(Duration::from_secs(10), conn.next()).await {
            Ok(Ok(Event::Delivery(d))) => d,
            other => panic!("expected a delivery, got {other:?}"),
        };
        assert_eq!(d.data, b"{\"over\":\"tls\"}");
        outbox.ack(d.delivery_tag).unwrap();
        conn.close().await;
        let _ = ch
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
